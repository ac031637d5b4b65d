import { ServerPushError } from '../errors.ts';
import { parseOptions, type OptionSpec, type OptionValues } from './options.ts';
import type { StreamSpec } from '../server/stream-spec.ts';
import { normalizeCors, type CorsOrigins } from '../server/viewer-routes.ts';
import type { PipeFormat } from '../sources/frame-feed.ts';
import { DEFAULT_BACKLOG, DEFAULT_HOST, DEFAULT_INTERVAL_MS, DEFAULT_MAX_PART_BYTES, DEFAULT_PORT, DEFAULT_RELAY_IDLE_MS, DEFAULT_STALL_TIMEOUT_MS, DEFAULT_MAX_UNSENT_BYTES, DEFAULT_REDIS_MAX_FRAME_BYTES } from '../defaults.ts';
import { checkRedisUrl } from '../bus/redis-options.ts';

export const USAGE = `Usage: serverpush serve [DIR] [options]
       serverpush serve --watch PATH | --stdin | --exec "CMD" | --relay URL [options]
       serverpush serve --config FILE
       serverpush get URL [--count N] [--out DIR] [--snapshot FILE] [--timeout SECONDS]
                                       (reads a stream; serverpush get --help for more)

Serves a stream at /stream: by default every document of DIR (default: the bundled
examples/slideshow) to each client, one per interval; or a live stream from a source.

Sources of the default stream (one of):
  DIR                   a folder, played to each client on its own clock
  DIR --sync            a folder, one shared show: every viewer sees the same document
  --watch PATH          a folder (each new file) or a file (each new version)
  --stdin               frames from standard input: concatenated JPEGs or multipart
  --exec "CMD"          frames from a command's output, restarted when it exits
  --relay URL           another server's multipart/x-mixed-replace stream
  --config FILE         named streams from a JSON file (see the README)

Options:
  --port N              TCP port (default ${DEFAULT_PORT}; 0 picks a free port)
  --host ADDR           address to listen on (default ${DEFAULT_HOST}; 0.0.0.0 for all)
  --backlog N           connections the kernel may queue before they are accepted
                        (default ${DEFAULT_BACKLOG}, capped by net.core.somaxconn)
  --base-path PATH      serve under PATH (e.g. /webcam: /webcam/stream, /webcam/?action=stream),
                        for a reverse proxy that passes the prefix on
  --interval SECONDS    time between documents, fractions allowed (default ${DEFAULT_INTERVAL_MS / 1000})
  --loop                start again after the last document instead of ending
  --max-part-bytes N    skip documents and frames larger than N bytes (default ${DEFAULT_MAX_PART_BYTES})
  --stall-timeout SECS  drop a client whose socket accepts nothing for this long (default ${DEFAULT_STALL_TIMEOUT_MS / 1000})
  --max-unsent-bytes N  bytes the kernel may queue unsent for one client, TCP_NOTSENT_LOWAT
                        (default ${DEFAULT_MAX_UNSENT_BYTES}; 0 leaves the kernel's default)
  --format FMT          --stdin/--exec input: auto, mjpeg or multipart (default auto)
  --relay-idle SECS     stop pulling the relay after this long without viewers (default ${DEFAULT_RELAY_IDLE_MS / 1000}; 0 never)
  --relay-user NAME     user name for the upstream (or user:password@ in the URL); answered
                        by HTTP Basic or Digest when the upstream asks
  --relay-password-file FILE
                        the upstream's password, read from FILE (not shown by ps, unlike argv)
  --drop-duplicates     live streams: drop a frame identical to the previous one
  --serve-last          live streams: while the source is down, new viewers get the last frame
  --redis URL           share the live streams with other serverpush processes through Redis
                        (redis://HOST:PORT/DB, rediss:// for TLS; docs/scaling.md); each
                        source runs in one process, every process serves its viewers
  --redis-password-file FILE
                        Redis's password, read from FILE (or SERVERPUSH_REDIS_PASSWORD)
  --redis-max-frame-bytes N
                        frames larger than N bytes are not put on the bus (default ${DEFAULT_REDIS_MAX_FRAME_BYTES})
  --cors ORIGIN         let pages of ORIGIN (e.g. https://example.com; * for any) read the
                        streams and embed the viewer; repeat for more origins
  --quiet               log warnings and errors only
  -h, --help            show this help
  -v, --version         show the version
`;

