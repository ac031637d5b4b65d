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
  /** `performance.now()` when the source was (re)started; undefined before. */
  private sourceStartedAt: number | undefined;

  constructor(readonly name: string, readonly live: LiveStream, private source: Source | undefined) {
    this.servable = liveServable(live);
    live.on('part', (part: { contentType: string }) => {
      if (!isImageType(part.contentType)) this.sawNonImage = true;
    });
  }

  /** Starts the source (the server listens). */
  startSource(): void {
    this.sourceStartedAt = performance.now();
    this.source?.start(this.live);
  }

  /**
   * Stops the source and starts `source` in its place (a reload changed the stream's source):
   * the viewers stay, and get the new source's frames as they come.
   */
  async replaceSource(source: Source | undefined): Promise<void> {
    await this.source?.stop();
    this.source = source;
    this.startSource();
  }

  /** Hands its source (not started) over to another endpoint, for {@link replaceSource}; it has none after. */
  detachSource(): Source | undefined {
    const source = this.source;
    this.source = undefined;
    return source;
  }

  /** `up`: frames come; `starting`: the source has sent none yet; `down`: it failed or ended. */
  get sourceState(): 'up' | 'starting' | 'down' {
    if (!this.live.source.up) return 'down';
    return this.live.latest ? 'up' : 'starting';
  }

  /** How many times an exec source started its command or a relay connected; undefined for other sources. */
  get sourceConnections(): number | undefined {
    const source = this.source as { starts?: unknown; connections?: unknown } | undefined;
    const count = source?.starts ?? source?.connections;
    return typeof count === 'number' ? count : undefined;
  }

  /**
   * Why the stream is not ready (`/readyz`), or undefined: a stream with a source is ready once it
   * has a frame and the source is up, or while it is within `graceMs` of its start; a `push`
   * stream is always ready (frames come when the program pushes them).
   */
  notReady(graceMs: number): string | undefined {
    if (!this.source) return undefined;
    const state = this.sourceState;
    if (state === 'up') return undefined;
    if (this.sourceStartedAt !== undefined && performance.now() - this.sourceStartedAt < graceMs) return undefined;
    if (this.sourceStartedAt === undefined) return 'not started';
    return state === 'down' ? `source down: ${(this.live.source as { reason: string }).reason}` : 'no frame yet';
  }

  get title(): string {
    return this.name;
  }

  /** The latest part, at once, as an ordinary response. */
  async snapshot(_req: IncomingMessage, res: ServerResponse): Promise<void> {
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
