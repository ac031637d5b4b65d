import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { ServerPushError } from '../errors.ts';
import { sendBody, sendError, typeFilter, type Endpoint } from './http-util.ts';
import { escapeHtml, type IndexEntry } from './index-page.ts';
import { isRawRequest, prefersHtml } from '../adapters/negotiation.ts';


/**
 * Who may use the server's streams and viewer from another origin: `'*'` for anyone, or a list of
 * origins (`https://example.com`). Governs CORS on every answer and `frame-ancestors` of the viewer.
 */
export type CorsOrigins = '*' | readonly string[];

/** Checks and normalizes CORS origins (`https://example.com:8443`, no path). Throws `SP_ERR_CONFIG`. */
export function normalizeCors(cors: CorsOrigins): CorsOrigins {
  if (cors === '*') return cors;
  return cors.map((origin) => {
    if (origin === '*') throw new ServerPushError('SP_ERR_CONFIG', 'cors: give "*" alone, not in a list of origins');
    let url: URL | undefined;
    try {
      url = new URL(origin);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== origin.replace(/\/$/, '').toLowerCase()) {
      throw new ServerPushError('SP_ERR_CONFIG', `cors: ${JSON.stringify(origin)} is not an origin such as https://example.com (scheme, host and port, no path)`);
    }
    return url.origin;
  });
}

/** Relative path from a request path back to the server's root: `/view` -> `./`, `/view/cam` -> `../`. */
function rootOf(path: string): string {
  const depth = path.split('/').length - 2;
  return depth <= 0 ? './' : '../'.repeat(depth);
}

function streamPathOf(name: string): string {
  return name === 'default' ? 'stream' : `stream/${encodeURIComponent(name)}`;
}

const VIEWER_STYLE = `
  html, body { height: 100%; margin: 0; }
  body { display: flex; flex-direction: column; background: #1a1a1a; color: #eee; font: 15px/1.4 system-ui, sans-serif; }
  header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.3em 1em; padding: 0.6em 1em; background: #111; border-bottom: 1px solid #333; }
  header h1 { font-size: 1.1em; margin: 0; }
  header .kind { color: #999; }
  header nav { margin-left: auto; display: flex; gap: 1em; }
  a { color: #8cf; }
  main { flex: 1 1 auto; min-height: 0; display: flex; }
`;
const VIEWER_STYLE_HASH = createHash('sha256').update(VIEWER_STYLE).digest('base64');

/**
 * The document of `/viewer/frame`, into which the viewer writes one pushed html document. Its
 * answer carries `Content-Security-Policy: sandbox allow-scripts`: wherever it is loaded (even
 * framed without a sandbox attribute, or opened directly) it has an opaque origin, so what is
 * written into it can never act as the server's origin.
 */
const FRAME_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>pushed document</title></head><body><script>
(function () {
  var viewer = window.parent;
  function onMessage(event) {
    var data = event.data;
    if (event.source !== viewer || !data || data.type !== 'serverpush:html' || typeof data.html !== 'string') return;
    window.removeEventListener('message', onMessage);
    document.open();
    document.write(data.html);
    document.close();
    viewer.postMessage({ type: 'serverpush:shown', id: data.id }, '*');
  }
  window.addEventListener('message', onMessage);
  viewer.postMessage({ type: 'serverpush:ready' }, '*');
})();
</script></body></html>
`;

/** The bundled player (`npm run build` writes it to dist/viewer/player.js). */
const PLAYER_FILES = [new URL('../viewer/player.js', import.meta.url), new URL('../../dist/viewer/player.js', import.meta.url)];

async function loadPlayer(): Promise<{ body: Buffer; etag: string } | undefined> {
  for (const file of PLAYER_FILES) {
    try {
      const body = await readFile(file);
      return { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
    } catch {
      // Not there: the next candidate.
    }
  }
  return undefined;
}

export interface ViewerPageOptions {
  name: string;
  kind: 'slideshow' | 'live';
  /** The request's path (to find the way back to the root). */
  path: string;
  /** The stream's query to keep (e.g. `only=text`), without `?`. */
  query: string;
  reconnectOnEnd: boolean;
  /** No header, only the player (for an iframe). */
  embed: boolean;
  controls: boolean;
}

/** The viewer page of one stream: the bundled player, fed by the raw variant of the stream. */
export function renderViewerPage(options: ViewerPageOptions): string {
  const root = rootOf(options.path);
  const stream = `${root}${streamPathOf(options.name)}`;
  const streamWithQuery = options.query ? `${stream}?${options.query}` : stream;
  const name = escapeHtml(options.name);
  const snapshot = `${root}${options.name === 'default' ? 'snapshot' : `snapshot/${encodeURIComponent(options.name)}`}`;
  const header = options.embed ? '' : `<header>
