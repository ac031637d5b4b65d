import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatTimestamp } from '../protocol/encoder.ts';
import type { LiveStream } from '../hub/live-stream.ts';
import type { Source } from '../sources/source.ts';
import { serveLiveViewer } from '../adapters/node-live-handler.ts';
import { sendBody, sendError, type Endpoint, type EndpointContext } from './http-util.ts';
import { isImageType } from '../protocol/content-type.ts';

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
    if (this.ctx.stop.aborted) return sendError(res, 503, 'SP_ERR_SOURCE_DOWN', 'the server is shutting down');
    return serveLiveViewer(this.live, req, res, query, this.ctx.counters);
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
