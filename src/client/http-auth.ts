/**
 * HTTP authentication as IP cameras ask for it: Basic (RFC 7617) and Digest (RFC 7616: MD5,
 * SHA-256, SHA-512-256 and their -sess variants, qop=auth, nc/cnonce, userhash, a new nonce on
 * `stale=true`), answered when a 401's `WWW-Authenticate` asks for it. Wraps a fetch, so that the
 * runtime-neutral `fetchParts` gets it as its `fetch` option.
 *
 * Node only: Digest needs MD5, which Web Crypto lacks (node:crypto). Not part of the
 * runtime-neutral entries (`serverpush/fetch`, `serverpush/client`). docs/decisions/0014.
 */
import { createHash, getHashes, randomBytes } from 'node:crypto';
import { ServerPushError } from '../errors.ts';
import { redactUrl } from '../redact.ts';

/** A user name and password for an upstream. */
export interface Credentials {
  username: string;
  password: string;
}

/** One challenge of a `WWW-Authenticate` header: its scheme (lower case) and parameters. */
export interface Challenge {
  scheme: string;
  /** Parameter names in lower case; values unquoted. */
  params: Map<string, string>;
  /** A token68 instead of parameters (e.g. `Negotiate abc==`). */
  token68?: string;
}

const TCHARS = "!#$%&'*+.^_`|~0-9A-Za-z-";
const TOKEN = new RegExp(`[${TCHARS}]+`, 'y');
// `name=` followed by a value (a token or a quoted string): tells a parameter from a new challenge or a token68.
const PARAM_START = new RegExp(`([${TCHARS}]+)[ \\t]*=[ \\t]*(?=["${TCHARS}])`, 'y');
const TOKEN68 = /[A-Za-z0-9\-._~+/]+=*/y;

/**
 * Parses a `WWW-Authenticate` value into its challenges (RFC 9110 §11.6.1): several challenges
 * may share one header (`Digest realm="a", nonce="b", Basic realm="a"`), as fetch joins repeated
 * headers with commas. Stops at malformed input, keeping what it read.
 */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let i = 0;
  const skip = (chars: string) => {
    while (i < header.length && chars.includes(header[i]!)) i++;
  };
  const startsParam = (at: number) => {
    PARAM_START.lastIndex = at;
    return PARAM_START.test(header);
  };
  while (i < header.length) {
    skip(' \t,');
    TOKEN.lastIndex = i;
    const scheme = TOKEN.exec(header);
    if (!scheme) break;
    i = TOKEN.lastIndex;
    const challenge: Challenge = { scheme: scheme[0].toLowerCase(), params: new Map() };
    challenges.push(challenge);
    skip(' \t');
    if (!startsParam(i)) {
      TOKEN68.lastIndex = i;
      const token68 = TOKEN68.exec(header);
      if (token68) {
        challenge.token68 = token68[0];
        i = TOKEN68.lastIndex;
      }
      continue;
    }
    for (;;) {
      PARAM_START.lastIndex = i;
      const param = PARAM_START.exec(header);
      if (!param) break;
      i = PARAM_START.lastIndex;
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < header.length && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < header.length) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        TOKEN.lastIndex = i;
        value = TOKEN.exec(header)![0];
        i = TOKEN.lastIndex;
      }
      const name = param[1]!.toLowerCase();
      if (!challenge.params.has(name)) challenge.params.set(name, value);
      skip(' \t');
      if (header[i] !== ',') break;
      let next = i;
      while (next < header.length && ' \t,'.includes(header[next]!)) next++;
      i = next;
      if (!startsParam(next)) break;
    }
  }
  return challenges;
}

/** Digest algorithms, strongest first, with node:crypto's name of their hash. */
const DIGEST_ALGORITHMS: ReadonlyArray<[name: string, hash: string]> = [
  ['SHA-512-256', 'sha512-256'],
  ['SHA-256', 'sha256'],
  ['MD5', 'md5'],
];
let availableHashes: Set<string> | undefined;

function hashOf(algorithm: string): string | undefined {
  const base = algorithm.toUpperCase().replace(/-SESS$/, '');
  const hash = DIGEST_ALGORITHMS.find(([name]) => name === base)?.[1];
  availableHashes ??= new Set(getHashes());
  return hash !== undefined && availableHashes.has(hash) ? hash : undefined;
}

/** Why a Digest challenge cannot be answered, or undefined when it can. */
function digestProblem(challenge: Challenge): string | undefined {
  const algorithm = challenge.params.get('algorithm') ?? 'MD5';
  if (!hashOf(algorithm)) return `Digest algorithm ${algorithm} is not supported (MD5, SHA-256, SHA-512-256 and their -sess variants are)`;
  if (!challenge.params.has('nonce')) return 'a Digest challenge without a nonce';
  const qop = challenge.params.get('qop');
  if (qop !== undefined && !qop.split(',').some((q) => q.trim().toLowerCase() === 'auth')) return `Digest qop=${qop} is not supported (qop=auth is)`;
  return undefined;
}

