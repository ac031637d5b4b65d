#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseCommand, USAGE } from './args.ts';
import { createServer } from '../server/server.ts';
import { createStreamLogger, logEvent } from '../log.ts';
import { createJsonLogger } from '../log-json.ts';
import { ConfigReloader } from './reload.ts';
import { isServerPushError, type ServerPushErrorCode } from '../errors.ts';
import { runGet } from './get.ts';
import { runPasswd, runSign, runToken } from './access-commands.ts';
import { loadConfig } from './config.ts';
import { redisBusOptions } from '../bus/redis-options.ts';
import { unsentLimitSupport } from '../adapters/socket-buffer.ts';
import type { StreamSpec } from '../server/stream-spec.ts';
import { DEFAULT_INTERVAL_MS, DEFAULT_POLL_INTERVAL_MS } from '../defaults.ts';
import { REDACTED, redactUrl, redactUrlsIn } from '../redact.ts';

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** A few words on a stream's source, for the start-up log. */
function describe(spec: StreamSpec | undefined): string {
  if (!spec) return '';
  switch (spec.type) {
    case 'slideshow': return `${spec.sync ? 'synced slideshow' : 'slideshow'} of ${spec.dir}, every ${(spec.intervalMs ?? DEFAULT_INTERVAL_MS) / 1000} s${spec.loop ? ', looping' : ''}, `;
    case 'watch': return `watching ${spec.path}, `;
    case 'stdin': return 'frames from stdin, ';
    case 'exec': return `frames from \`${redactUrlsIn(spec.command)}\`, `;
    case 'relay': return `relaying ${redactUrl(spec.url)}, `;
    case 'poll': return `polling ${redactUrl(spec.url)} every ${(spec.intervalMs ?? DEFAULT_POLL_INTERVAL_MS) / 1000} s, `;
    case 'push': return 'pushed frames, ';
  }
}

/** Exit codes: 0 done, 1 runtime failure (e.g. port in use), 2 bad usage or a bad folder or watched file. */
const EXIT_RUNTIME = 1;
const EXIT_USAGE = 2;

/** What a usage error prints after the message, instead of the whole help. */
const SERVE_HELP_HINT = 'Run `serverpush serve --help` for the options.';

const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

function fail(code: number, message: string): never {
  process.stderr.write(`serverpush: ${message}\n`);
  process.exit(code);
}

/**
 * The arguments as `ps` may show them: passwords and secret query values of URLs, and the values
 * of credential headers (`-H 'Authorization: …'`), replaced by `***`.
 */
function redactArguments(argv: readonly string[]): string[] {
  return argv.map((arg, i) => {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(arg)) return redactUrl(arg);
    if (arg.includes('://')) return redactUrlsIn(arg); // a command: --exec "ffmpeg -i rtsp://user:password@…"

    const previous = argv[i - 1];
    if ((previous === '-H' || previous === '--header') && /^\s*(authorization|proxy-authorization|cookie|[^:]*(token|key|secret)[^:]*)\s*:/i.test(arg)) return `${arg.slice(0, arg.indexOf(':') + 1)} ${REDACTED}`;
    return arg;
  });
}

