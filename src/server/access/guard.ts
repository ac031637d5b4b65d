/**
 * The one access check of the server (decision 0015): every request, whatever its route, passes
 * here after routing and before it is answered. It works on what both HTTP/1 and HTTP/2's
 * compatibility API give (`req.headers`, `req.socket.remoteAddress`) and answers with a
 * {@link Refusal}, never by writing to a socket.
 *
 * In order: the server's address lists (403); a locked-out address (429); the credentials
 * (401, 401 `SP_ERR_TOKEN_EXPIRED`); the right to the resource (401 for the anonymous, 403 for
 * the others; a stream that does not exist is answered as one that may not be read, unless the
 * client may read every stream, so names cannot be probed); the stream's address lists (403).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { silentLogger } from '../../log.ts';
import type { ServeHooks } from '../../adapters/serve.ts';
import type { Logger } from '../../log.ts';
import type { Refusal } from '../../adapters/serve.ts';
import { redactTarget } from '../../redact.ts';
import { admitsAddress, clientAddress } from './address.ts';
import { FailureTracker } from './failures.ts';
import { LINK_PARAMETER, linkTarget } from './signed-link.ts';
import type { AccessPolicy, Principal, Resource } from './policy.ts';

/** What the check lets through: who it is, from where, and which streams they may see. */
export interface Admitted {
  readonly principal: Principal;
  /** The client's address (behind trusted proxies: the one they name). */
  readonly clientAddress: string | undefined;
  /** True when the client may read the stream `name` (for the index page, `/status`, 404 messages). */
  mayReadStream(name: string): boolean;
}

/** Where a request comes from: the connection's peer and the headers (HTTP/1 and HTTP/2's compatibility API alike). */
export interface RequestOrigin {
  remoteAddress: string | undefined;
  /** `authorization`, and `forwarded` / `x-forwarded-for` (read only from a trusted proxy). */
  headers: IncomingHttpHeaders;
}

/** What the check needs to know of a routed request. */
export interface GuardRequest {
  resource: Resource;
  /** The path below `basePath`, and the query (for a signed link's target and token). */
  path: string;
  query: URLSearchParams;
  /** The names of the streams the server has. */
  streams: readonly string[];
}

function refusal(status: number, code: Refusal['code'], message: string, headers?: Record<string, string>): Refusal {
  return headers ? { status, code, message, headers } : { status, code, message };
}

/**
 * The resource a route is about. `route` is what the server's router returned: `'index'`,
 * `'status'`, `'metrics'`, `'health'`/`'healthz'`/`'readyz'`, `'viewer'`, `{ endpoint }` or
 * `{ unknownIndex }`. Anything else is taken as `status` (restricted), never as public.
 */
export function resourceOf(route: unknown, path: string): Resource {
  if (typeof route === 'object' && route !== null) {
    if ('endpoint' in route && typeof route.endpoint === 'string') return { kind: 'stream', name: route.endpoint };
    // `?action=stream_N` of an input the server does not have: no stream of that name exists.
    return { kind: 'stream', name: '\0unknown' };
  }
  switch (route) {
    case 'index': return { kind: 'index' };
    case 'metrics': return { kind: 'metrics' };
    case 'health': case 'healthz': case 'readyz': return { kind: 'health' };
    case 'viewer': {
      if (path === '/viewer/player.js' || path === '/viewer/frame') return { kind: 'asset' };
      // As ViewerRoutes reads it: `/view` is the default stream, `/view/NAME` (percent-decoded) another.
      const encoded = path.slice('/view/'.length);
      if (!encoded) return { kind: 'stream', name: 'default' };
      try {
        return { kind: 'stream', name: decodeURIComponent(encoded) };
      } catch {
        return { kind: 'stream', name: '\0unknown' };
      }
    }
    default: return { kind: 'status' };
  }
}

/** The check, with the policy in force (swappable) and the failure counts (kept across swaps). */
export class AccessGuard {
  private policy: AccessPolicy;
  private readonly logger: Logger;
  failures: FailureTracker;

  constructor(policy: AccessPolicy, logger: Logger) {
    this.policy = policy;
    this.logger = logger;
    this.failures = new FailureTracker(policy.failureOptions);
  }

  get current(): AccessPolicy {
    return this.policy;
  }

  /** Puts `policy` in force for the requests that come next. Failure counts are kept unless its limits differ. */
  setPolicy(policy: AccessPolicy): void {
    const before = this.failures;
    const options = policy.failureOptions;
    if ((options.limit ?? before.limit) !== before.limit || (options.windowMs ?? before.windowMs) !== before.windowMs || (options.lockoutMs ?? before.lockoutMs) !== before.lockoutMs) {
      this.failures = new FailureTracker(options);
    }
    this.policy = policy;
  }