function rank(challenge: Challenge): number {
  if (challenge.scheme === 'basic') return 1;
  if (challenge.scheme !== 'digest' || digestProblem(challenge)) return 0;
  const base = (challenge.params.get('algorithm') ?? 'MD5').toUpperCase().replace(/-SESS$/, '');
  return 10 + DIGEST_ALGORITHMS.length - DIGEST_ALGORITHMS.findIndex(([name]) => name === base);
}

/** The challenge to answer: the strongest Digest, else Basic; undefined when none can be answered. */
export function chooseChallenge(challenges: readonly Challenge[]): Challenge | undefined {
  let best: Challenge | undefined;
  for (const challenge of challenges) if (rank(challenge) > 0 && (!best || rank(challenge) > rank(best))) best = challenge;
  return best;
}

/** A quoted-string (RFC 9110 §5.6.4). */
function quote(value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/** RFC 8187 ext-value, for a Digest user name that is not ASCII (RFC 7616 §3.4.4). */
function extValue(value: string): string {
  return `UTF-8''${encodeURIComponent(value).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}

/** The `Authorization` value of HTTP Basic (RFC 7617; user and password as UTF-8). */
export function basicAuthorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`;
}

/** What one answer to a Digest challenge needs besides the challenge. */
export interface DigestRequest {
  method: string;
  /** The request target: path and query. */
  uri: string;
  /** The nonce count, 1 for the first use of a nonce. */
  nc: number;
  /** The client nonce; random by default. */
  cnonce?: string;
}

/** The `Authorization` value answering a Digest challenge (RFC 7616 §3.4). */
export function digestAuthorization(challenge: Challenge, credentials: Credentials, request: DigestRequest): string {
  const problem = digestProblem(challenge);
  if (problem) throw new ServerPushError('SP_ERR_AUTH_FAILED', problem);
  const algorithm = challenge.params.get('algorithm') ?? 'MD5';
  const hash = hashOf(algorithm)!;
  const H = (text: string) => createHash(hash).update(text, 'utf8').digest('hex');
  const realm = challenge.params.get('realm') ?? '';
  const nonce = challenge.params.get('nonce')!;
  const qop = challenge.params.get('qop') === undefined ? undefined : 'auth';
  const cnonce = request.cnonce ?? randomBytes(16).toString('hex');
  const nc = request.nc.toString(16).padStart(8, '0');
  let ha1 = H(`${credentials.username}:${realm}:${credentials.password}`);
  if (/-sess$/i.test(algorithm)) ha1 = H(`${ha1}:${nonce}:${cnonce}`);
  const ha2 = H(`${request.method}:${request.uri}`);
  const response = qop ? H(`${ha1}:${nonce}:${nc}:${cnonce}:${qop}:${ha2}`) : H(`${ha1}:${nonce}:${ha2}`);
  const userhash = challenge.params.get('userhash')?.toLowerCase() === 'true';
  const fields: string[] = [];
  if (userhash) fields.push(`username=${quote(H(`${credentials.username}:${realm}`))}`);
  else if (/^[\x20-\x7e]*$/.test(credentials.username)) fields.push(`username=${quote(credentials.username)}`);
  else fields.push(`username*=${extValue(credentials.username)}`);
  fields.push(`realm=${quote(realm)}`, `uri=${quote(request.uri)}`, `algorithm=${algorithm}`, `nonce=${quote(nonce)}`);
  if (qop) fields.push(`nc=${nc}`, `cnonce=${quote(cnonce)}`, `qop=${qop}`);
  fields.push(`response=${quote(response)}`);
  const opaque = challenge.params.get('opaque');
  if (opaque !== undefined) fields.push(`opaque=${quote(opaque)}`);
  if (userhash) fields.push('userhash=true');
  return `Digest ${fields.join(', ')}`;
}

/** How a challenge reads in a message: `Digest (SHA-256) realm "cam"`. */
function describeChallenge(challenge: Challenge): string {
  const scheme = challenge.scheme === 'digest' ? 'Digest' : challenge.scheme === 'basic' ? 'Basic' : challenge.scheme;
  const algorithm = challenge.scheme === 'digest' ? ` (${challenge.params.get('algorithm') ?? 'MD5'})` : '';
  const realm = challenge.params.get('realm');
  return `${scheme}${algorithm}${realm === undefined ? '' : ` realm ${JSON.stringify(realm)}`}`;
}

/** Options of {@link authenticatingFetch}. */
export interface AuthenticatingFetchOptions {
  /** Sent when the server asks (a 401); without them a 401 fails with `SP_ERR_AUTH_FAILED` at once. */
  credentials?: Credentials | undefined;
  /** The fetch to wrap. @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
}

/** Which scheme the last successful request of an {@link authenticatingFetch} answered. */
export type AuthScheme = 'none' | 'basic' | 'digest';

/** A fetch that answers authentication challenges; `scheme` tells which one it last used. */
export type AuthenticatingFetch = typeof globalThis.fetch & { readonly scheme: AuthScheme };

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;

/**
 * A fetch (for GET and HEAD requests) that answers a 401 with the credentials, by the strongest
 * scheme the server offers (Digest SHA-512-256, SHA-256, MD5, then Basic), and reuses what it
 * learnt: later requests (a relay's reconnections) send the answer at once, with the Digest nonce
 * count increased, and get a new challenge when the nonce is stale. Redirects are followed by
 * hand, so that credentials go to the first URL's origin only.
 *
 * Throws `SP_ERR_AUTH_FAILED` — naming the user, never the password — when the server refuses
 * the credentials, asks for credentials none were given for, or asks only for schemes it cannot
 * answer (Negotiate, NTLM, Digest with auth-int).
 */
export function authenticatingFetch(options: AuthenticatingFetchOptions = {}): AuthenticatingFetch {
  const base = options.fetch ?? globalThis.fetch;
  const credentials = options.credentials;
  // What the server asked last: answered at once on the next request to its origin.
  let cached: { origin: string; challenge: Challenge; nc: number } | undefined;
  let scheme: AuthScheme = 'none';

  const authorization = (url: URL, method: string): string | undefined => {
    if (!credentials || !cached || cached.origin !== url.origin) return undefined;
    if (cached.challenge.scheme === 'basic') return basicAuthorization(credentials);
    cached.nc++;
    return digestAuthorization(cached.challenge, credentials, { method, uri: url.pathname + url.search, nc: cached.nc });
  };

  const authFetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const method = (init.method ?? 'GET').toUpperCase();
    let url = new URL(input instanceof Request ? input.url : String(input));
    const origin = url.origin;
    const follow = init.redirect !== 'manual' && init.redirect !== 'error';
    let redirects = 0;
    // Set when the Authorization just sent answered a challenge fresh from the server: another 401 then means "wrong".
    let answeredFresh = false;
    // Challenges answered for this URL: a server that calls every nonce stale is not retried for ever.
    let challenged = 0;
    for (;;) {
      const headers = new Headers(init.headers);
      const sameOrigin = url.origin === origin;
      if (!sameOrigin) headers.delete('authorization');
      const answer = sameOrigin ? authorization(url, method) : undefined;
      if (answer) headers.set('authorization', answer);
      const response = await base(url, { ...init, method, headers, redirect: 'manual' });
      if (response.status === 401 && sameOrigin) {
        const challenges = parseChallenges(response.headers.get('www-authenticate') ?? '');
        await response.body?.cancel().catch(() => {});
        const shown = redactUrl(url);
        const offered = challenges.map(describeChallenge).join(', ') || 'no WWW-Authenticate challenge';
        if (!credentials) {
          throw new ServerPushError('SP_ERR_AUTH_FAILED', `${shown} needs credentials (HTTP 401, asks for ${offered}); give them as user:password@ in the URL, or as username and password`);
        }
        const chosen = chooseChallenge(challenges);
        if (!chosen) {
          const why = challenges.filter((c) => c.scheme === 'digest').map(digestProblem).find(Boolean);
          throw new ServerPushError('SP_ERR_AUTH_FAILED', `${shown} asks for ${offered}, which serverpush cannot answer${why ? ` (${why})` : ''}; it answers Basic and Digest`);
        }
        const stale = chosen.scheme === 'digest' && chosen.params.get('stale')?.toLowerCase() === 'true';
        if (answeredFresh && !stale) {
          cached = undefined;
          throw new ServerPushError('SP_ERR_AUTH_FAILED', `${shown} refused the credentials of user ${JSON.stringify(credentials.username)} (HTTP 401, ${describeChallenge(chosen)})`);
        }
        if (++challenged > 3) throw new ServerPushError('SP_ERR_AUTH_FAILED', `${shown} answered HTTP 401 (${describeChallenge(chosen)}) ${challenged} times in a row, each time with a new nonce`);
        cached = { origin, challenge: chosen, nc: 0 };
        answeredFresh = true;
        continue;
      }
      if (follow && REDIRECTS.has(response.status) && response.headers.has('location')) {
        await response.body?.cancel().catch(() => {});
        if (++redirects > MAX_REDIRECTS) throw new ServerPushError('SP_ERR_CONNECTION', `${redactUrl(url)}: more than ${MAX_REDIRECTS} redirects`);
        url = new URL(response.headers.get('location')!, url);
        answeredFresh = false;
        challenged = 0;
        continue;
      }
      if (response.ok) scheme = answer === undefined ? 'none' : cached?.challenge.scheme === 'digest' ? 'digest' : 'basic';
      return response;
    }
  };
  Object.defineProperty(authFetch, 'scheme', { get: () => scheme, enumerable: true });
  return authFetch as AuthenticatingFetch;
}
