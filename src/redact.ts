/**
 * Secrets never shown: a password, a token or a signed link must not reach a log, `/status`, an
 * error body or `ps`. Every URL serverpush shows goes through {@link redactUrl}; text that may
 * quote a secret (an upstream's error, a message built from a URL) through {@link Secrets.scrub}.
 * Runtime-neutral.
 */

/** What a hidden secret is shown as. */
export const REDACTED = '***';

/**
 * Query parameters whose values are secrets: passwords (`pwd`, `password`), tokens, API keys,
 * signatures of signed links (`X-Amz-Signature`, `sig`), `auth=` (Hikvision), session ids.
 */
const SECRET_PARAMETER = /pass|pwd|token|secret|sig|key|auth|cred|session|^sid$/i;

/** True when a query parameter of this name holds a secret. */
export function isSecretParameter(name: string): boolean {
  return SECRET_PARAMETER.test(name);
}

/**
 * The URL as it may be shown: the password (`user:***@`) and the values of secret query
 * parameters (`?token=***`) replaced. Text that is not a URL has anything that looks like
 * `scheme://user:password@` redacted.
 */
export function redactUrl(url: string | URL): string {
  let parsed: URL;
  try {
    parsed = new URL(String(url));
  } catch {
    return redactUrlsIn(String(url));
  }
  if (parsed.password !== '') parsed.password = REDACTED;
  let redactedQuery = false;
  const query = new URLSearchParams(parsed.search);
  for (const [name] of [...query]) {
    if (isSecretParameter(name)) {
      query.set(name, REDACTED);
      redactedQuery = true;
    }
  }
  // URLSearchParams would percent-encode the asterisks; they are safe to show as they are.
  if (redactedQuery) parsed.search = query.toString().replaceAll('%2A%2A%2A', REDACTED);
  return parsed.href;
}

/** Redacts the password of every `scheme://user:password@` in a text. */
export function redactUrlsIn(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^\s/?#@:]*:)[^\s/?#@]*@/gi, `$1${REDACTED}@`);
}

/** Secrets shorter than this are not scrubbed from free text (a password "1" would garble "HTTP 401"); URLs are redacted by structure. */
const MIN_SCRUBBED_LENGTH = 4;

/** The secrets of one source, scrubbed from every message it logs or shows. */
export class Secrets {
  private readonly values = new Set<string>();

  /** Adds a secret (and its percent-encoded forms, as it appears inside a URL). */
  add(secret: string | undefined): this {
    if (secret === undefined || secret.length < MIN_SCRUBBED_LENGTH) return this;
    this.values.add(secret);
    this.values.add(encodeURIComponent(secret));
    this.values.add(new URLSearchParams({ s: secret }).toString().slice(2));
    return this;
  }

  /** Adds the password and the secret query values of a URL. */
  addFromUrl(url: URL): this {
    if (url.password !== '') this.add(decodeURIComponentSafe(url.password)).add(url.password);
    for (const [name, value] of url.searchParams) if (isSecretParameter(name)) this.add(value);
    return this;
  }

  /** `text` with every URL redacted and every secret replaced by `***`. */
  scrub(text: string): string {
    let result = redactUrlsIn(text);
    // Longest first, so that a secret containing another is replaced whole.
    for (const secret of [...this.values].sort((a, b) => b.length - a.length)) result = result.split(secret).join(REDACTED);
    return result;
  }
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** A request's path and query as it may be logged: the values of `token=` and other secret parameters shown as `***`. */
export function redactTarget(path: string, query: URLSearchParams): string {
  const shown = [...query].map(([name, value]) => `${encodeURIComponent(name)}=${isSecretParameter(name) ? REDACTED : encodeURIComponent(value)}`);
  return shown.length === 0 ? path : `${path}?${shown.join('&')}`;
}

/** A raw request target (`req.url`, e.g. `/stream/cam?token=…`) as it may be logged. */
export function redactRequestUrl(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  return q === -1 ? url : redactTarget(url.slice(0, q), new URLSearchParams(url.slice(q + 1)));
}
