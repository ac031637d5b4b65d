import { parseArgs } from 'node:util';
import { ServerPushError } from '../errors.ts';
import type { StreamSpec } from '../server/stream-spec.ts';
import { normalizeCors, type CorsOrigins } from '../server/viewer-routes.ts';
import type { PipeFormat } from '../sources/frame-feed.ts';

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
  --port N              TCP port (default 8080; 0 picks a free port)
  --host ADDR           address to listen on (default 127.0.0.1; 0.0.0.0 for all)
  --backlog N           connections the kernel may queue before they are accepted
                        (default 4096, capped by net.core.somaxconn)
  --interval SECONDS    time between documents, fractions allowed (default 5)
  --loop                start again after the last document instead of ending
  --max-part-bytes N    skip documents and frames larger than N bytes (default 16777216)
  --stall-timeout SECS  drop a client whose socket accepts nothing for this long (default 30)
  --max-unsent-bytes N  bytes the kernel may queue unsent for one client (TCP_NOTSENT_LOWAT;
                        default 131072; 0 leaves the kernel's default, up to tcp_wmem's max)
  --format FMT          --stdin/--exec input: auto, mjpeg or multipart (default auto)
  --relay-idle SECS     stop pulling the relay after this long without viewers (default 30; 0 never)
  --drop-duplicates     live streams: drop a frame identical to the previous one
  --serve-last          live streams: while the source is down, new viewers get the last frame
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
  /** --cors: origins allowed to read the streams and frame the viewer. */
  cors: CorsOrigins | undefined;
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

/** Parses `serverpush` arguments (without `node` and the script). Throws `SP_ERR_INVALID_OPTION`. */
export function parseCommand(argv: readonly string[], defaultDir: string): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        backlog: { type: 'string' },
        interval: { type: 'string' },
        loop: { type: 'boolean' },
        sync: { type: 'boolean' },
        watch: { type: 'string' },
        stdin: { type: 'boolean' },
        exec: { type: 'string' },
        relay: { type: 'string' },
        config: { type: 'string' },
        format: { type: 'string' },
        'relay-idle': { type: 'string' },
        'drop-duplicates': { type: 'boolean' },
        'serve-last': { type: 'boolean' },
        'max-part-bytes': { type: 'string' },
        'stall-timeout': { type: 'string' },
        'max-unsent-bytes': { type: 'string' },
        cors: { type: 'string', multiple: true },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (error) {
    invalid((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { command: 'help' };
  if (values.version) return { command: 'version' };
  const [command, ...rest] = positionals;
  if (command === undefined) invalid('no command given; try: serverpush serve DIR');
  if (command !== 'serve') invalid(`unknown command ${JSON.stringify(command)}; the commands are: serve, get`);
  if (rest.length > 1) invalid(`serve takes one folder, got ${rest.length}`);
  const sources = [rest.length > 0 && 'DIR', values.watch !== undefined && '--watch', values.stdin && '--stdin', values.exec !== undefined && '--exec', values.relay !== undefined && '--relay', values.config !== undefined && '--config'].filter(Boolean);
  if (sources.length > 1) invalid(`give one source, not ${sources.join(' and ')}`);
  const live = values.watch !== undefined || values.stdin || values.exec !== undefined || values.relay !== undefined;
  const slideshowOnly = [values.interval !== undefined && '--interval', values.loop && '--loop', values.sync && '--sync'].filter(Boolean);
  if (live && slideshowOnly.length) invalid(`${slideshowOnly.join(', ')} only apply to a folder slideshow (DIR)`);
  if (values.format !== undefined && !values.stdin && values.exec === undefined) invalid('--format applies to --stdin and --exec');
  if (values['relay-idle'] !== undefined && values.relay === undefined) invalid('--relay-idle applies to --relay');
  if (values.format !== undefined && !['auto', 'mjpeg', 'multipart'].includes(values.format)) invalid(`--format must be auto, mjpeg or multipart, got ${JSON.stringify(values.format)}`);

  const intervalMs = number('interval', values.interval, 5, (n) => n > 0 && n <= 86_400, 'a number of seconds above 0 (fractions allowed)') * 1000;
  const common = {
    maxPartBytes: number('max-part-bytes', values['max-part-bytes'], 16 * 1024 * 1024, (n) => Number.isSafeInteger(n) && n > 0, 'a positive integer'),
    stallTimeoutMs: number('stall-timeout', values['stall-timeout'], 30, (n) => n > 0, 'a number of seconds above 0') * 1000,
    ...(values['max-unsent-bytes'] !== undefined ? { maxUnsentBytes: number('max-unsent-bytes', values['max-unsent-bytes'], 131072, (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 31, 'an integer from 0 to 2147483647 (0: the kernel\'s default)') } : {}),
    ...(values['drop-duplicates'] ? { dropDuplicates: true } : {}),
    ...(values['serve-last'] ? { serveLastWhenDown: true } : {}),
  };
  const format = values.format as PipeFormat | undefined;
  let spec: StreamSpec | undefined;
  if (values.watch !== undefined) spec = { ...common, type: 'watch', path: values.watch };
  else if (values.stdin) spec = { ...common, type: 'stdin', ...(format ? { format } : {}) };
  else if (values.exec !== undefined) spec = { ...common, type: 'exec', command: values.exec, ...(format ? { format } : {}) };
  else if (values.relay !== undefined) {
    const idle = number('relay-idle', values['relay-idle'], 30, (n) => n >= 0, 'a number of seconds (0: never stop)') * 1000;
    spec = { ...common, type: 'relay', url: values.relay, idleTimeoutMs: idle };
  } else if (values.config === undefined) {
    spec = { ...common, type: 'slideshow', dir: rest[0] ?? defaultDir, intervalMs, loop: values.loop ?? false, sync: values.sync ?? false };
  }
  return {
    command: 'serve',
    streams: spec ? { default: spec } : {},
    config: values.config,
    port: values.port === undefined ? undefined : number('port', values.port, 8080, (n) => Number.isInteger(n) && n >= 0 && n <= 65535, 'an integer from 0 to 65535'),
    host: values.host,
    backlog: values.backlog === undefined ? undefined : number('backlog', values.backlog, 4096, (n) => Number.isInteger(n) && n >= 1 && n <= 65535, 'an integer from 1 to 65535'),
    cors: corsOrigins(values.cors),
    quiet: values.quiet ?? false,
  };
}
