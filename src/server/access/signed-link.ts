/**
 * Signed links: `?token=EXPIRES.SCOPE.SIGNATURE`, an HMAC-SHA256 over the link's path (below the
 * server's `basePath`), its expiry and its scope, with a secret only the server and the signer
 * know. An `<img>` can carry one where it cannot send an `Authorization` header. Changing the
 * path (another stream, the snapshot instead of the stream), the expiry or the scope breaks the
 * signature.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ServerPushError } from '../../errors.ts';

/** The query parameter of a signed link. */
export const LINK_PARAMETER = 'token';

/** A scope: letters, digits, `_` and `-` (no `.`, the token's separator). */
export const SCOPE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Shortest secret accepted (bytes): 128 bits. */
const MIN_SECRET_BYTES = 16;

/**
 * The secret a file holds: a text file (`openssl rand -base64 32 > FILE`) without its final line
 * break; a binary file (random bytes, which may end in 0x0a) as it is.
 */
export function secretBytes(file: Buffer): Buffer {
  let end = file.length;
  if (file[end - 1] === 0x0a) end--;
  if (file[end - 1] === 0x0d) end--;
  const text = file.subarray(0, end);
  // Text: no control bytes (and valid UTF-8) before the line break.
  const isText = !text.some((byte) => byte < 0x20 || byte === 0x7f) && Buffer.from(text.toString('utf8'), 'utf8').equals(text);
  return isText ? text : file;
}

/** Reads a link secret from `file` (one final line break dropped). Throws `SP_ERR_CONFIG` when unreadable or too short. */
export async function readLinkSecret(file: string): Promise<Buffer> {
  let secret: Buffer;
  try {
    secret = await readFile(file);
  } catch (error) {
    throw new ServerPushError('SP_ERR_CONFIG', `link secret ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
  }
  secret = secretBytes(secret);
  if (secret.length < MIN_SECRET_BYTES) throw new ServerPushError('SP_ERR_CONFIG', `link secret ${file}: at least ${MIN_SECRET_BYTES} bytes are needed (e.g. \`openssl rand -base64 32 > ${file}\`)`);
  return secret;
}

/**
 * What a link's signature covers of a request below `basePath`: its path without a trailing slash,
 * and for `/` (mjpg-streamer's URLs) its `?action=`. `/stream/cam/` and `/stream/cam` are one link.
 */
export function linkTarget(path: string, query: URLSearchParams): string {
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  if (trimmed === '/' && query.has('action')) return `/?action=${query.get('action')}`;
  return trimmed;
}

function signature(secret: Uint8Array, target: string, expires: number, scope: string): Buffer {
  return createHmac('sha256', secret).update(`serverpush-link-v1\n${target}\n${expires}\n${scope}`).digest();
}

/** Options of {@link signLink}. */
export interface SignLinkOptions {
  /** The secret the server reads from its `linkSecretFile`. */
  secret: Uint8Array;
  /** Seconds from now until the link stops working. */
  expiresInSeconds: number;
  /** A token scope the link carries; streams whose `read` names `scope:NAME` admit it. @default none */
  scope?: string;
  /** The server's `basePath` (`/webcam`), when it serves under one. @default '' */
  basePath?: string;
  /** The current time in milliseconds (tests). @default Date.now() */
  now?: number;
}

/**
 * `url` with `?token=…` added: a link to that path (a stream, a snapshot, `/?action=stream_1`)
 * that works until it expires. Throws `SP_ERR_INVALID_OPTION` for a URL outside `basePath`, a bad
 * scope or expiry.
 */
export function signLink(url: string | URL, options: SignLinkOptions): string {
  let parsed: URL;
  try {
    parsed = new URL(String(url));
  } catch {
    throw new ServerPushError('SP_ERR_INVALID_OPTION', 'the link must be an absolute URL such as http://host:8080/stream/cam');
  }
  if (!Number.isFinite(options.expiresInSeconds) || options.expiresInSeconds <= 0) throw new ServerPushError('SP_ERR_INVALID_OPTION', 'the expiry must be a positive number of seconds');
  const scope = options.scope ?? '';
  if (scope !== '' && !SCOPE_NAME.test(scope)) throw new ServerPushError('SP_ERR_INVALID_OPTION', 'a scope is 1 to 64 of A-Z a-z 0-9 _ -');
  const base = (options.basePath ?? '').replace(/\/+$/, '');
  let path = parsed.pathname;
  if (base !== '') {
    if (path === base) path = '/';
    else if (path.startsWith(`${base}/`)) path = path.slice(base.length);
    else throw new ServerPushError('SP_ERR_INVALID_OPTION', `the link ${parsed.pathname} is not under the base path ${base}`);
  }
  parsed.searchParams.delete(LINK_PARAMETER);
  const expires = Math.floor((options.now ?? Date.now()) / 1000 + options.expiresInSeconds);
  const mac = signature(options.secret, linkTarget(path, parsed.searchParams), expires, scope).toString('base64url');
  parsed.searchParams.append(LINK_PARAMETER, `${expires}.${scope}.${mac}`);
  return parsed.href;
}

/** What a link token says, once checked: its scope, or why it is refused. */
export type LinkCheck = { ok: true; scope: string | undefined; expires: number } | { ok: false; reason: 'invalid' | 'expired' };

/**
 * Checks a `?token=` of a request for `target` ({@link linkTarget}). The signature is compared in
 * constant time and checked before the expiry, so a link whose expiry was changed is `invalid`.
 */
export function verifyLink(secret: Uint8Array, target: string, token: string, now = Date.now()): LinkCheck {
  const match = /^(\d{1,12})\.([A-Za-z0-9_-]{0,64})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!match) return { ok: false, reason: 'invalid' };
  const expires = Number(match[1]);
  const scope = match[2]!;
  // Compared as text: base64url's last character has two unused bits, so decoding first would
  // let four spellings of one signature pass. Only the canonical one does.
  const expected = Buffer.from(signature(secret, target, expires, scope).toString('base64url'));
  const given = Buffer.from(match[3]!);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'invalid' };
  if (now / 1000 >= expires) return { ok: false, reason: 'expired' };
  return { ok: true, scope: scope === '' ? undefined : scope, expires };
}

/** `90`, `90s`, `15m`, `1h`, `7d` → seconds. Throws `SP_ERR_INVALID_OPTION`. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([smhd]?)$/.exec(text.trim());
  const seconds = match ? Number(match[1]) * ({ '': 1, s: 1, m: 60, h: 3600, d: 86_400 } as Record<string, number>)[match[2]!]! : NaN;
  if (!Number.isFinite(seconds) || seconds <= 0) throw new ServerPushError('SP_ERR_INVALID_OPTION', `--expires must be a duration such as 90s, 15m, 1h or 7d, got ${JSON.stringify(text)}`);
  return seconds;
}