export interface ServeArgs {
  /** The streams to serve (from the flags, or from --config). */
  streams: Record<string, StreamSpec>;
  /** Set by --config: read the file, then apply the port/host/backlog flags over it. */
  config: string | undefined;
  port: number | undefined;
  host: string | undefined;
  backlog: number | undefined;
  /** --base-path: serve under this path (checked by createServer). */
  basePath: string | undefined;
  /** --cors: origins allowed to read the streams and frame the viewer. */
  cors: CorsOrigins | undefined;
  /** --redis, --redis-password-file, --redis-max-frame-bytes: the bus (src/bus/). */
  redis: string | undefined;
  redisPasswordFile: string | undefined;
  redisMaxFrameBytes: number | undefined;
  quiet: boolean;
}

export type Command = { command: 'help' } | { command: 'version' } | ({ command: 'serve' } & ServeArgs);

function invalid(message: string): never {
  throw new ServerPushError('SP_ERR_INVALID_OPTION', message);
}

function number(name: string, text: string | undefined, fallback: number, check: (n: number) => boolean, what: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || !check(value)) invalid(`--${name} must be ${what}, got ${JSON.stringify(text)}`);
  return value;
}

function corsOrigins(values: string[] | undefined): CorsOrigins | undefined {
  if (values === undefined) return undefined;
  try {
    return normalizeCors(values.length === 1 && values[0] === '*' ? '*' : values);
  } catch (error) {
    invalid(`--cors: ${(error as Error).message.replace(/^cors: /, '')}`);
  }
}

