import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fetchParts } from '../client/fetch-parts.ts';
import { fileExtensionForType } from '../protocol/content-type.ts';
import { DEFAULT_LIMITS } from '../protocol/parser.ts';
import { ServerPushError, isServerPushError } from '../errors.ts';
import { authenticatingFetch, type Credentials } from '../client/http-auth.ts';
import { Secrets } from '../redact.ts';
import { parseOptions } from './options.ts';

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export const GET_USAGE = `Usage: serverpush get URL [options]

Reads a multipart/x-mixed-replace stream (an MJPEG camera, mjpg-streamer, ffmpeg, serverpush)
part by part. Without --out or --snapshot, prints one line per part: number, type, bytes.

Options:
  --count N             stop after N parts (default: until the stream ends)
  --out DIR             save each part as DIR/000001.jpg, DIR/000002.html, ... (the
                        extension from the part's Content-Type) and print each path
  --snapshot FILE       save the first part to FILE (- for standard output) and stop
  --timeout SECONDS     fail when the response or the next part takes longer than this
                        (default 30; 0 waits for ever)
  -H, --header 'N: V'   send a request header (repeatable)
                        user:pass@ in the URL: answered by Basic or Digest when asked
  --boundary B          use this boundary whatever the response's Content-Type says
  --wait SECONDS        for up to SECONDS, retry while the server is not there yet (connection
                        refused) or answers 503 (after its Retry-After, at most 5 s apart): for a
                        server just started, or a stream whose source has no frame yet
  --max-part-bytes N    refuse parts larger than N bytes (default ${DEFAULT_LIMITS.maxPartBytes})
  --quiet               print nothing but errors
  -h, --help            show this help

Exit status: 0 when done (N parts, or the stream ended), 1 on a connection error, an HTTP error
status, a response that is not multipart, a malformed stream or a timeout, 2 on bad usage.
`;

const EXIT_OK = 0;
const EXIT_RUNTIME = 1;
const EXIT_USAGE = 2;

interface GetArgs {
  url: URL;
  credentials: Credentials | undefined;
  /** Passwords, tokens and secret query values: scrubbed from every message. */
  secrets: Secrets;
  headers: Array<[string, string]>;
  count: number | undefined;
  out: string | undefined;
  snapshot: string | undefined;
  timeoutMs: number;
  boundary: string | undefined;
  maxPartBytes: number;
  /** --wait: retry a refused connection or a 503 for this long (0: do not retry). */
  waitMs: number;
  quiet: boolean;
}

function usage(message: string): never {
  throw new ServerPushError('SP_ERR_INVALID_OPTION', message);
}

function positive(name: string, text: string | undefined, check: (n: number) => boolean, what: string): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || !check(value)) usage(`--${name} must be ${what}, got ${JSON.stringify(text)}`);
  return value;
}

