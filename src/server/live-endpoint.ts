import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatTimestamp } from '../protocol/encoder.ts';
import type { LiveStream } from '../hub/live-stream.ts';
import type { Source } from '../sources/source.ts';
import type { BusLink } from '../bus/bus-types.ts';
import { liveRefusal, liveServable, refusal, type Servable } from '../adapters/serve.ts';
import { sendBody, sendRefusal, type Endpoint } from './http-util.ts';
import { ageMs, freshnessHeaders, nextPart } from './freshness.ts';
import { DEFAULT_SNAPSHOT_WAIT_MS } from '../defaults.ts';
import { isImageType } from '../protocol/content-type.ts';

/** How old a live stream's snapshot may be, and how long a request waits for a fresh frame. */
export interface LiveEndpointOptions {
  /**
   * A snapshot older than this is not served as the current picture: the request waits up to
   * `waitMs` for a fresh frame, then is answered 503 `SP_ERR_STALE_FRAME`. 0: no bound (a watched
   * file, pushed frames: the latest is current until replaced). @default 0
   */
  snapshotMaxAgeMs?: number;
  /**
   * How long a snapshot (too old, or of a paused source) and a new viewer of a paused source (an
   * idle relay, an on-demand command) wait for a fresh frame. @default 5000
   */
  waitMs?: number;
}

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

  private readonly snapshotMaxAgeMs: number;
  private readonly waitMs: number;

  constructor(readonly name: string, readonly live: LiveStream, private source: Source | undefined, options: LiveEndpointOptions = {}) {
    this.snapshotMaxAgeMs = options.snapshotMaxAgeMs ?? 0;
    this.waitMs = options.waitMs ?? DEFAULT_SNAPSHOT_WAIT_MS;
    const servable = liveServable(live);
    // A new viewer of a paused source wakes it and waits (bounded) for its first fresh frame, rather
    // than being refused (no frame yet) or shown the picture from before the pause as if live.
    this.servable = {
      name: servable.name,
      boundary: servable.boundary,
      live: servable.live,
      get stallTimeoutMs() { return servable.stallTimeoutMs; },
      get maxUnsentBytes() { return servable.maxUnsentBytes; },
      open: async (request) => {
        await this.prepare();
        if (live.sourceState === 'idle' || this.followsPaused()) {
          live.demand();
          await nextPart(live, this.waitMs);
        }
        return servable.open(request);
      },
    };
    live.on('part', (part: { contentType: string }) => {
      if (!isImageType(part.contentType)) this.sawNonImage = true;
    });
  }

  /**
   * Awaited before a request is served: a bus link (`--redis`, src/bus/stream-link.ts) brings the
   * stream's newest frame first; other sources have nothing to do.
   */
  private async prepare(): Promise<void> {
    await (this.source as Partial<BusLink> | undefined)?.prepare?.();
  }

  /**
   * Another process runs the source (--redis) and the newest frame the bus gave is older than the
   * snapshot bound: that source is paused (an idle relay, an on-demand command) or late, and a new
   * viewer waits for a fresh frame as it would here, rather than get the one from before the pause.
   */
  private followsPaused(): boolean {
    const latest = this.live.latest;
    return (this.source as Partial<BusLink> | undefined)?.following === true && this.snapshotMaxAgeMs > 0 && latest !== undefined && ageMs(latest) > this.snapshotMaxAgeMs;
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

  /**
   * `up`: frames come; `starting`: the source is up but has sent no frame yet; `idle`: paused for
   * want of viewers (a relay, an on-demand command); `stalled`: no frame for its stall time;
   * `down`: it failed or ended.
   */
  get sourceState(): 'up' | 'starting' | 'idle' | 'stalled' | 'down' {
    const state = this.live.sourceState;
    return state === 'up' && !this.live.latest ? 'starting' : state;
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
    // Paused for want of viewers is ready: the first viewer wakes it.
    if (state === 'up' || state === 'idle') return undefined;
    // Another process runs the source (--redis): this one gets frames only once it has a viewer.
    if (state === 'starting' && (this.source as Partial<BusLink>).following) return undefined;
    if (this.sourceStartedAt !== undefined && performance.now() - this.sourceStartedAt < graceMs) return undefined;
    if (this.sourceStartedAt === undefined) return 'not started';
    if (state === 'down' || state === 'stalled') return `source ${state}: ${(this.live.source as { reason: string }).reason}`;
    return 'no frame yet';
  }

  get title(): string {
    return this.name;
  }

  /**
   * The latest part as an ordinary response, never older than the bound (`snapshotMaxAgeMs`) and
   * never the picture from before a pause: otherwise the source is woken and the request waits up to
   * `waitMs` for a fresh frame, then is answered 503 `SP_ERR_STALE_FRAME` with `Retry-After` (a down
   * or stalled source: 503 `SP_ERR_SOURCE_DOWN` at once, or with `serveLastWhenDown` its last frame
   * with a true `Age`). Every 200 says how old its frame is: `X-Timestamp`, `Last-Modified`, `Age`.
   */
  async snapshot(_req: IncomingMessage, res: ServerResponse): Promise<void> {
    await this.prepare();
    this.live.demand();
    const state = this.live.sourceState;
    if (state !== 'down' && state !== 'stalled' && !this.fresh()) {
      const gone = new AbortController();
      const onClose = () => gone.abort();
      res.once('close', onClose);
      await nextPart(this.live, this.waitMs, gone.signal);
      res.off('close', onClose);
      if (gone.signal.aborted) return;
    }
    const unavailable = liveRefusal(this.live);
    if (unavailable) return sendRefusal(res, unavailable);
    const latest = this.live.latest!;
    const sourceLive = this.live.sourceState === 'up' || this.live.sourceState === 'idle';
    if (sourceLive && !this.fresh()) {
      const stale = refusal(503, 'SP_ERR_STALE_FRAME', `stream ${this.name}: no fresh frame; the newest is ${Math.round(ageMs(latest) / 100) / 10} s old${this.snapshotMaxAgeMs > 0 ? `, over the ${this.snapshotMaxAgeMs / 1000} s bound` : ''}`, 1);
      return sendRefusal(res, { ...stale, headers: { ...stale.headers, 'Last-Modified': new Date(latest.timestamp).toUTCString() } });
    }
    sendBody(res, 200, latest.contentType, latest.body, freshnessHeaders(latest, formatTimestamp));
  }

  /** The latest part may be served as the current picture: the source is up (not paused) and the part within the bound. */
  private fresh(): boolean {
    const latest = this.live.latest;
    if (!latest || this.live.sourceState !== 'up') return false;
    return this.snapshotMaxAgeMs <= 0 || ageMs(latest) <= this.snapshotMaxAgeMs;
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
    return {
      type: 'live',
      ...this.live.toJSON(),
      ...(this.snapshotMaxAgeMs > 0 ? { snapshotMaxAgeSeconds: this.snapshotMaxAgeMs / 1000 } : {}),
      ...(this.source?.toJSON ? { [this.source.statusKey ?? 'upstream']: this.source.toJSON() } : {}),
    };
  }

  async close(): Promise<void> {
    await this.source?.stop();
    this.live.closeViewers();
  }
}

