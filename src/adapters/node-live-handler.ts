import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LiveStream } from '../hub/live-stream.ts';
import { NodeMultipartResponse, sendError, streamHeaders } from './node-http.ts';
import { isRawRequest, wantsEager } from './negotiation.ts';

/** Counters a viewer updates as it comes, receives parts and goes. */
export interface ViewerCounters {
  clients: number;
  clientsTotal: number;
  partsSent: number;
  bytesSent: number;
}

/**
 * Serves one viewer of a live stream on Node's `http`: `?fps=N` (400 when not a number from 0 to
 * 1000), `?eager=0|1`, `?raw=1`, HEAD, and a coded 503 when the stream cannot be served yet
 * (`SP_ERR_NO_FRAME`, `SP_ERR_SOURCE_DOWN`). Resolves when the viewer has gone.
 */
export async function serveLiveViewer(stream: LiveStream, req: IncomingMessage, res: ServerResponse, query: URLSearchParams, counters?: ViewerCounters): Promise<void> {
  const fpsText = query.get('fps');
  const maxFps = fpsText === null ? 0 : Number(fpsText);
  if (!Number.isFinite(maxFps) || maxFps < 0 || maxFps > 1000) {
    return sendError(res, 400, 'SP_ERR_BAD_REQUEST', `fps must be a number from 0 to 1000, got ${JSON.stringify(fpsText)}`);
  }
  // A request for the stream, served or not, wakes a source that pulls on demand (an idle relay).
  stream.demand();
  const problem = stream.unavailable();
  if (problem) return sendError(res, 503, problem.code, problem.message, { 'Retry-After': '1' });
  const raw = isRawRequest(query);
  if (req.method === 'HEAD') {
    // Node would hold the headers of an endless HEAD response until end(): answer them alone.
    res.writeHead(200, streamHeaders(stream.framing.boundary, { raw, live: true }));
    res.end();
    return;
  }
  const sink = new NodeMultipartResponse(req, res, counters);
  if (counters) {
    counters.clients++;
    counters.clientsTotal++;
  }
  sink.start(stream.framing.boundary, { raw, live: true, closeDelimited: true, ...(stream.maxUnsentBytes !== undefined ? { maxUnsentBytes: stream.maxUnsentBytes } : {}) });
  stream.subscribe(sink, { eager: wantsEager(req.headers.accept, query), maxFps, ...(counters ? { onSent: () => { counters.partsSent++; } } : {}) });
  await new Promise<void>((resolve) => sink.signal.addEventListener('abort', () => resolve(), { once: true }));
  if (counters) counters.clients--;
}

/**
 * A request handler for Node's `http` (and so Express, Koa's `ctx.req/res`, Fastify's raw
 * objects) that serves a live stream to every request it gets:
 * `http.createServer(liveHandler(stream))` or `app.get('/cam', liveHandler(stream))`.
 */
export function liveHandler(stream: LiveStream): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const q = req.url?.indexOf('?') ?? -1;
    const query = new URLSearchParams(q === -1 ? '' : req.url!.slice(q + 1));
    serveLiveViewer(stream, req, res, query).catch(() => res.destroy());
  };
}
