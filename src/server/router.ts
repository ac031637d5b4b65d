/**
 * Which resource a request names: the server's paths below its `basePath`, mjpg-streamer's
 * `/?action=stream_N` URLs, trailing slashes. The server routes first, then checks access to what
 * was routed (access/guard.ts), then dispatches (server.ts).
 */
import { ServerPushError } from '../errors.ts';
import { ViewerRoutes } from './viewer-routes.ts';
import type { RouteKind } from './operations.ts';

/** What a request names: a stream's `stream` or `snapshot`, a server resource, or nothing known (undefined). */
export type Route =
  | { endpoint: string; action: 'stream' | 'snapshot' }
  | { unknownIndex: number }
  | 'index'
  | 'status'
  | 'viewer'
  | 'metrics'
  | 'healthz'
  | 'readyz'
  | undefined;

export class Router {
  /** `''` or a path such as `/webcam` (no trailing slash). */
  readonly basePath: string;

  /** `streamNames`: the server's streams now, in their configured order (they change on a reload). */
  constructor(basePath: string | undefined, private readonly streamNames: () => string[]) {
    this.basePath = normalizeBasePath(basePath);
  }

  /** The request's path below `basePath`; a redirect for the base itself without its slash; undefined outside it. */
  underBase(path: string, query: URLSearchParams): string | { redirect: string } | undefined {
    if (this.basePath === '') return path;
    if (path === this.basePath) {
      // `/webcam?action=stream` is served as it is (players do not all follow redirects); the bare
      // base is sent to `/webcam/`, where the index page's relative links work.
      if (query.has('action')) return '/';
      const search = query.toString();
      return { redirect: `${this.basePath}/${search ? `?${search}` : ''}` };
    }
    return path.startsWith(`${this.basePath}/`) ? path.slice(this.basePath.length) : undefined;
  }

  /** What `path` (below `basePath`) and `query` name. */
  route(path: string, query: URLSearchParams): Route {
    if (path === '/') {
      // mjpg-streamer's URLs, so that clients built for it (OctoPrint, Home Assistant, motionEye)
      // work: ?action=stream|snapshot, and _N for its input N (0: the default stream).
      const action = /^(stream|snapshot)(?:_(\d{1,4}))?$/.exec(query.get('action') ?? '');
      if (action) {
        const index = action[2] === undefined ? 0 : Number(action[2]);
        const name = index === 0 && action[2] === undefined ? 'default' : this.streamByIndex(index);
        return name === undefined ? { unknownIndex: index } : { endpoint: name, action: action[1] as 'stream' | 'snapshot' };
      }
      return 'index';
    }
    if (ViewerRoutes.matches(path)) return 'viewer';
    // `/stream/`, `/snapshot/cam/`, `/status/`: a trailing slash is the same resource.
    const normalized = path.endsWith('/') ? path.slice(0, -1) : path;
    if (normalized === '/status') return 'status';
    if (normalized === '/metrics' || normalized === '/healthz' || normalized === '/readyz') return normalized.slice(1) as 'metrics' | 'healthz' | 'readyz';
    const match = /^\/(stream|snapshot)(?:\/([^/]+))?$/.exec(normalized);
    if (!match) return undefined;
    return { endpoint: match[2] ?? 'default', action: match[1] as 'stream' | 'snapshot' };
  }

  /**
   * The streams in mjpg-streamer's input order, for `?action=stream_N`: `default` first (input 0),
   * then the others as given.
   */
  private streamByIndex(index: number): string | undefined {
    const names = this.streamNames();
    const ordered = names.includes('default') ? ['default', ...names.filter((name) => name !== 'default')] : names;
    return ordered[index];
  }
}

/** The kind of a route for the request counter (metrics: never the raw path). */
export function routeKind(route: Route): RouteKind {
  if (route === undefined) return 'not_found';
  if (typeof route === 'string') return route;
  return 'unknownIndex' in route ? 'not_found' : route.action;
}

/**
 * `basePath` as the server uses it: `''` for the root, else `/a/b` (one leading slash, no trailing
 * one). Throws `SP_ERR_CONFIG` for a path that is not one (`..`, `?`, `#`, `//`, spaces).
 */
export function normalizeBasePath(basePath: string | undefined): string {
  if (basePath === undefined) return '';
  const trimmed = basePath.replace(/\/+$/, '');
  if (trimmed === '') return '';
  if (!/^\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+(?:\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*$/.test(trimmed) || trimmed.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw new ServerPushError('SP_ERR_CONFIG', `basePath must be a path such as /webcam (segments of letters, digits and -._~), got ${JSON.stringify(basePath)}`);
  }
  return trimmed;
}
