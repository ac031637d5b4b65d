import { parseArgs } from 'node:util';
import { ServerPushError } from '../errors.ts';

export const USAGE = `Usage: serverpush serve [DIR] [options]
       serverpush get URL [--count N] [--out DIR] [--snapshot FILE] [--timeout SECONDS]
                                       (reads a stream; serverpush get --help for more)

Pushes every document of DIR (default: the bundled examples/slideshow) to each client of
/stream as one multipart/x-mixed-replace response, one document per interval.

Options:
  --port N              TCP port (default 8080; 0 picks a free port)
  --host ADDR           address to listen on (default 127.0.0.1; 0.0.0.0 for all)
  --interval SECONDS    time between documents, fractions allowed (default 5)
  --loop                start again after the last document instead of ending
  --max-part-bytes N    skip documents larger than N bytes (default 16777216)
  --stall-timeout SECS  drop a client that takes no data for this long (default 30)
  --quiet               log warnings and errors only
  -h, --help            show this help
  -v, --version         show the version
`;

export interface ServeArgs {
  dir: string | undefined;
  port: number;
  host: string;
  intervalMs: number;
  loop: boolean;
  maxPartBytes: number;
  stallTimeoutMs: number;
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

/** Parses `serverpush` arguments (without `node` and the script). Throws `SP_ERR_INVALID_OPTION`. */
export function parseCommand(argv: readonly string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        interval: { type: 'string' },
        loop: { type: 'boolean' },
        'max-part-bytes': { type: 'string' },
        'stall-timeout': { type: 'string' },
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
  return {
    command: 'serve',
    dir: rest[0],
    port: number('port', values.port, 8080, (n) => Number.isInteger(n) && n >= 0 && n <= 65535, 'an integer from 0 to 65535'),
    host: values.host ?? '127.0.0.1',
    intervalMs: number('interval', values.interval, 5, (n) => n > 0 && n <= 86_400, 'a number of seconds above 0 (fractions allowed)') * 1000,
    loop: values.loop ?? false,
    maxPartBytes: number('max-part-bytes', values['max-part-bytes'], 16 * 1024 * 1024, (n) => Number.isSafeInteger(n) && n > 0, 'a positive integer'),
    stallTimeoutMs: number('stall-timeout', values['stall-timeout'], 30, (n) => n > 0, 'a number of seconds above 0') * 1000,
    quiet: values.quiet ?? false,
  };
}
