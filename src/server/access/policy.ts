/**
 * The access policy: who may read what (docs/security.md, decision 0015). A value the server
 * holds and may swap at run time (`server.setAccess`): made by {@link createAccessPolicy} from
 * {@link AccessOptions} (the config file's keys), it authenticates a request's credentials and
 * says whether the one it found may read a resource.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { ServerPushError, isServerPushError } from '../../errors.ts';
import { DEFAULT_CREDENTIAL_CACHE_MS } from '../../defaults.ts';
import { AddressList, type AddressRule } from './address.ts';
import { Htpasswd } from './htpasswd.ts';
import { TokenSet, readTokensFile, checkTokens, type TokenEntry } from './tokens.ts';
import { readLinkSecret, verifyLink, SCOPE_NAME } from './signed-link.ts';
import type { FailureTrackerOptions } from './failures.ts';
import { createJwtVerifier, looksLikeJwt, type JwtCheck, type JwtOptions } from './jwt.ts';

/**
 * Who may read a resource, any of: `"public"` (anyone, no credentials), `"authenticated"` (any
 * valid user or token), a user name of the htpasswd file (or `"user:NAME"`), `"token:NAME"`, or
 * `"scope:NAME"` (tokens and signed links carrying that scope).
 */
export type ReadList = readonly string[];

/** Rights of one stream. */
export interface StreamAccess {
  /** Who may read the stream, its snapshot and its viewer page. @default the `access.streams` list */
  read?: ReadList;
  /** Only these addresses (CIDR) may read it. @default any */
  allow?: readonly string[];
  /** These addresses may not. @default none */
  deny?: readonly string[];
}

/** The server's access control (`ServeOptions.access`; the config file's keys of the same names). */
export interface AccessOptions {
  /** An htpasswd file of users with bcrypt hashes. */
  htpasswd?: string;
  /** Bearer tokens (their SHA-256), inline. */
  tokens?: readonly TokenEntry[];
  /** A JSON file holding a list of bearer tokens (as `tokens`). */
  tokensFile?: string;
  /** A file holding the secret of signed links (`?token=`). */
  linkSecretFile?: string;
  /** Only these addresses (CIDR) may use the server. @default any */
  allow?: readonly string[];
  /** These addresses may not use the server. @default none */
  deny?: readonly string[];
  /** Proxies whose `X-Forwarded-For` / `Forwarded` name the client. @default none */
  trustProxy?: readonly string[];
  /**
   * Who may read each kind of resource: the index page (`/`), `/status`, `/metrics`, the health
   * checks, and streams that have no `read` of their own. With users or tokens configured every
   * one defaults to `["authenticated"]`, except `health` (`["public"]`); without, all are public.
   */
  read?: { index?: ReadList; status?: ReadList; metrics?: ReadList; health?: ReadList; streams?: ReadList };
  /** Rights of named streams. */
  streams?: Readonly<Record<string, StreamAccess>>;
  /** Failed authentications and the lockout. */
  failures?: FailureTrackerOptions;
  /** How long a verified user name and password is remembered. @default 60000 */
  credentialCacheMs?: number;
  /** JSON Web Tokens as bearer tokens (HS256, RS256, ES256), with a claim naming their streams. */
  jwt?: JwtOptions;
}

/** What a request is for, as far as rights go. */
export type Resource =
  | { kind: 'stream'; name: string }
  | { kind: 'index' | 'status' | 'metrics' | 'health' }
  /** The viewer's script and frame document: the same for everyone, public. */
  | { kind: 'asset' };

/** Who a request is. */
export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'user'; name: string }
  | { kind: 'token'; name: string; scopes: readonly string[] }
  /** A verified JWT: its subject, the streams its claim names (`*`: all), its scopes. */
  | { kind: 'jwt'; name: string; streams: readonly string[]; scopes: readonly string[] }
  /** A signed link: valid for the path it was signed for only. */
  | { kind: 'link'; scope: string | undefined };

