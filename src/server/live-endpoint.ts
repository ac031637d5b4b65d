import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatTimestamp } from '../protocol/encoder.ts';
import type { LiveStream } from '../hub/live-stream.ts';
import type { Source } from '../sources/source.ts';
import { liveRefusal, liveServable, type Servable } from '../adapters/serve.ts';
import { sendBody, sendRefusal, type Endpoint } from './http-util.ts';
import { isImageType } from '../protocol/content-type.ts';

/** A live stream (one source, many viewers) on Node's `http`. */
export class LiveEndpoint implements Endpoint {
  readonly kind = 'live';
  /** A live stream never ends by itself: a viewer reconnects when it does. */
  readonly loop = true;
  readonly servable: Servable;
  /** The stream has carried a part that is not an image (html, text, json…). */
  private sawNonImage = false;

  /**
   * `prepare`: awaited before a request is served (a bus brings the stream's newest frame first,
   * src/bus/stream-link.ts).
   */
  constructor(readonly name: string, readonly live: LiveStream, private readonly source: Source | undefined, private readonly prepare?: () => Promise<void>) {
    this.servable = prepare ? preparedServable(liveServable(live), prepare) : liveServable(live);
    live.on('part', (part: { contentType: string }) => {
      if (!isImageType(part.contentType)) this.sawNonImage = true;
    });
  }

  get title(): string {
    return this.name;
  }

  /** The latest part, at once, as an ordinary response. */
  async snapshot(_req: IncomingMessage, res: ServerResponse): Promise<void> {
    await this.prepare?.();
    const unavailable = liveRefusal(this.live);
    if (unavailable) return sendRefusal(res, unavailable);
    const latest = this.live.latest!;
    sendBody(res, 200, latest.contentType, latest.body, { 'X-Timestamp': formatTimestamp(latest.timestamp) });
  }

  previewQuery(): string {
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
    return { type: 'live', ...this.live.toJSON(), ...(this.source?.toJSON ? { upstream: this.source.toJSON() } : {}) };
  }

  async close(): Promise<void> {
    await this.source?.stop();
    this.live.closeViewers();
  }
}

/** `servable`, with `prepare()` awaited before each request is opened. */
function preparedServable(servable: Servable, prepare: () => Promise<void>): Servable {
  return Object.create(servable, {
    open: { value: async (request: Parameters<Servable['open']>[0]) => { await prepare(); return servable.open(request); } },
  }) as Servable;
}
