#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseCommand, USAGE } from './args.ts';
import { createServer } from '../server/server.ts';
import { createStreamLogger } from '../log.ts';
import { isServerPushError } from '../errors.ts';
import { runGet } from './get.ts';

/** Exit codes: 0 done, 1 runtime failure (e.g. port in use), 2 bad usage or bad folder. */
const EXIT_RUNTIME = 1;
const EXIT_USAGE = 2;

const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

function fail(code: number, message: string): never {
  process.stderr.write(`serverpush: ${message}\n`);
  process.exit(code);
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv[0] === 'get') return void (process.exitCode = await runGet(argv.slice(1)));
  let command;
  try {
    command = parseCommand(argv);
  } catch (error) {
    if (isServerPushError(error)) fail(EXIT_USAGE, `${error.message}\n\n${USAGE}`);
    throw error;
  }
  if (command.command === 'help') return void process.stdout.write(USAGE);
  if (command.command === 'version') {
    const { version } = JSON.parse(readFileSync(new URL('package.json', `file://${packageRoot}`), 'utf8')) as { version: string };
    return void process.stdout.write(`${version}\n`);
  }
  const logger = createStreamLogger(process.stderr, { quiet: command.quiet });
  const dir = command.dir ?? `${packageRoot}examples/slideshow`;
  let server;
  try {
    server = await createServer({ ...command, dir, logger });
  } catch (error) {
    if (isServerPushError(error, 'SP_ERR_DIR_NOT_FOUND') || isServerPushError(error, 'SP_ERR_NOT_A_DIRECTORY')) {
      fail(EXIT_USAGE, `${error.message} (${error.code})`);
    }
    throw error;
  }
  try {
    const url = await server.listen();
    logger.info(`serving ${dir} at ${url} (stream: ${url}stream, every ${command.intervalMs / 1000} s${command.loop ? ', looping' : ''})`);
  } catch (error) {
    if (isServerPushError(error)) fail(EXIT_RUNTIME, `${error.message} (${error.code})`);
    throw error;
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) fail(EXIT_RUNTIME, `${signal} again: exiting at once`);
    stopping = true;
    logger.info(`${signal}: ending ${server.status.clients} stream(s) and stopping`);
    server.close().then(() => process.exit(0), () => process.exit(EXIT_RUNTIME));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main(process.argv.slice(2)).catch((error: unknown) => {
  fail(EXIT_RUNTIME, `unexpected error: ${(error as Error).stack ?? String(error)}`);
});