/** What authentication found: a principal, or why the credentials are refused. */
export type Authentication =
  | { ok: true; principal: Principal; /** credentials were given (not anonymous) */ credentials: boolean }
  | { ok: false; reason: 'invalid' | 'expired' | 'unsupported' | 'busy'; /** who the credentials claimed to be, when that is a known user (logs) */ claimed?: string };

const SPECIAL = new Set(['public', 'authenticated']);

/** What a password check that could not run (too many waiting) resolves to in the cache. */
const BUSY = Symbol('busy');

export class AccessPolicy {
  /** True when no user, token or link secret is configured and every list is public: nothing is checked but addresses. */
  readonly open: boolean;
  readonly trustProxy: AddressList;
  readonly server: AddressRule;
  private readonly users: Htpasswd | undefined;
  private readonly tokens: TokenSet;
  private readonly linkSecret: Buffer | undefined;
  private readonly jwt: ((token: string) => Promise<JwtCheck>) | undefined;
  private readonly lists: Record<'index' | 'status' | 'metrics' | 'health' | 'streams', ReadList>;
  private readonly streamRules: Map<string, { read: ReadList; address: AddressRule }>;
  readonly failureOptions: FailureTrackerOptions;
  private readonly cacheMs: number;
  /** Verified Basic credentials, keyed by an HMAC of the header (never the password), with their expiry. */
  private readonly cache = new Map<string, { user: Promise<string | undefined | typeof BUSY>; until: number }>();
  private readonly cacheKey = randomBytes(32);

  /** Use {@link createAccessPolicy}. */
  constructor(parts: { users: Htpasswd | undefined; tokens: TokenSet; linkSecret: Buffer | undefined; jwt?: ((token: string) => Promise<JwtCheck>) | undefined; options: AccessOptions }) {
    const { users, tokens, linkSecret, options } = parts;
    this.users = users;
    this.tokens = tokens;
    this.linkSecret = linkSecret;
    this.jwt = parts.jwt;
    const guarded = users !== undefined || tokens.size > 0 || linkSecret !== undefined || this.jwt !== undefined;
    const fallback: ReadList = guarded ? ['authenticated'] : ['public'];
    const read = options.read ?? {};
    this.lists = {
      index: read.index ?? fallback,
      status: read.status ?? fallback,
      metrics: read.metrics ?? read.status ?? fallback,
      health: read.health ?? ['public'],
      streams: read.streams ?? fallback,
    };
    this.trustProxy = new AddressList(options.trustProxy ?? [], 'trustProxy');
    this.server = { allow: new AddressList(options.allow ?? [], 'allow'), deny: new AddressList(options.deny ?? [], 'deny') };
    this.streamRules = new Map(Object.entries(options.streams ?? {}).map(([name, rule]) => [name, {
      read: rule.read ?? this.lists.streams,
      address: { allow: new AddressList(rule.allow ?? [], `streams.${name}.allow`), deny: new AddressList(rule.deny ?? [], `streams.${name}.deny`) },
    }]));
    for (const [where, list] of [...Object.entries(this.lists), ...[...this.streamRules].map(([name, rule]) => [`streams.${name}.read`, rule.read] as const)]) this.checkList(list, where);
    this.failureOptions = options.failures ?? {};
    this.cacheMs = options.credentialCacheMs ?? DEFAULT_CREDENTIAL_CACHE_MS;
    this.open = !guarded && [...Object.values(this.lists), ...[...this.streamRules.values()].map((rule) => rule.read)].every((list) => list.includes('public'));
  }

