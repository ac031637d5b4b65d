import { ServerPushError } from '../errors.ts';
import { parseOptions, type OptionSpec, type OptionValues } from './options.ts';
import type { StreamSpec } from '../server/stream-spec.ts';
import type { AccessOptions } from '../server/access/policy.ts';
import { normalizeCors, type CorsOrigins } from '../server/viewer-routes.ts';
import type { PipeFormat } from '../sources/frame-feed.ts';
import { OPS_OPTIONS, parseOpsArgs, type OpsArgs } from './ops-args.ts';
import { DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_MAX_HEADER_BYTES, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_SOURCE_START_GRACE_MS } from '../defaults.ts';
import { DEFAULT_BACKLOG, DEFAULT_HOST, DEFAULT_INTERVAL_MS, DEFAULT_MAX_PART_BYTES, DEFAULT_PORT, DEFAULT_RELAY_IDLE_MS, DEFAULT_STALL_TIMEOUT_MS, DEFAULT_MAX_UNSENT_BYTES, DEFAULT_REDIS_MAX_FRAME_BYTES } from '../defaults.ts';
import { DEFAULT_EXEC_IDLE_MS, DEFAULT_POLL_INTERVAL_MS, DEFAULT_SNAPSHOT_MAX_AGE_MS, DEFAULT_SNAPSHOT_WAIT_MS, DEFAULT_SOURCE_STALL_MS } from '../defaults.ts';
import { checkRedisUrl } from '../bus/redis-options.ts';

