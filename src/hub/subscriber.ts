import type { MultipartFraming } from '../protocol/encoder.ts';
import type { EncodedPart } from './encoded-part.ts';
import type { Viewer } from './viewer.ts';

export interface SubscriberOptions {
  /**
   * Send the next part's headers right after each part, so Chromium draws a frame on arrival
   * (crbug 527446). Those headers carry the previous part's type and no Content-Length.
   */
  eager: boolean;
  /** Most parts per second for this viewer; the newest part is kept. 0 = no cap. */
  maxFps: number;
}

/**
 * What a stream lends each of its subscribers: counters of skipped parts by reason, and an
 * optional function told of every part written (metrics: the frame's age at the socket write).
 * Shared by every subscriber of a stream; `onWrite` may be set after they subscribed.
 */
export interface SubscriberHooks {
  /** Parts replaced unsent while the viewer was busy (had not taken the previous write). */
  partsSkippedBusy: number;
  /** Parts replaced unsent while the viewer waited for its `?fps` cap. */
  partsSkippedFps: number;
  /** Told after each part written to a viewer (`first`: its first part). Keep it cheap. */
  onWrite?: ((part: EncodedPart, viewer: Viewer, first: boolean) => void) | undefined;
}

/**
 * One viewer of a live stream, with "latest wins" delivery: while its viewer is busy, each new
 * part replaces the one pending, so at most one part waits per viewer (a reference to the
 * stream's shared buffers, not a copy) and a viewer that never reads costs bounded memory and
 * never delays the others. Stalls are the {@link Viewer}'s business.
 */
export class Subscriber {
  /** Parts this viewer never got, a newer one having replaced them (busy viewer or `?fps` cap). */
  partsSkipped = 0;
  readonly viewer: Viewer;
  private readonly framing: MultipartFraming;
  private readonly options: SubscriberOptions;
  private pending: EncodedPart | undefined;
  /** The newest part offered (sent or pending): what a clean end repeats (see {@link end}). */
  private newest: EncodedPart | undefined;
  private started = false;
  private lastSentAt = -Infinity;
  private fpsTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly hooks: SubscriberHooks | undefined;

  constructor(viewer: Viewer, framing: MultipartFraming, options: SubscriberOptions, hooks?: SubscriberHooks) {
    this.viewer = viewer;
    this.framing = framing;
    this.options = options;
    this.hooks = hooks;
    viewer.onDrain(() => this.flush());
    viewer.setFinisher((reason) => this.end(this.newest, reason));
    viewer.signal.addEventListener('abort', () => this.release(), { once: true });
  }

  get partsSent(): number {
    return this.viewer.partsSent;
  }

  /** A new part of the stream: send it now, or keep it as the one pending. */
  offer(part: EncodedPart): void {
    if (this.viewer.closed) return;
    if (this.pending) {
      this.partsSkipped++;
      this.viewer.partsSkipped++;
      // Waiting for the fps cap's timer, or for the client to take the previous write.
      if (this.hooks) {
        if (this.fpsTimer) this.hooks.partsSkippedFps++;
        else this.hooks.partsSkippedBusy++;
      }
    }
    this.pending = part;
    this.newest = part;
    this.flush();
  }

  private flush(): void {
    const part = this.pending;
    if (!part || this.viewer.busy || this.viewer.closed || this.fpsTimer) return;
    if (this.options.maxFps > 0) {
      const wait = this.lastSentAt + 1000 / this.options.maxFps - performance.now();
      if (wait > 1) {
        this.fpsTimer = setTimeout(() => {
          this.fpsTimer = undefined;
          this.flush();
        }, wait);
        return;
      }
    }
    this.pending = undefined;
    this.lastSentAt = performance.now();
    // Once the stream has begun, the part's own chunk list, shared by every viewer (EncodedPart).
    let chunks: readonly Uint8Array[];
    if (this.started) chunks = this.options.eager ? part.eager : part.standard;
    else chunks = this.options.eager ? [this.framing.opening, part.head, ...part.eager] : [this.framing.opening, ...part.standard];
    const first = !this.started;
    this.started = true;
    this.viewer.write(chunks);
    this.hooks?.onWrite?.(part, this.viewer, first);
  }

  /**
   * Ends this viewer's response cleanly (server shutdown): the part it has been announced (the
   * delimiter, and with eager framing the header block, went out after its last part) becomes
   * `latest` — the newest frame, again for a viewer that had it — then the closing delimiter.
   * A viewer that got nothing yet just ends.
   */
  end(latest: EncodedPart | undefined, reason: 'shutdown' | 'limit' = 'shutdown'): void {
    if (this.viewer.closed) return;
    this.release();
    const { close } = this.framing;
    if (!this.started || !latest) this.viewer.end([], reason);
    else this.viewer.end(this.options.eager ? [latest.body, close] : [latest.head, latest.body, close], reason, false);
  }

  private release(): void {
    clearTimeout(this.fpsTimer);
    this.fpsTimer = undefined;
    this.pending = undefined;
  }
}