async function main(argv: readonly string[]): Promise<void> {
  // A password in argv is in every `ps` listing: show the redacted command line instead (Linux
  // rewrites /proc/PID/cmdline; the original was visible only while Node started).
  const shown = redactArguments(argv);
  if (shown.some((arg, i) => arg !== argv[i])) process.title = ['serverpush', ...shown].join(' ');
  if (argv[0] === 'get') return void (process.exitCode = await runGet(argv.slice(1)));
  if (argv[0] === 'passwd') return void (process.exitCode = await runPasswd(argv.slice(1)));
  if (argv[0] === 'sign') return void (process.exitCode = await runSign(argv.slice(1)));
  if (argv[0] === 'token') return void (process.exitCode = await runToken(argv.slice(1)));
  let command;
  try {
    command = parseCommand(argv, `${packageRoot}examples/slideshow`);
  } catch (error) {
    if (isServerPushError(error)) fail(EXIT_USAGE, `${error.message}\n${SERVE_HELP_HINT}`);
    throw error;
  }
  if (command.command === 'help') return void process.stdout.write(USAGE);
  if (command.command === 'version') {
    const { version } = JSON.parse(readFileSync(new URL('package.json', `file://${packageRoot}`), 'utf8')) as { version: string };
    return void process.stdout.write(`${version}\n`);
  }
  // JSON lines where a program reads them (stderr not a terminal: systemd, docker), text for a person.
  const envFormat = process.env['SERVERPUSH_LOG_FORMAT'];
  const logFormat = command.ops.logFormat ?? (envFormat === 'json' || envFormat === 'text' ? envFormat : process.stderr.isTTY ? 'text' : 'json');
  const logLevel = command.ops.logLevel ?? (command.quiet ? 'warn' : 'info');
  const logger = logFormat === 'json' ? createJsonLogger({ level: logLevel }) : createStreamLogger(process.stderr, { level: logLevel });
  // With JSON logs, a fatal error is a JSON line too (whatever reads stderr parses every line).
  const die = (exitCode: number, error: { code: ServerPushErrorCode; message: string }): never => {
    if (logFormat !== 'json') fail(exitCode, `${error.message} (${error.code})`);
    logger.error(error.code, error.message);
    process.exit(exitCode);
  };
  let server;
  let config;
  try {
    config = command.config === undefined ? undefined : await loadConfig(command.config);
    const redisUrl = command.redis ?? config?.redis;
    const redis = redisUrl === undefined ? undefined : await redisBusOptions({ url: redisUrl, passwordFile: command.redisPasswordFile ?? (command.redis === undefined ? config?.redisPasswordFile : undefined), maxFrameBytes: command.redisMaxFrameBytes ?? config?.redisMaxFrameBytes });
    server = await createServer({
      streams: config?.streams ?? command.streams,
      logger,
      // Standard input is the process's, lent to a `stdin` stream (the library never reads it itself).
      ...(Object.values(config?.streams ?? command.streams).some((spec) => spec.type === 'stdin') ? { stdin: process.stdin } : {}),
      ...optional('port', command.port ?? config?.port),
      ...optional('host', command.host ?? config?.host),
      ...optional('backlog', command.backlog ?? config?.backlog),
      ...optional('basePath', command.basePath ?? config?.basePath),
      ...optional('cors', command.cors),
      limits: { ...config?.ops?.limits, ...command.ops.limits },
      ...optional('sourceStartGraceMs', command.ops.sourceStartGraceMs ?? config?.ops?.sourceStartGraceMs),
      // The access flags replace the config file's keys of the same name; its other access keys stay.
      ...optional('access', config?.access || Object.keys(command.access).length > 0 ? { ...config?.access, ...command.access } : undefined),
      ...optional('tls', command.tls ?? config?.tls),
      ...optional('redis', redis),
    });
  } catch (error) {
    if (isServerPushError(error) && ['SP_ERR_DIR_NOT_FOUND', 'SP_ERR_NOT_A_DIRECTORY', 'SP_ERR_CONFIG', 'SP_ERR_UNKNOWN_TYPE', 'SP_ERR_NOT_A_FILE', 'SP_ERR_UNREADABLE', 'SP_ERR_TLS'].includes(error.code)) {
      die(EXIT_USAGE, error);
    }
    throw error;
  }
  try {
    const url = await server.listen();
    for (const name of server.streamNames) {
      const path = name === 'default' ? 'stream' : `stream/${name}`;
      logger.info(`stream ${name}: ${describe((command.config ? undefined : command.streams[name]))}at ${url}${path}`);
    }
    // Shown whatever the log level (--quiet too): where the server is.
    logEvent(logger, 'notice', `serving at ${url} (status: ${url}status, metrics: ${url}metrics)`, { event: 'listening', url: url.href });
    const unsent = unsentLimitSupport();
    if (!unsent.supported) {
      logger.info(`note: cannot bound what the kernel queues for a client that stops reading: ${unsent.reason}; set \`sysctl net.ipv4.tcp_notsent_lowat=131072\` on the host instead (README: Clients that stop reading)`);
    }
  } catch (error) {
    if (isServerPushError(error)) die(EXIT_RUNTIME, error);
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
  const reloader = new ConfigReloader({ server, file: command.config, initial: config, flagLimits: command.ops.limits, flagAccess: command.access, logger });
  if (command.ops.watchConfig) reloader.watch();
  // SIGHUP: the config file read again (streams, limits, access), and a renewed certificate
  // (reloadTls() logs the outcome; a bad pair keeps the old one).
  process.on('SIGHUP', () => {
    void reloader.reload('SIGHUP');
    if (command.tls ?? config?.tls) void server.reloadTls().catch(() => {});
  });
  const streams = config?.streams ?? command.streams;
  if (Object.values(streams).some((spec) => spec.type === 'stdin' && spec.exitOnEof)) {
    // --exit-on-eof: the stdin source has pushed its last frame in its own 'end' listener (added
    // before this one); the viewers then get it again with the closing delimiter, and the process exits 0.
    process.stdin.once('end', () => {
      if (stopping) return;
      stopping = true;
      logger.info(`end of input: ending ${server.status.clients} stream(s) and exiting`);
      server.close().then(() => process.exit(0), () => process.exit(EXIT_RUNTIME));
    });
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  fail(EXIT_RUNTIME, `unexpected error: ${(error as Error).stack ?? String(error)}`);
});