  /** Refuses a list naming a user, token or scope nobody has (a typo would lock everyone out, or worse). */
  private checkList(list: ReadList, where: string): void {
    if (!Array.isArray(list) || list.length === 0) throw new ServerPushError('SP_ERR_CONFIG', `read list ${where} must be a non-empty list (use ["public"] for anyone)`);
    const tokenNames = new Set(this.tokens.names());
    for (const entry of list) {
      if (typeof entry !== 'string') throw new ServerPushError('SP_ERR_CONFIG', `read list ${where}: entries must be strings`);
      if (SPECIAL.has(entry)) continue;
      if (entry.startsWith('scope:')) {
        if (!SCOPE_NAME.test(entry.slice(6))) throw new ServerPushError('SP_ERR_CONFIG', `read list ${where}: ${JSON.stringify(entry)} is not a scope name`);
        continue;
      }
      if (entry.startsWith('token:')) {
        if (!tokenNames.has(entry.slice(6))) throw new ServerPushError('SP_ERR_CONFIG', `read list ${where}: there is no token named ${JSON.stringify(entry.slice(6))}`);
        continue;
      }
      const user = entry.startsWith('user:') ? entry.slice(5) : entry;
      if (!this.users) throw new ServerPushError('SP_ERR_CONFIG', `read list ${where} names the user ${JSON.stringify(user)}, but no htpasswd file is given`);
      if (!this.users.has(user)) throw new ServerPushError('SP_ERR_CONFIG', `read list ${where}: no user ${JSON.stringify(user)} in ${this.users.file}`);
    }
  }

  /** Checks that every stream with rights exists. Throws `SP_ERR_CONFIG`. */
  checkStreams(names: readonly string[]): void {
    for (const name of this.streamRules.keys()) if (!names.includes(name)) throw new ServerPushError('SP_ERR_CONFIG', `access rules for stream ${JSON.stringify(name)}, which the server does not have (streams: ${names.join(', ')})`);
  }

  /** The schemes a 401 offers (`WWW-Authenticate`). */
  challenges(): string[] {
    const offered = ['Basic realm="serverpush", charset="UTF-8"'];
    if (this.tokens.size > 0 || this.jwt) offered.push('Bearer realm="serverpush"');
    return offered;
  }

  /** The address rule of a stream (the server's applies too, checked first). */
  streamAddressRule(name: string): AddressRule | undefined {
    return this.streamRules.get(name)?.address;
  }

  private listOf(resource: Resource): ReadList {
    switch (resource.kind) {
      case 'asset': return ['public'];
      case 'stream': return this.streamRules.get(resource.name)?.read ?? this.lists.streams;
      default: return this.lists[resource.kind];
    }
  }

  /** True when anyone may read `resource` without credentials. */
  isPublic(resource: Resource): boolean {
    return this.listOf(resource).includes('public');
  }

  /** True when `principal` may read `resource`. A link principal is only ever made for the path it was signed for. */
  mayRead(principal: Principal, resource: Resource): boolean {
    const list = this.listOf(resource);
    if (list.includes('public')) return true;
    switch (principal.kind) {
      case 'anonymous': return false;
      case 'user': return list.includes('authenticated') || list.includes(principal.name) || list.includes(`user:${principal.name}`);
      case 'token': return list.includes('authenticated') || list.includes(`token:${principal.name}`) || principal.scopes.some((scope) => list.includes(`scope:${scope}`));
      // The issuer is the authority on its tokens: a stream its claim names may be read.
      case 'jwt': return list.includes('authenticated') || principal.scopes.some((scope) => list.includes(`scope:${scope}`))
        || (resource.kind === 'stream' && (principal.streams.includes('*') || principal.streams.includes(resource.name)));
      // A link is the signer's word (they hold the secret); its scope, when it has one, must be admitted too.
      case 'link': return resource.kind === 'stream' && (principal.scope === undefined || list.includes(`scope:${principal.scope}`) || list.includes('authenticated'));
    }
  }