/** The options of `serverpush serve`. */
const SERVE_OPTIONS: Record<string, OptionSpec> = {
  port: { type: 'string', value: 'N' },
  host: { type: 'string', value: 'ADDR' },
  backlog: { type: 'string', value: 'N' },
  'base-path': { type: 'string', value: 'PATH' },
  interval: { type: 'string', value: 'SECONDS' },
  loop: { type: 'boolean' },
  sync: { type: 'boolean' },
  watch: { type: 'string', value: 'PATH' },
  stdin: { type: 'boolean' },
  exec: { type: 'string', value: '"CMD"' },
  relay: { type: 'string', value: 'URL' },
  config: { type: 'string', value: 'FILE' },
  format: { type: 'string', value: 'auto, mjpeg or multipart' },
  'relay-idle': { type: 'string', value: 'SECONDS' },
  'relay-user': { type: 'string', value: 'NAME' },
  'relay-password-file': { type: 'string', value: 'FILE' },
  'drop-duplicates': { type: 'boolean' },
  'serve-last': { type: 'boolean' },
  'max-part-bytes': { type: 'string', value: 'N' },
  'stall-timeout': { type: 'string', value: 'SECONDS' },
  'max-unsent-bytes': { type: 'string', value: 'N' },
  cors: { type: 'string', multiple: true, value: 'ORIGIN' },
  redis: { type: 'string', value: 'URL' },
  'redis-password-file': { type: 'string', value: 'FILE' },
  'redis-max-frame-bytes': { type: 'string', value: 'N' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
};

/** Options that take a path, a command, a URL or a name: an empty value is a mistake. */
const NOT_EMPTY = ['host', 'watch', 'exec', 'relay', 'config', 'relay-user', 'relay-password-file', 'redis', 'redis-password-file'] as const;

/** Options of the server as a whole: they apply whatever the source (also with --config). */
const SERVER_OPTIONS = new Set(['port', 'host', 'backlog', 'base-path', 'cors', 'quiet', 'config', 'help', 'version', 'redis', 'redis-password-file', 'redis-max-frame-bytes']);

/** Which source the options choose, in words, and the options that apply to it besides the server's. */
function applicable(values: OptionValues, hasDir: boolean): { source: string; options: string[] } {
  const live = ['max-part-bytes', 'stall-timeout', 'max-unsent-bytes', 'drop-duplicates', 'serve-last'];
  if (values['config'] !== undefined) return { source: '--config (set them per stream in the file)', options: [] };
  if (values['watch'] !== undefined) return { source: '--watch', options: ['watch', ...live] };
  if (values['stdin']) return { source: '--stdin', options: ['stdin', 'format', ...live] };
  if (values['exec'] !== undefined) return { source: '--exec', options: ['exec', 'format', ...live] };
  if (values['relay'] !== undefined) return { source: '--relay', options: ['relay', 'relay-idle', 'relay-user', 'relay-password-file', ...live] };
  if (values['sync']) return { source: 'a synced slideshow (DIR --sync)', options: ['sync', 'interval', 'loop', ...live] };
  return { source: `a slideshow per client (${hasDir ? 'DIR' : 'the bundled examples'}; with --sync it is a live stream)`, options: ['interval', 'loop', 'max-part-bytes', 'stall-timeout', 'max-unsent-bytes'] };
}

/** Parses `serverpush` arguments (without `node` and the script). Throws `SP_ERR_INVALID_OPTION`. */
export function parseCommand(argv: readonly string[], defaultDir: string): Command {
  const { values: raw, positionals } = parseOptions(argv, SERVE_OPTIONS);
  const values = raw as {
    port?: string; host?: string; backlog?: string; 'base-path'?: string; interval?: string; loop?: boolean; sync?: boolean; watch?: string; stdin?: boolean;
    exec?: string; relay?: string; config?: string; format?: string; 'relay-idle'?: string; 'relay-user'?: string; 'relay-password-file'?: string;
    'drop-duplicates'?: boolean; 'serve-last'?: boolean; 'max-part-bytes'?: string; 'stall-timeout'?: string; 'max-unsent-bytes'?: string; cors?: string[]; redis?: string; 'redis-password-file'?: string; 'redis-max-frame-bytes'?: string; quiet?: boolean; help?: boolean; version?: boolean;
  };
  if (values.help) return { command: 'help' };
  if (values.version) return { command: 'version' };
  const [command, ...rest] = positionals;
  if (command === undefined) invalid('no command given; try: serverpush serve DIR');
  if (command !== 'serve') invalid(`unknown command ${JSON.stringify(command)}; the commands are: serve, get`);
  if (rest.length > 1) invalid(`serve takes one folder, got ${rest.length}: ${rest.map((arg) => JSON.stringify(arg)).join(' ')}`);
  for (const name of NOT_EMPTY) if (values[name] !== undefined && values[name]!.trim() === '') invalid(`--${name} needs a value (${SERVE_OPTIONS[name]!.value}), got an empty string`);
  if (rest[0] === '') invalid('the folder (DIR) is an empty string');
  const sources = [rest.length > 0 && 'DIR', values.watch !== undefined && '--watch', values.stdin && '--stdin', values.exec !== undefined && '--exec', values.relay !== undefined && '--relay', values.config !== undefined && '--config'].filter(Boolean);
  if (sources.length > 1) invalid(`give one source, not ${sources.join(' and ')}`);
  const { source, options } = applicable(raw, rest.length > 0);
  const refused = Object.keys(raw).filter((name) => raw[name] !== undefined && !SERVER_OPTIONS.has(name) && !options.includes(name));
  if (refused.length > 0) {
    const list = refused.map((name) => `--${name}`).join(', ');
    invalid(`${list} ${refused.length === 1 ? 'does' : 'do'} not apply to ${source}`);
  }
  if (values.redis !== undefined) checkRedisUrl(values.redis, '--redis', 'SP_ERR_INVALID_OPTION', true);
  if (values.redis === undefined && (values['redis-password-file'] !== undefined || values['redis-max-frame-bytes'] !== undefined)) invalid('--redis-password-file and --redis-max-frame-bytes go with --redis URL');
  if (values.format !== undefined && !['auto', 'mjpeg', 'multipart'].includes(values.format)) invalid(`--format must be auto, mjpeg or multipart, got ${JSON.stringify(values.format)}`);

  const intervalMs = number('interval', values.interval, DEFAULT_INTERVAL_MS / 1000, (n) => n > 0 && n <= 86_400, 'a number of seconds above 0 and at most 86400 (fractions allowed)') * 1000;
  const common = {
    maxPartBytes: number('max-part-bytes', values['max-part-bytes'], DEFAULT_MAX_PART_BYTES, (n) => Number.isSafeInteger(n) && n > 0, 'a positive integer'),
    stallTimeoutMs: number('stall-timeout', values['stall-timeout'], DEFAULT_STALL_TIMEOUT_MS / 1000, (n) => n > 0, 'a number of seconds above 0') * 1000,
    ...(values['max-unsent-bytes'] !== undefined ? { maxUnsentBytes: number('max-unsent-bytes', values['max-unsent-bytes'], DEFAULT_MAX_UNSENT_BYTES, (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 31, 'an integer from 0 to 2147483647 (0: the kernel\'s default)') } : {}),
    ...(values['drop-duplicates'] ? { dropDuplicates: true } : {}),
    ...(values['serve-last'] ? { serveLastWhenDown: true } : {}),
  };
  const format = values.format as PipeFormat | undefined;
  let spec: StreamSpec | undefined;
  if (values.watch !== undefined) spec = { ...common, type: 'watch', path: values.watch };
  else if (values.stdin) spec = { ...common, type: 'stdin', ...(format ? { format } : {}) };
  else if (values.exec !== undefined) spec = { ...common, type: 'exec', command: values.exec, ...(format ? { format } : {}) };
  else if (values.relay !== undefined) {
    const idle = number('relay-idle', values['relay-idle'], DEFAULT_RELAY_IDLE_MS / 1000, (n) => n >= 0, 'a number of seconds (0: never stop)') * 1000;
    spec = {
      ...common,
      type: 'relay',
      url: values.relay,
      idleTimeoutMs: idle,
      ...(values['relay-user'] !== undefined ? { username: values['relay-user'] } : {}),
      ...(values['relay-password-file'] !== undefined ? { passwordFile: values['relay-password-file'] } : {}),
    };
  } else if (values.config === undefined) {
    spec = { ...common, type: 'slideshow', dir: rest[0] ?? defaultDir, intervalMs, loop: values.loop ?? false, sync: values.sync ?? false };
  }
  return {
    command: 'serve',
    streams: spec ? { default: spec } : {},
    config: values.config,
    port: values.port === undefined ? undefined : number('port', values.port, DEFAULT_PORT, (n) => Number.isInteger(n) && n >= 0 && n <= 65535, 'an integer from 0 to 65535'),
    host: values.host,
    backlog: values.backlog === undefined ? undefined : number('backlog', values.backlog, DEFAULT_BACKLOG, (n) => Number.isInteger(n) && n >= 1 && n <= 65535, 'an integer from 1 to 65535'),
    basePath: values['base-path'],
    cors: corsOrigins(values.cors),
    redis: values.redis,
    redisPasswordFile: values['redis-password-file'],
    redisMaxFrameBytes: values['redis-max-frame-bytes'] === undefined ? undefined : number('redis-max-frame-bytes', values['redis-max-frame-bytes'], DEFAULT_REDIS_MAX_FRAME_BYTES, (n) => Number.isSafeInteger(n) && n > 0 && n <= 512 * 1024 * 1024, 'a positive integer of at most 536870912 (Redis\'s largest string)'),
    quiet: values.quiet ?? false,
  };
}
