import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatTimestamp } from '../protocol/encoder.ts';
import type { LiveStream } from '../hub/live-stream.ts';
import type { Source } from '../sources/source.ts';
import { NodeLiveSink, streamHeaders } from '../adapters/node-http.ts';
import { sendBody, sendError, type Endpoint, type EndpointContext } from './http-util.ts';

/**
 * An `<img>` load: every current browser asks for images with an Accept header that starts with
 * `image/`. Those viewers get eager framing (Chromium draws a frame only once the next part's
 * headers are in, crbug 527446); programs (ffmpeg, curl, fetch) get each part with full headers.
 */
function wantsEager(req: IncomingMessage, query: URLSearchParams): boolean {
  const eager = query.get('eager');
  if (eager === '1' || eager === 'true') return true;
  if (eager === '0' || eager === 'false') return false;
  return /^\s*image\//i.test(req.headers.accept ?? '');
}

/** A live stream (one source, many viewers) on Node's `http`. */
export class LiveEndpoint implements Endpoint {
  readonly kind = 'live';

  constructor(readonly name: string, readonly live: LiveStream, private readonly source: Source | undefined, private readonly ctx: EndpointContext) {}

  private refuse(res: ServerResponse): boolean {
    this.live.demand();
    const problem = this.live.unavailable();
    if (!problem) return false;
    sendError(res, 503, problem.code, problem.message, { 'Retry-After': '1' });
    return true;
  }

  async stream(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    const fpsText = query.get('fps');
    const maxFps = fpsText === null ? 0 : Number(fpsText);
    if (!Number.isFinite(maxFps) || maxFps < 0 || maxFps > 1000) {
      return sendError(res, 400, 'SP_ERR_BAD_REQUEST', `fps must be a number from 0 to 1000, got ${JSON.stringify(fpsText)}`);
    }
    if (this.ctx.stop.aborted) return sendError(res, 503, 'SP_ERR_SOURCE_DOWN', 'the server is shutting down');
    if (this.refuse(res)) return;
    if (req.method === 'HEAD') {
      res.writeHead(200, streamHeaders(this.live.framing.boundary));
      res.end();
      return;
    }
    const { counters } = this.ctx;
    const sink = new NodeLiveSink(req, res, counters);
    counters.clients++;
    counters.clientsTotal++;
    sink.start(this.live.framing.boundary);
    this.live.subscribe(sink, { eager: wantsEager(req, query), maxFps, onSent: () => { counters.partsSent++; } });
    await new Promise<void>((resolve) => sink.signal.addEventListener('abort', () => resolve(), { once: true }));
    counters.clients--;
  }

  /** The latest part, at once, as an ordinary response. */
  async snapshot(_req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.refuse(res)) return;
    const latest = this.live.latest!;
    sendBody(res, 200, latest.contentType, latest.body, { 'X-Timestamp': formatTimestamp(latest.timestamp) });
  }

  async previewQuery(): Promise<string> {
    return '';
  }

  toJSON(): Record<string, unknown> {
    return { type: 'live', ...this.live.toJSON() };
  }

  async close(): Promise<void> {
    await this.source?.stop();
    this.live.closeViewers();
  }
}
