#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseCommand, USAGE } from './args.ts';
import { createServer } from '../server/server.ts';
import { createStreamLogger } from '../log.ts';
import { isServerPushError } from '../errors.ts';
import { runGet } from './get.ts';
import { loadConfig } from './config.ts';
import { unsentLimitSupport } from '../adapters/socket-buffer.ts';
import type { StreamSpec } from '../server/stream-spec.ts';

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** A few words on a stream's source, for the start-up log. */
function describe(spec: StreamSpec | undefined): string {
  if (!spec) return '';
  switch (spec.type) {
    case 'slideshow': return `${spec.sync ? 'synced slideshow' : 'slideshow'} of ${spec.dir}, every ${(spec.intervalMs ?? 5000) / 1000} s${spec.loop ? ', looping' : ''}, `;
    case 'watch': return `watching ${spec.path}, `;
    case 'stdin': return 'frames from stdin, ';
    case 'exec': return `frames from \`${spec.command}\`, `;
    case 'relay': return `relaying ${spec.url}, `;
    case 'push': return 'pushed frames, ';
  }
}

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
    command = parseCommand(argv, `${packageRoot}examples/slideshow`);
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
  let server;
  try {
    const config = command.config === undefined ? undefined : await loadConfig(command.config);
    server = await createServer({
      streams: config?.streams ?? command.streams,
      logger,
      ...optional('port', command.port ?? config?.port),
      ...optional('host', command.host ?? config?.host),
      ...optional('backlog', command.backlog ?? config?.backlog),
      ...optional('cors', command.cors),
    });
  } catch (error) {
    if (isServerPushError(error) && ['SP_ERR_DIR_NOT_FOUND', 'SP_ERR_NOT_A_DIRECTORY', 'SP_ERR_CONFIG'].includes(error.code)) {
      fail(EXIT_USAGE, `${error.message} (${error.code})`);
    }
    throw error;
  }
  try {
    const url = await server.listen();
    for (const name of server.streamNames) {
      const path = name === 'default' ? 'stream' : `stream/${name}`;
      logger.info(`stream ${name}: ${describe((command.config ? undefined : command.streams[name]))}at ${url}${path}`);
    }
    logger.info(`serving at ${url} (status: ${url}status)`);
    const unsent = unsentLimitSupport();
    if (!unsent.supported) {
      logger.info(`note: cannot bound what the kernel queues for a client that stops reading: ${unsent.reason}; set \`sysctl net.ipv4.tcp_notsent_lowat=131072\` on the host instead (README: Clients that stop reading)`);
    }
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