  /**
   * Who the request is: from `Authorization` (Basic, Bearer) or a signed link's `token` (checked
   * against `target`, see `linkTarget`). No credentials: anonymous.
   */
  async authenticate(authorization: string | undefined, linkToken: string | null, target: string): Promise<Authentication> {
    if (authorization !== undefined) {
      const space = authorization.indexOf(' ');
      const scheme = (space === -1 ? authorization : authorization.slice(0, space)).toLowerCase();
      const value = space === -1 ? '' : authorization.slice(space + 1).trim();
      if (scheme === 'basic' && this.users) return this.basic(value);
      if (scheme === 'bearer' && (this.tokens.size > 0 || this.jwt)) {
        const entry = this.tokens.find(value);
        if (entry) return { ok: true, principal: { kind: 'token', name: entry.name, scopes: entry.scopes ?? [] }, credentials: true };
        if (this.jwt && looksLikeJwt(value)) {
          const check = await this.jwt(value);
          return check.ok ? { ok: true, principal: { kind: 'jwt', name: check.grant.subject, streams: check.grant.streams, scopes: check.grant.scopes }, credentials: true } : { ok: false, reason: check.reason };
        }
        return { ok: false, reason: 'invalid' };
      }
      // A scheme this server does not take: as wrong as a wrong password (and counted so).
      return { ok: false, reason: scheme === 'basic' || scheme === 'bearer' ? 'invalid' : 'unsupported' };
    }
    if (linkToken !== null) {
      if (!this.linkSecret) return { ok: false, reason: 'invalid' };
      const check = verifyLink(this.linkSecret, target, linkToken);
      return check.ok ? { ok: true, principal: { kind: 'link', scope: check.scope }, credentials: true } : { ok: false, reason: check.reason };
    }
    return { ok: true, principal: { kind: 'anonymous' }, credentials: false };
  }

  private async basic(value: string): Promise<Authentication> {
    // Strict base64 (RFC 7617 §2): what does not decode and encode back to itself is refused.
    const bytes = Buffer.from(value, 'base64');
    const decoded = bytes.toString('base64') === value ? bytes.toString('utf8') : '';
    const colon = decoded.indexOf(':');
    if (colon <= 0) return { ok: false, reason: 'invalid' };
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const key = createHmac('sha256', this.cacheKey).update(value).digest('base64');
    const now = performance.now();
    let cached = this.cache.get(key);
    if (!cached || cached.until <= now) {
      if (cached) this.cache.delete(key);
      // Concurrent requests with the same credentials (an <img> wall reconnecting) share one check.
      cached = { user: this.users!.verify(user, password).then((ok) => (ok ? user : undefined), (error: unknown) => {
        if (isServerPushError(error, 'SP_ERR_AUTH_BUSY')) return BUSY;
        throw error;
      }), until: now + this.cacheMs };
      const entry = cached;
      // A check that failed outright (the worker died) is not remembered either.
      entry.user.catch(() => { if (this.cache.get(key) === entry) this.cache.delete(key); });
      this.cache.set(key, cached);
      while (this.cache.size > 1024) this.cache.delete(this.cache.keys().next().value!);
    }
    const verified = await cached.user;
    if (verified === BUSY) {
      if (this.cache.get(key) === cached) this.cache.delete(key);
      return { ok: false, reason: 'busy' };
    }
    if (verified === undefined) {
      // Only successes are remembered: a wrong password costs a whole check every time.
      if (this.cache.get(key) === cached) this.cache.delete(key);
      return { ok: false, reason: 'invalid', ...(this.users!.has(user) ? { claimed: user } : {}) };
    }
    return { ok: true, principal: { kind: 'user', name: verified }, credentials: true };
  }
}

/**
 * Builds an access policy: reads the htpasswd file, the tokens file and the link secret, and checks
 * every list. Throws `SP_ERR_CONFIG` naming what is wrong.
 */
export async function createAccessPolicy(options: AccessOptions = {}): Promise<AccessPolicy> {
  const users = options.htpasswd === undefined ? undefined : await Htpasswd.load(options.htpasswd);
  const entries = [...checkTokens(options.tokens ?? [], 'tokens'), ...(options.tokensFile === undefined ? [] : await readTokensFile(options.tokensFile))];
  const linkSecret = options.linkSecretFile === undefined ? undefined : await readLinkSecret(options.linkSecretFile);
  const jwt = options.jwt === undefined ? undefined : await createJwtVerifier(options.jwt);
  return new AccessPolicy({ users, tokens: new TokenSet(entries), linkSecret, jwt, options });
}