  /** Checks one routed request: a refusal, or who it is. */
  async check(from: RequestOrigin, request: GuardRequest, options: { recheck?: boolean } = {}): Promise<Admitted | Refusal> {
    const policy = this.policy;
    // `recheck`: an open session checked again against a new policy; its credentials were good
    // before, so a refusal now is no guess: it is neither counted, locked out nor warned of.
    const recheck = options.recheck === true;
    const client = clientAddress(from.remoteAddress, from.headers, policy.trustProxy);
    const shown = `${client ?? 'unknown address'}`;
    if (!admitsAddress(policy.server, client)) return refusal(403, 'SP_ERR_FORBIDDEN', 'this address may not use this server');
    const { resource } = request;
    const authorization = from.headers.authorization;
    const linkToken = request.query.get(LINK_PARAMETER);
    const admitted = (principal: Principal): Admitted => ({ principal, clientAddress: client, mayReadStream: (name) => policy.mayRead(principal, { kind: 'stream', name }) });
    const streamAddressAdmits = () => {
      const rule = resource.kind === 'stream' ? policy.streamAddressRule(resource.name) : undefined;
      return !rule || admitsAddress(rule, client);
    };
    const addressRefusal = () => refusal(403, 'SP_ERR_FORBIDDEN', 'this address may not read this stream');
    // Nothing to authenticate: only the stream's address lists apply.
    if (policy.open) return streamAddressAdmits() ? admitted({ kind: 'anonymous' }) : addressRefusal();

    const carriesCredentials = authorization !== undefined || linkToken !== null;
    const locked = this.failures.lockedFor(client);
    if (!recheck && locked > 0 && (carriesCredentials || !policy.isPublic(resource))) {
      return refusal(429, 'SP_ERR_TOO_MANY_FAILURES', `too many failed authentications from this address; try again in ${locked} s`, { 'Retry-After': String(locked) });
    }
    const challenge = { 'WWW-Authenticate': policy.challenges().join(', ') };
    const target = linkTarget(request.path, request.query);
    const authentication = await policy.authenticate(authorization, linkToken, target);
    if (!authentication.ok) {
      // Too many password checks wait: not the client's fault, not a failure; try again soon.
      if (authentication.reason === 'busy') return refusal(503, 'SP_ERR_AUTH_BUSY', 'too many password checks at once; try again in a second', { 'Retry-After': '1' });
      if (authentication.reason === 'expired') {
        this.logger.info(`access: expired ${authorization === undefined ? 'signed link' : 'token'} from ${shown} for ${redactTarget(request.path, request.query)}`);
        return refusal(401, 'SP_ERR_TOKEN_EXPIRED', authorization === undefined ? 'this link has expired; ask for a new one' : 'this token has expired', challenge);
      }
      if (recheck) return refusal(401, 'SP_ERR_UNAUTHORIZED', 'authentication failed', challenge);
      const what = linkToken !== null && authorization === undefined ? 'an invalid signed link' : authentication.claimed !== undefined ? `a wrong password for user ${JSON.stringify(authentication.claimed)}` : 'unknown credentials';
      const lockedNow = this.failures.fail(client);
      this.logger.warn('SP_ERR_UNAUTHORIZED', `access: ${what} from ${shown} for ${redactTarget(request.path, request.query)}`);
      if (lockedNow) this.logger.warn('SP_ERR_TOO_MANY_FAILURES', `access: ${shown} failed to authenticate ${this.failures.limit} times in ${this.failures.windowMs / 1000} s; refused for ${this.failures.lockoutMs / 1000} s`);
      return refusal(401, 'SP_ERR_UNAUTHORIZED', 'authentication failed', challenge);
    }
    const { principal } = authentication;
    const denied = (): Refusal => principal.kind === 'anonymous'
      ? refusal(401, 'SP_ERR_UNAUTHORIZED', 'authentication required', challenge)
      : refusal(403, 'SP_ERR_FORBIDDEN', principal.kind === 'link' ? 'this link is not for this resource' : 'not allowed here');
    if (resource.kind === 'stream' && !request.streams.includes(resource.name)) {
      // No such stream: say so only to a client who may read every stream (it learns nothing new).
      const seesAll = request.streams.every((name) => policy.mayRead(principal, { kind: 'stream', name })) && policy.mayRead(principal, { kind: 'stream', name: '\0unknown' });
      return seesAll ? admitted(principal) : denied();
    }
    if (!policy.mayRead(principal, resource)) {
      if (principal.kind === 'user' || principal.kind === 'token' || principal.kind === 'jwt') this.logger.info(`access: ${principal.kind} ${JSON.stringify(principal.name)} from ${shown} may not read ${redactTarget(request.path, request.query)}`);
      return denied();
    }
    return streamAddressAdmits() ? admitted(principal) : addressRefusal();
  }
}

/** True when `answer` is a refusal (not an admission). */
export function isRefusal(answer: Admitted | Refusal): answer is Refusal {
  return 'status' in answer;
}

/**
 * The access check as the serving path's `hooks.admit`, for users of the adapters
 * (`liveHandler(stream, { admit: accessAdmission(policy) })`, `serveNode`, `liveResponse`): the
 * stream is the resource (its `read` list and address lists by its name), credentials come from
 * the request's Authorization header or a signed link's `?token=` over the request's path. The
 * client address is the connection's (no proxy headers are read; resolve them in your framework
 * and pass `remoteAddress`). Failed authentications are counted and locked out as in the server.
 */
export function accessAdmission(policy: AccessPolicy, options: { logger?: Logger } = {}): NonNullable<ServeHooks['admit']> {
  const guard = new AccessGuard(policy, options.logger ?? silentLogger);
  return async (request, stream) => {
    const headers: IncomingHttpHeaders = request.authorization === undefined ? {} : { authorization: request.authorization };
    const answer = await guard.check({ remoteAddress: request.remoteAddress, headers }, { resource: { kind: 'stream', name: stream.name }, path: request.path ?? '/', query: request.query, streams: [stream.name] });
    return isRefusal(answer) ? answer : undefined;
  };
}