/** Parses `get` arguments (after the word `get`); `undefined` for --help. Throws `SP_ERR_INVALID_OPTION`. */
export function parseGetArgs(argv: readonly string[]): GetArgs | undefined {
  const parsed = parseOptions(argv, {
    count: { type: 'string', value: 'N' },
    out: { type: 'string', value: 'DIR' },
    snapshot: { type: 'string', value: 'FILE' },
    timeout: { type: 'string', value: 'SECONDS' },
    header: { type: 'string', short: 'H', multiple: true, value: "'Name: value'" },
    boundary: { type: 'string', value: 'B' },
    wait: { type: 'string', value: 'SECONDS' },
    'max-part-bytes': { type: 'string', value: 'N' },
    quiet: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  const { positionals } = parsed;
  const values = parsed.values as { count?: string; out?: string; snapshot?: string; timeout?: string; header?: string[]; boundary?: string; wait?: string; 'max-part-bytes'?: string; quiet?: boolean; help?: boolean };
  if (values.help) return undefined;
  if (positionals.length !== 1) usage(positionals.length === 0 ? 'get needs a URL' : `get takes one URL, got ${positionals.length}`);
  let url: URL;
  try {
    url = new URL(positionals[0]!);
  } catch {
    usage(`not a URL: ${JSON.stringify(positionals[0])}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') usage(`get reads http: and https: URLs, not ${url.protocol}`);
  const headers: Array<[string, string]> = [];
  for (const header of values.header ?? []) {
    const colon = header.indexOf(':');
    if (colon <= 0) usage(`--header must be 'Name: value', got ${JSON.stringify(header)}`);
    headers.push([header.slice(0, colon).trim(), header.slice(colon + 1).trim()]);
  }
  // fetch refuses URLs with credentials; cameras are often given as http://user:pass@host/, and
  // answered by Basic or Digest when they ask (a 401).
  const secrets = new Secrets().addFromUrl(url);
  for (const [name, value] of headers) if (/^(authorization|proxy-authorization|cookie)$|token|key|secret/i.test(name)) secrets.add(value.replace(/^(Basic|Bearer|Digest)\s+/i, '')).add(value);
  let credentials: Credentials | undefined;
  if (url.username !== '' || url.password !== '') {
    credentials = { username: decode(url.username), password: decode(url.password) };
    url.username = '';
    url.password = '';
  }
  if (values.snapshot !== undefined && (values.count !== undefined || values.out !== undefined)) usage('--snapshot saves one part; it goes with neither --count nor --out');
  if (values.boundary === '') usage('--boundary must not be empty');
  if (values.out === '' || values.snapshot === '') usage(`--${values.out === '' ? 'out' : 'snapshot'} needs a path, got an empty string`);
  return {
    url,
    secrets,
    credentials,
    headers,
    count: values.snapshot !== undefined ? 1 : positive('count', values.count, (n) => Number.isSafeInteger(n) && n > 0, 'a positive integer'),
    out: values.out,
    snapshot: values.snapshot,
    timeoutMs: (positive('timeout', values.timeout, (n) => n >= 0 && n <= 86_400, 'a number of seconds from 0 to 86400') ?? 30) * 1000,
    boundary: values.boundary,
    maxPartBytes: positive('max-part-bytes', values['max-part-bytes'], (n) => Number.isSafeInteger(n) && n > 0, 'a positive integer') ?? DEFAULT_LIMITS.maxPartBytes,
    waitMs: (positive('wait', values.wait, (n) => n >= 0 && n <= 86_400, 'a number of seconds from 0 to 86400') ?? 0) * 1000,
    quiet: values.quiet ?? false,
  };
}

/** What an errno means, in words, for messages about the output. */
function describeErrno(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const words: Record<string, string> = {
    EACCES: 'permission denied', EPERM: 'not permitted', ENOSPC: 'no space left on the device', EROFS: 'a read-only file system',
    EISDIR: 'it is a folder', ENOENT: 'its folder does not exist', ENOTDIR: 'a part of the path is not a folder', EEXIST: 'it exists and is not a folder', EDQUOT: 'over the disk quota',
  };
  return code ? `${words[code] ?? (error as Error).message} (${code})` : String(error);
}

function cannotWrite(path: string, error: unknown): never {
  throw new ServerPushError('SP_ERR_CANNOT_WRITE', `cannot write ${path}: ${describeErrno(error)}`, { cause: error });
}

/**
 * Checks where the parts go before anything is fetched: `--out` is a folder or can be made one
 * (`SP_ERR_NOT_A_DIRECTORY` for a file, exit 2); `--snapshot` is not a folder and its folder
 * exists (`SP_ERR_INVALID_OPTION`, exit 2). A folder that cannot be made is `SP_ERR_CANNOT_WRITE`.
 */
async function prepareOutput(out: string | undefined, snapshot: string | undefined): Promise<void> {
  if (out !== undefined) {
    const found = await stat(out).catch(() => undefined);
    if (found && !found.isDirectory()) throw new ServerPushError('SP_ERR_NOT_A_DIRECTORY', `--out ${out} is not a folder; give a folder to save the parts in (it is made if missing)`);
    if (!found) {
      try {
        await mkdir(out, { recursive: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOTDIR' || (error as NodeJS.ErrnoException).code === 'EEXIST') throw new ServerPushError('SP_ERR_NOT_A_DIRECTORY', `--out ${out}: ${describeErrno(error)}`);
        throw new ServerPushError('SP_ERR_CANNOT_WRITE', `cannot make the folder ${out}: ${describeErrno(error)}`, { cause: error });
      }
    }
  }
  if (snapshot !== undefined && snapshot !== '-') {
    if ((await stat(snapshot).catch(() => undefined))?.isDirectory()) throw new ServerPushError('SP_ERR_INVALID_OPTION', `--snapshot ${snapshot} is a folder; give the name of the file to write`);
    const folder = await stat(dirname(snapshot)).catch(() => undefined);
    if (!folder?.isDirectory()) throw new ServerPushError('SP_ERR_INVALID_OPTION', `--snapshot ${snapshot}: the folder ${dirname(snapshot)} does not exist`);
  }
}

/** Writes `body` to `file` whole: into a temporary file beside it, then renamed over it. */
async function writeAtomically(file: string, body: Uint8Array): Promise<void> {
  const temporary = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  await writeFile(temporary, body);
  try {
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

function write(stream: NodeJS.WritableStream, data: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => stream.write(data, (error) => (error ? reject(error) : resolve())));
}

/** The longest pause between two tries of `--wait`, whatever Retry-After says. */
const MAX_WAIT_STEP_MS = 5000;
/** The pause after a refused connection. */
const CONNECT_RETRY_MS = 200;

/** Retry-After in ms (seconds or an HTTP date), else 1 s. */
function retryAfterMs(header: string | null): number {
  if (header === null) return 1000;
  const seconds = Number(header);
  if (header.trim() !== '' && Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? 1000 : Math.max(0, date - Date.now());
}

/**
 * `fetch` that, for up to `waitMs`, tries again when the connection is refused (the server is
 * starting) or the answer is a 503 (a stream with no frame yet, a source down for now), after the
 * 503's Retry-After (at most 5 s). `onRetry` is told each time (the caller re-arms its timeout).
 */
function waitingFetch(inner: typeof globalThis.fetch, waitMs: number, onRetry: (why: string, delayMs: number) => void): typeof globalThis.fetch {
  if (waitMs <= 0) return inner;
  return async (input, init) => {
    const deadline = performance.now() + waitMs;
    for (;;) {
      let response: Response;
      try {
        response = await inner(input, init);
      } catch (error) {
        const cause = (error as { cause?: { code?: string } }).cause?.code;
        const left = deadline - performance.now();
        if (init?.signal?.aborted || left <= 0 || !(cause === 'ECONNREFUSED' || cause === 'ECONNRESET')) throw error;
        const delay = Math.min(CONNECT_RETRY_MS, left);
        onRetry(`connection refused (${cause})`, delay);
        await sleep(delay, init?.signal);
        continue;
      }
      const left = deadline - performance.now();
      if (response.status !== 503 || left <= 0) return response;
      const delay = Math.min(Math.max(100, retryAfterMs(response.headers.get('retry-after'))), MAX_WAIT_STEP_MS, left);
      let code = '';
      try {
        code = ((await response.json()) as { error?: string }).error ?? '';
      } catch {
        /* not our JSON */
      }
      onRetry(`HTTP 503${code ? ` ${code}` : ''}`, delay);
      await sleep(delay, init?.signal);
    }
  };
}

function sleep(ms: number, signal: AbortSignal | null | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Runs `serverpush get`; resolves to the exit status. Reports errors on standard error. */
export async function runGet(argv: readonly string[]): Promise<number> {
  let args: GetArgs | undefined;
  try {
    args = parseGetArgs(argv);
  } catch (error) {
    if (!isServerPushError(error)) throw error;
    process.stderr.write(`serverpush get: ${error.message}\nRun \`serverpush get --help\` for the options.\n`);
    return EXIT_USAGE;
  }
  if (args === undefined) {
    process.stdout.write(GET_USAGE);
    return EXIT_OK;
  }
  const { url, count, out, snapshot, timeoutMs, quiet } = args;
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let received = 0;
  const arm = () => {
    clearTimeout(timer);
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        const waited = received === 0 ? 'the response and its first part' : `part ${received + 1}`;
        controller.abort(new ServerPushError('SP_ERR_TIMEOUT', `timed out after ${timeoutMs / 1000} s waiting for ${waited}`));
      }, timeoutMs);
    }
  };
  const say = (text: string) => process.stderr.write(`serverpush get: ${args.secrets.scrub(text)}\n`);
  try {
    await prepareOutput(out, snapshot);
  } catch (error) {
    if (!isServerPushError(error)) throw error;
    say(`${error.message} (${error.code})`);
    return error.code === 'SP_ERR_CANNOT_WRITE' ? EXIT_RUNTIME : EXIT_USAGE;
  }
  try {
    arm();
    const parts = fetchParts(url, {
      fetch: waitingFetch(authenticatingFetch({ credentials: args.credentials }), args.waitMs, (why, delayMs) => {
        arm();
        if (!quiet) say(`${why}; trying again in ${Math.round(delayMs)} ms (--wait)`);
      }),
      signal: controller.signal,
      headers: args.headers,
      maxPartBytes: args.maxPartBytes,
      ...(args.boundary !== undefined ? { boundary: args.boundary } : {}),
    });
    for await (const part of parts) {
      received++;
      clearTimeout(timer);
      const type = part.headers['content-type'];
      if (snapshot !== undefined) {
        if (snapshot === '-') await write(process.stdout, part.body);
        else await writeAtomically(snapshot, part.body).catch((error: unknown) => cannotWrite(snapshot, error));
      } else if (out !== undefined) {
        const file = join(out, `${String(received).padStart(6, '0')}.${fileExtensionForType(type)}`);
        await writeFile(file, part.body).catch((error: unknown) => cannotWrite(file, error));
        if (!quiet) await write(process.stdout, `${file}\n`);
      } else if (!quiet) {
        await write(process.stdout, `${received} ${type ?? '(no Content-Type)'} ${part.body.length}\n`);
      }
      if (received === count) break;
      arm();
    }
    clearTimeout(timer);
    if (count !== undefined && received < count) {
      say(`the stream ended after ${received} of ${count} part(s)`);
      return EXIT_RUNTIME;
    }
    return EXIT_OK;
  } catch (error) {
    clearTimeout(timer);
    if (isServerPushError(error)) {
      // ffmpeg's HTTP output (and some cameras) send a multipart body as application/octet-stream.
      const hint = error.code === 'SP_ERR_NOT_MULTIPART' && /Content-Type is (missing|"(?!text\/))/.test(error.message) ? '; if the body is a multipart stream all the same (ffmpeg\'s HTTP output says application/octet-stream), give its boundary with --boundary B' : '';
      say(`${error.message}${hint} (${error.code})`);
      return EXIT_RUNTIME;
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('E')) {
      say(`${(error as Error).message} (${code})`);
      return EXIT_RUNTIME;
    }
    throw error;
  }
}