<a href="${escapeHtml(root)}">serverpush</a>
<h1>${name}</h1>
<span class="kind">${options.kind === 'live' ? 'live stream' : 'slideshow'}</span>
<nav><a href="${escapeHtml(snapshot)}">snapshot</a> <a href="${escapeHtml(`${root}status`)}">status</a></nav>
</header>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${name} — serverpush viewer</title>
<style>${VIEWER_STYLE}</style>
</head>
<body>
${header}
<main id="viewer" data-state="connecting"><noscript>The viewer needs JavaScript. The stream itself: <a href="${escapeHtml(streamWithQuery)}">${escapeHtml(streamWithQuery)}</a></noscript></main>
<script src="${escapeHtml(`${root}viewer/player.js`)}" data-stream="${escapeHtml(streamWithQuery)}" data-target="viewer" data-reconnect-on-end="${options.reconnectOnEnd ? '1' : '0'}" data-controls="${options.controls ? '1' : '0'}"></script>
</body>
</html>
`;
}

/** The viewer's routes (`/view`, `/view/NAME`, `/viewer/player.js`, `/viewer/frame`), CORS, and content negotiation of streams. */
export class ViewerRoutes {
  private readonly endpoints: ReadonlyMap<string, Endpoint>;
  private readonly cors: CorsOrigins | undefined;
  private player: Promise<{ body: Buffer; etag: string } | undefined> | undefined;

  constructor(endpoints: ReadonlyMap<string, Endpoint>, cors: CorsOrigins | undefined) {
    this.endpoints = endpoints;
    this.cors = cors;
  }

  /** True for the paths {@link handle} answers. */
  static matches(path: string): boolean {
    return /^\/view(?:\/[^/]+)?$/.test(path) || path === '/viewer/player.js' || path === '/viewer/frame';
  }

  /**
   * Adds the CORS headers of a request from an allowed origin. Answers a preflight (`OPTIONS` with
   * `Access-Control-Request-Method`) and returns true; otherwise returns false.
   */
  applyCors(req: IncomingMessage, res: ServerResponse): boolean {
    const origin = req.headers.origin;
    if (this.cors === undefined || origin === undefined) return false;
    if (this.cors === '*') {
      res.setHeader('Access-Control-Allow-Origin', '*');
    } else {
      res.setHeader('Vary', 'Origin');
      if (!this.cors.includes(origin)) return false;
      res.setHeader('Access-Control-Allow-Origin', origin);
    }
    res.setHeader('Access-Control-Expose-Headers', 'X-Multipart-Boundary, X-Stream-Kind, X-Timestamp');
    if (req.method !== 'OPTIONS' || req.headers['access-control-request-method'] === undefined) return false;
    res.writeHead(204, {
      'Access-Control-Allow-Methods': 'GET, HEAD',
      ...(req.headers['access-control-request-headers'] ? { 'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] } : {}),
      'Access-Control-Max-Age': '600',
      'Content-Length': '0',
    });
    res.end();
    return true;
  }

  /** Answers one of the viewer's paths (see {@link matches}). */
  async handle(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
    if (path === '/viewer/player.js') return this.sendPlayer(req, res);
    if (path === '/viewer/frame') {
      return sendBody(res, 200, 'text/html; charset=utf-8', FRAME_HTML, { 'Content-Security-Policy': 'sandbox allow-scripts', 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' });
    }
    const encoded = path.slice('/view/'.length);
    let name = 'default';
    if (encoded) {
      try {
        name = decodeURIComponent(encoded);
      } catch {
        return sendError(res, 400, 'SP_ERR_BAD_REQUEST', 'malformed stream name');
      }
    }
    const endpoint = this.endpoints.get(name);
    if (!endpoint) return sendError(res, 404, name === 'default' ? 'SP_ERR_NOT_FOUND' : 'SP_ERR_UNKNOWN_STREAM', `no stream named ${JSON.stringify(name)}; streams: ${[...this.endpoints.keys()].join(', ')}`);
    const rest = new URLSearchParams(query);
    const embed = rest.get('embed') === '1';
    const controls = rest.get('controls') !== '0';
    for (const key of ['embed', 'controls', 'raw']) rest.delete(key);
    this.sendViewerPage(res, endpoint, path, rest.toString(), embed, controls);
  }

  /**
   * Content negotiation of `GET /stream…` (must run before the stream is answered): a browser
   * navigating to a stream that carries html or text parts gets the viewer page, since a browser
   * shows such a stream opened directly as a broken image (all but Firefox). `<img>` loads, fetch,
   * curl and ffmpeg get the stream. Returns true when it answered.
   */
  async negotiate(req: IncomingMessage, res: ServerResponse, endpoint: Endpoint, path: string, query: URLSearchParams): Promise<boolean> {
    res.setHeader('Vary', res.hasHeader('Vary') ? 'Origin, Accept' : 'Accept');
    if (isRawRequest(query) || !prefersHtml(req.headers.accept)) return false;
    if (!(await hasNonImages(endpoint, query))) return false;
    const rest = new URLSearchParams(query);
    rest.delete('action');
    this.sendViewerPage(res, endpoint, path, rest.toString(), false, true);
    return true;
  }

  private sendViewerPage(res: ServerResponse, endpoint: Endpoint, path: string, query: string, embed: boolean, controls: boolean): void {
    const reconnectOnEnd = endpoint.loop;
    const page = renderViewerPage({ name: endpoint.name, kind: endpoint.kind, path, query, reconnectOnEnd, embed, controls });
    const ancestors = this.cors === undefined ? "'self'" : this.cors === '*' ? '*' : ["'self'", ...this.cors].join(' ');
    const csp = [
      "default-src 'none'",
      "script-src 'self'",
      `style-src 'sha256-${VIEWER_STYLE_HASH}'`,
      "img-src 'self' blob: data:",
      "connect-src 'self'",
      "frame-src 'self'",
      "base-uri 'none'",
      "form-action 'none'",
      `frame-ancestors ${ancestors}`,
    ].join('; ');
    sendBody(res, 200, 'text/html; charset=utf-8', page, { 'Content-Security-Policy': csp, 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'same-origin' });
  }

  private async sendPlayer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.player ??= loadPlayer();
    const player = await this.player;
    if (!player) {
      this.player = undefined;
      return sendError(res, 404, 'SP_ERR_NOT_FOUND', 'the viewer is not built: run npm run build');
    }
    const headers = { ETag: player.etag, 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' };
    if (req.headers['if-none-match'] === player.etag) {
      res.writeHead(304, headers);
      return void res.end();
    }
    sendBody(res, 200, 'text/javascript; charset=utf-8', player.body, headers);
  }
}

/** True when the stream (as filtered by `?only=`) carries parts an `<img>` cannot show. */
export async function hasNonImages(endpoint: Endpoint, query: URLSearchParams = new URLSearchParams()): Promise<boolean> {
  const filter = typeFilter(query.get('only'));
  return endpoint.hasNonImages(filter);
}

/** The entries of the index page (`GET /`): each stream, its viewer, and a preview. */
export async function indexEntries(endpoints: ReadonlyMap<string, Endpoint>): Promise<IndexEntry[]> {
  return Promise.all([...endpoints.values()].map(async (endpoint) => {
    const path = streamPathOf(endpoint.name);
    const nonImages = await hasNonImages(endpoint);
    // A slideshow's <img> gets its image documents only; a live stream that has carried html or
    // text parts, or a slideshow with no image, is previewed in the viewer instead.
    const imagePreview = await endpoint.previewsAsImage();
    return {
      name: endpoint.name,
      kind: endpoint.kind,
      path,
      view: endpoint.name === 'default' ? 'view' : `view/${encodeURIComponent(endpoint.name)}`,
      preview: imagePreview ? `${path}${endpoint.previewQuery()}` : undefined,
      hasNonImages: nonImages,
    };
  }));
}
