import { ServerPushError } from '../errors.ts';
import { authenticatingFetch, type AuthenticatingFetch, type Credentials } from '../client/http-auth.ts';
import { REDACTED, Secrets, redactUrl } from '../redact.ts';

/** How a source reaches an HTTP upstream (a relay's stream, a poll's snapshot): credentials, headers. */
export interface UpstreamOptions {
  /** Request headers. Their values are treated as secrets (never logged). */
  headers?: Record<string, string>;
  /** User name, answered by HTTP Basic or Digest when the upstream asks; else `user:password@` in the URL. */
  username?: string;
  /** Password (never logged or shown). */
  password?: string;
}

/** An upstream URL made ready: what is fetched, what may be shown, and the secrets to hide. */
export interface Upstream {
  /** The URL without credentials: what is fetched. */
  url: string;
  /** The URL as it may be shown: `http://admin:***@cam/…`, secret query values hidden. */
  displayUrl: string;
  secrets: Secrets;
  fetch: AuthenticatingFetch;
  /** `message` as it may be shown: the URL as `displayUrl`, secrets hidden. */
  shown(message: string): string;
}

/**
 * Checks and prepares an upstream URL (`what`: `relay`, `poll`, for messages). Throws `SP_ERR_CONFIG`
 * for a URL that is not http(s), or a password given both in the URL and in the options. The
 * message never holds the password.
 */
export function prepareUpstream(what: string, url: string, options: UpstreamOptions): Upstream {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ServerPushError('SP_ERR_CONFIG', `invalid ${what} URL ${JSON.stringify(redactUrl(url))}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ServerPushError('SP_ERR_CONFIG', `${what} URL must be http or https (${redactUrl(parsed)})`);
  const secrets = new Secrets();
  secrets.addFromUrl(parsed);
  const fromUrl = parsed.username !== '' || parsed.password !== '';
  if (fromUrl && (options.username !== undefined || options.password !== undefined)) {
    throw new ServerPushError('SP_ERR_CONFIG', `${what} credentials given twice: in the URL and as username/password; give them once`);
  }
  let credentials: Credentials | undefined;
  if (fromUrl) credentials = { username: decode(parsed.username), password: decode(parsed.password) };
  else if (options.username !== undefined || options.password !== undefined) credentials = { username: options.username ?? '', password: options.password ?? '' };
  secrets.add(credentials?.password);
  for (const value of Object.values(options.headers ?? {})) secrets.add(value);
  parsed.username = '';
  parsed.password = '';
  const plain = parsed.href;
  const shownUrl = new URL(plain);
  if (credentials) {
    shownUrl.username = encodeURIComponent(credentials.username);
    if (credentials.password !== '') shownUrl.password = REDACTED;
  }
  const displayUrl = redactUrl(shownUrl);
  return {
    url: plain,
    displayUrl,
    secrets,
    fetch: authenticatingFetch({ credentials }),
    shown: (message) => secrets.scrub(message.split(plain).join(displayUrl)),
  };
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
