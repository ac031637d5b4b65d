import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatTimestamp } from '../protocol/encoder.ts';
import type { LiveStream } from '../hub/live-stream.ts';
import type { Source } from '../sources/source.ts';
import { NodeLiveSink, streamHeaders } from '../adapters/node-http.ts';
import { sendBody, sendError, type Endpoint, type EndpointContext } from './http-util.ts';
import { isImageType } from '../protocol/content-type.ts';
import { isRawRequest, prefersHtml } from './viewer-routes.ts';

/**
 * An `<img>` load: every current browser asks for images with an Accept header that starts with
 * `image/`; or a browser opening the stream itself (Accept prefers text/html). Those viewers get
 * eager framing (Chromium draws a frame only once the next part's headers are in, crbug 527446);
 * programs (ffmpeg, curl, fetch, the viewer's raw variant) get each part with full headers.
 */
function wantsEager(req: IncomingMessage, query: URLSearchParams): boolean {
  const eager = query.get('eager');
  if (eager === '1' || eager === 'true') return true;
  if (eager === '0' || eager === 'false' || isRawRequest(query)) return false;
  return /^\s*image\//i.test(req.headers.accept ?? '') || prefersHtml(req.headers.accept);
}

/** A live stream (one source, many viewers) on Node's `http`. */
export class LiveEndpoint implements Endpoint {
  readonly kind = 'live';
  /** The stream has carried a part that is not an image (html, text, json…). */
  private sawNonImage = false;

  constructor(readonly name: string, readonly live: LiveStream, private readonly source: Source | undefined, private readonly ctx: EndpointContext) {
    live.on('part', (part: { contentType: string }) => {
      if (!isImageType(part.contentType)) this.sawNonImage = true;
    });
  }

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
    const raw = isRawRequest(query);
    if (req.method === 'HEAD') {
      res.writeHead(200, streamHeaders(this.live.framing.boundary, { raw }));
      res.end();
      return;
    }
    const { counters } = this.ctx;
    const sink = new NodeLiveSink(req, res, counters);
    counters.clients++;
    counters.clientsTotal++;
    sink.start(this.live.framing.boundary, {}, { raw });
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

  /** True once the stream has carried a part an `<img>` cannot show. (`?only=` does not apply to live streams.) */
  async hasNonImages(): Promise<boolean> {
    return this.sawNonImage;
  }

  /** An `<img>` shows the stream as long as it has carried images only. */
  async previewsAsImage(): Promise<boolean> {
    return !this.sawNonImage;
  }

  toJSON(): Record<string, unknown> {
    return { type: 'live', ...this.live.toJSON() };
  }

  async close(): Promise<void> {
    await this.source?.stop();
    this.live.closeViewers();
  }
}