export const USAGE = `Usage: serverpush serve [DIR] [options]
       serverpush serve --watch PATH | --stdin | --exec "CMD" | --relay URL | --poll URL [options]
       serverpush serve --config FILE
       serverpush get URL [--count N] [--out DIR] [--snapshot FILE] [--timeout SECONDS]
                                       (reads a stream; serverpush get --help for more)
       serverpush passwd FILE USER [--delete]      (a user of an htpasswd file)
       serverpush sign URL --expires 1h --link-secret-file FILE [--scope NAME]
       serverpush token NAME [--scope NAME]        (a bearer token for a program)

Serves a stream at /stream: by default every document of DIR (default: the bundled
examples/slideshow) to each client, one per interval; or a live stream from a source.

Sources of the default stream (one of):
  DIR                   a folder, played to each client on its own clock
  DIR --sync            a folder, one shared show: every viewer sees the same document
  --watch PATH          a folder (each new file) or a file (each new version)
  --stdin               frames from standard input: concatenated JPEGs or multipart
  --exec "CMD"          frames from a command's output, restarted when it exits
  --relay URL           another server's multipart/x-mixed-replace stream
  --poll URL            a still image (a camera's snapshot.jpg) fetched every --interval
                        (default ${DEFAULT_POLL_INTERVAL_MS / 1000} s here) and served as a live stream
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
  --relay-user NAME     user name for the upstream of --relay or --poll (or user:password@ in
                        the URL); answered by HTTP Basic or Digest when the upstream asks
  --relay-password-file FILE
                        the upstream's password, read from FILE (not shown by ps, unlike argv)
  --relay-boundary B    the upstream's boundary, for one that does not send a multipart
                        Content-Type (ffmpeg -f mpjpeg over HTTP); any Content-Type is accepted
  --source-stall SECS   --exec/--stdin/--watch: no frame for this long and the source is
                        "stalled" (a command is killed and restarted) (default ${DEFAULT_SOURCE_STALL_MS / 1000}; 0 never;
                        --watch: default 0)
  --snapshot-max-age SECS
                        live streams: serve no snapshot older than this (default ${DEFAULT_SNAPSHOT_MAX_AGE_MS / 1000}; 0 no bound;
                        --watch and DIR --sync: 0); an older frame makes the request wait up
                        to ${DEFAULT_SNAPSHOT_WAIT_MS / 1000} s for a fresh one, then 503 SP_ERR_STALE_FRAME
  --on-demand           --exec: run the command only while someone watches
  --exec-idle SECS      --on-demand: stop the command after this long without viewers (default ${DEFAULT_EXEC_IDLE_MS / 1000})
  --exit-on-eof         --stdin: exit (0) when the input ends, after the viewers got the last frame
  --drop-duplicates     live streams: drop a frame identical to the previous one
  --serve-last          live streams: while the source is down, new viewers get the last frame
  --htpasswd FILE       users who may watch (bcrypt htpasswd; make one with serverpush passwd);
                        every request then needs a user (HTTP Basic), a token or a signed link
  --tokens-file FILE    bearer tokens for programs (JSON; serverpush token makes them)
  --link-secret-file FILE
                        the secret of signed links (serverpush sign URL --expires 1h)
  --allow CIDR          only these client addresses may connect (repeat for more)
  --deny CIDR           these client addresses may not (repeat for more)
  --trust-proxy ADDR    take the client's address from X-Forwarded-For/Forwarded when the
                        connection comes from ADDR (a proxy; CIDR too; repeat for more)
  --tls-cert FILE       serve HTTPS (HTTP/2 and HTTP/1.1 on the port) with this PEM certificate
                        chain; needs --tls-key; SIGHUP reads both files again
  --tls-key FILE        the certificate's private key (PEM)
  --redis URL           share the live streams with other serverpush processes through Redis
                        (redis://HOST:PORT/DB, rediss:// for TLS; docs/scaling.md); each
                        source runs in one process, every process serves its viewers
  --redis-password-file FILE
                        Redis's password, read from FILE (or SERVERPUSH_REDIS_PASSWORD)
  --redis-max-frame-bytes N
                        frames larger than N bytes are not put on the bus (default ${DEFAULT_REDIS_MAX_FRAME_BYTES})
  --cors ORIGIN         let pages of ORIGIN (e.g. https://example.com; * for any) read the
                        streams and embed the viewer; repeat for more origins
  --quiet               log warnings and errors only (same as --log-level warn)
  --log-format FMT      json (one JSON object a line) or text (default json when stderr
                        is not a terminal, else text)
  --log-level LEVEL     info, warn, error or silent (default info)
  --max-viewers N       most viewers in all, more are answered 503 (default 0: no limit)
  --max-viewers-per-stream N
                        most viewers of one stream, more are answered 503 (default 0)
  --max-viewers-per-client N
                        most viewers from one client address, more get 429 (default 0)
  --max-session SECS    end a viewer's session after this long; it reconnects (default 0: never)
  --max-header-bytes N  largest request head, larger gets 431 (default ${DEFAULT_MAX_HEADER_BYTES})
  --headers-timeout SECS
                        cut a client that has not sent its request head in time (default ${DEFAULT_HEADERS_TIMEOUT_MS / 1000})
  --request-timeout SECS
                        cut a client that has not sent its whole request in time; never cuts
                        a stream being served (default ${DEFAULT_REQUEST_TIMEOUT_MS / 1000})
  --start-grace SECS    /readyz: a source with no frame yet is ready this long after its
                        start (default ${DEFAULT_SOURCE_START_GRACE_MS / 1000})
  --watch-config        with --config: reload the file when it changes (SIGHUP always does)
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
  /** --htpasswd, --tokens-file, --link-secret-file, --allow, --deny, --trust-proxy (over the config file's). */
  access: AccessOptions;
  /** --tls-cert and --tls-key: serve HTTPS with these PEM files (both or neither). */
  tls: { certFile: string; keyFile: string } | undefined;
  /** --redis, --redis-password-file, --redis-max-frame-bytes: the bus (src/bus/). */
  redis: string | undefined;
  redisPasswordFile: string | undefined;
  redisMaxFrameBytes: number | undefined;
  quiet: boolean;
  /** Logs, limits, readiness, config reload (ops-args.ts). */
  ops: OpsArgs;
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
  'relay-boundary': { type: 'string', value: 'B' },
  poll: { type: 'string', value: 'URL' },
  'source-stall': { type: 'string', value: 'SECONDS' },
  'snapshot-max-age': { type: 'string', value: 'SECONDS' },
  'on-demand': { type: 'boolean' },
  'exec-idle': { type: 'string', value: 'SECONDS' },
  'exit-on-eof': { type: 'boolean' },
  'drop-duplicates': { type: 'boolean' },
  'serve-last': { type: 'boolean' },
  'max-part-bytes': { type: 'string', value: 'N' },
  'stall-timeout': { type: 'string', value: 'SECONDS' },
  'max-unsent-bytes': { type: 'string', value: 'N' },
  cors: { type: 'string', multiple: true, value: 'ORIGIN' },
  htpasswd: { type: 'string', value: 'FILE' },
  'tokens-file': { type: 'string', value: 'FILE' },
  'link-secret-file': { type: 'string', value: 'FILE' },
  allow: { type: 'string', multiple: true, value: 'CIDR' },
  deny: { type: 'string', multiple: true, value: 'CIDR' },
  'trust-proxy': { type: 'string', multiple: true, value: 'ADDR' },
  'tls-cert': { type: 'string', value: 'FILE' },
  'tls-key': { type: 'string', value: 'FILE' },
  redis: { type: 'string', value: 'URL' },
  'redis-password-file': { type: 'string', value: 'FILE' },
  'redis-max-frame-bytes': { type: 'string', value: 'N' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  ...OPS_OPTIONS,
};

/** Options that take a path, a command, a URL or a name: an empty value is a mistake. */
const NOT_EMPTY = ['host', 'watch', 'exec', 'relay', 'config', 'relay-user', 'relay-password-file', 'htpasswd', 'tokens-file', 'link-secret-file', 'relay-boundary', 'poll', 'tls-cert', 'tls-key', 'redis', 'redis-password-file'] as const;

/** Options of the server as a whole: they apply whatever the source (also with --config). */
const SERVER_OPTIONS = new Set(['port', 'host', 'backlog', 'base-path', 'cors', 'quiet', 'config', 'help', 'version', 'htpasswd', 'tokens-file', 'link-secret-file', 'allow', 'deny', 'trust-proxy', 'tls-cert', 'tls-key', 'redis', 'redis-password-file', 'redis-max-frame-bytes', ...Object.keys(OPS_OPTIONS)]);

/** Which source the options choose, in words, and the options that apply to it besides the server's. */
function applicable(values: OptionValues, hasDir: boolean): { source: string; options: string[] } {
  const live = ['max-part-bytes', 'stall-timeout', 'max-unsent-bytes', 'drop-duplicates', 'serve-last', 'snapshot-max-age'];
  if (values['config'] !== undefined) return { source: '--config (set them per stream in the file)', options: [] };
  if (values['watch'] !== undefined) return { source: '--watch', options: ['watch', 'source-stall', ...live] };
  if (values['stdin']) return { source: '--stdin', options: ['stdin', 'format', 'source-stall', 'exit-on-eof', ...live] };
  if (values['exec'] !== undefined) return { source: '--exec', options: ['exec', 'format', 'source-stall', 'on-demand', ...(values['on-demand'] ? ['exec-idle'] : []), ...live] };
  if (values['relay'] !== undefined) return { source: '--relay', options: ['relay', 'relay-idle', 'relay-user', 'relay-password-file', 'relay-boundary', ...live] };
  if (values['poll'] !== undefined) return { source: '--poll', options: ['poll', 'interval', 'relay-user', 'relay-password-file', ...live] };
  if (values['sync']) return { source: 'a synced slideshow (DIR --sync)', options: ['sync', 'interval', 'loop', ...live] };
  return { source: `a slideshow per client (${hasDir ? 'DIR' : 'the bundled examples'}; with --sync it is a live stream)`, options: ['interval', 'loop', 'max-part-bytes', 'stall-timeout', 'max-unsent-bytes'] };
}

/** Parses `serverpush` arguments (without `node` and the script). Throws `SP_ERR_INVALID_OPTION`. */
export function parseCommand(argv: readonly string[], defaultDir: string): Command {
  const { values: raw, positionals } = parseOptions(argv, SERVE_OPTIONS);
  const values = raw as {
    port?: string; host?: string; backlog?: string; 'base-path'?: string; interval?: string; loop?: boolean; sync?: boolean; watch?: string; stdin?: boolean;
    exec?: string; relay?: string; config?: string; 'relay-boundary'?: string; poll?: string; 'source-stall'?: string; 'snapshot-max-age'?: string; 'on-demand'?: boolean; 'exec-idle'?: string; 'exit-on-eof'?: boolean; format?: string; 'relay-idle'?: string; 'relay-user'?: string; 'relay-password-file'?: string;
    'drop-duplicates'?: boolean; 'serve-last'?: boolean; 'max-part-bytes'?: string; 'stall-timeout'?: string; 'max-unsent-bytes'?: string; cors?: string[]; quiet?: boolean; help?: boolean; version?: boolean;
    htpasswd?: string; 'tokens-file'?: string; 'link-secret-file'?: string; allow?: string[]; deny?: string[]; 'trust-proxy'?: string[];
    'tls-cert'?: string; 'tls-key'?: string;
    redis?: string; 'redis-password-file'?: string; 'redis-max-frame-bytes'?: string;
  };
  if (values.help) return { command: 'help' };
  if (values.version) return { command: 'version' };
  const [command, ...rest] = positionals;
  if (command === undefined) invalid('no command given; try: serverpush serve DIR');
  if (command !== 'serve') invalid(`unknown command ${JSON.stringify(command)}; the commands are: serve, get, passwd, sign, token`);
  if (rest.length > 1) invalid(`serve takes one folder, got ${rest.length}: ${rest.map((arg) => JSON.stringify(arg)).join(' ')}`);
  for (const name of NOT_EMPTY) if (values[name] !== undefined && values[name]!.trim() === '') invalid(`--${name} needs a value (${SERVE_OPTIONS[name]!.value}), got an empty string`);
  if (rest[0] === '') invalid('the folder (DIR) is an empty string');
  const sources = [rest.length > 0 && 'DIR', values.watch !== undefined && '--watch', values.stdin && '--stdin', values.exec !== undefined && '--exec', values.relay !== undefined && '--relay', values.poll !== undefined && '--poll', values.config !== undefined && '--config'].filter(Boolean);
  if (sources.length > 1) invalid(`give one source, not ${sources.join(' and ')}`);
  const { source, options } = applicable(raw, rest.length > 0);
  const refused = Object.keys(raw).filter((name) => raw[name] !== undefined && !SERVER_OPTIONS.has(name) && !options.includes(name));
  if (refused.length > 0) {
    const list = refused.map((name) => `--${name}`).join(', ');
    invalid(`${list} ${refused.length === 1 ? 'does' : 'do'} not apply to ${source}`);
  }
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) invalid(values['tls-cert'] === undefined ? '--tls-key needs --tls-cert (the certificate it belongs to)' : '--tls-cert needs --tls-key (the certificate\'s private key)');
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
    ...(values['snapshot-max-age'] !== undefined ? { snapshotMaxAgeMs: number('snapshot-max-age', values['snapshot-max-age'], 0, (n) => n >= 0, 'a number of seconds (0: no bound)') * 1000 } : {}),
  };
  const sourceStall = values['source-stall'] === undefined ? {} : { sourceStallMs: number('source-stall', values['source-stall'], 0, (n) => n >= 0, 'a number of seconds (0: never)') * 1000 };
  const upstreamAccess = {
    ...(values['relay-user'] !== undefined ? { username: values['relay-user'] } : {}),
    ...(values['relay-password-file'] !== undefined ? { passwordFile: values['relay-password-file'] } : {}),
  };
  const format = values.format as PipeFormat | undefined;
  let spec: StreamSpec | undefined;
  if (values.watch !== undefined) spec = { ...common, type: 'watch', path: values.watch, ...sourceStall };
  else if (values.stdin) spec = { ...common, type: 'stdin', ...(format ? { format } : {}), ...sourceStall, ...(values['exit-on-eof'] ? { exitOnEof: true } : {}) };
  else if (values.exec !== undefined) {
    spec = {
      ...common,
      type: 'exec',
      command: values.exec,
      ...(format ? { format } : {}),
      ...sourceStall,
      ...(values['on-demand'] ? { onDemand: true } : {}),
      ...(values['exec-idle'] !== undefined ? { idleTimeoutMs: number('exec-idle', values['exec-idle'], DEFAULT_EXEC_IDLE_MS / 1000, (n) => n >= 0, 'a number of seconds') * 1000 } : {}),
    };
  } else if (values.poll !== undefined) {
    const interval = values.interval === undefined ? DEFAULT_POLL_INTERVAL_MS : intervalMs;
    spec = { ...common, type: 'poll', url: values.poll, intervalMs: interval, ...upstreamAccess };
  }
  else if (values.relay !== undefined) {
    const idle = number('relay-idle', values['relay-idle'], DEFAULT_RELAY_IDLE_MS / 1000, (n) => n >= 0, 'a number of seconds (0: never stop)') * 1000;
    spec = {
      ...common,
      type: 'relay',
      url: values.relay,
      idleTimeoutMs: idle,
      ...upstreamAccess,
      ...(values['relay-boundary'] !== undefined ? { upstreamBoundary: values['relay-boundary'] } : {}),
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
    access: {
      ...(values.htpasswd !== undefined ? { htpasswd: values.htpasswd } : {}),
      ...(values['tokens-file'] !== undefined ? { tokensFile: values['tokens-file'] } : {}),
      ...(values['link-secret-file'] !== undefined ? { linkSecretFile: values['link-secret-file'] } : {}),
      ...(values.allow !== undefined ? { allow: values.allow } : {}),
      ...(values.deny !== undefined ? { deny: values.deny } : {}),
      ...(values['trust-proxy'] !== undefined ? { trustProxy: values['trust-proxy'] } : {}),
    },
    tls: values['tls-cert'] === undefined || values['tls-key'] === undefined ? undefined : { certFile: values['tls-cert'], keyFile: values['tls-key'] },
    redis: values.redis,
    redisPasswordFile: values['redis-password-file'],
    redisMaxFrameBytes: values['redis-max-frame-bytes'] === undefined ? undefined : number('redis-max-frame-bytes', values['redis-max-frame-bytes'], DEFAULT_REDIS_MAX_FRAME_BYTES, (n) => Number.isSafeInteger(n) && n > 0 && n <= 512 * 1024 * 1024, 'a positive integer of at most 536870912 (Redis\'s largest string)'),
    quiet: values.quiet ?? false,
    ops: parseOpsArgs(raw),
  };
}
