import type { MultipartFraming } from '../protocol/encoder.ts';
import type { EncodedPart } from './encoded-part.ts';

/** The transport of one viewer: a Node response, a web stream, … */
export interface LiveSink {
  /** Writes the chunks as one batch. Returns false when the viewer is busy (wait for drain). */
  write(chunks: readonly Uint8Array[]): boolean;
  /** Calls `listener` each time a busy viewer has taken what was written. */
  onDrain(listener: () => void): void;
  /** Aborted when the viewer goes away. */
  readonly signal: AbortSignal;
  /**
   * Drops the viewer. `stalled`: it stopped reading, so discard what the kernel still holds for
   * it (a TCP reset) instead of keeping megabytes queued for a peer that takes nothing.
   */
  destroy(reason?: 'stalled'): void;
  /** Writes the last chunks and ends the response cleanly (without it, ending drops the viewer). */
  end?(chunks: readonly Uint8Array[]): void;
}

export interface SubscriberOptions {
  /**
   * Send the next part's headers right after each part, so Chromium draws a frame on arrival
   * (crbug 527446). Those headers carry the previous part's type and no Content-Length.
   */
  eager: boolean;
  /** Most parts per second for this viewer; the newest part is kept. 0 = no cap. */
  maxFps: number;
  /** A viewer whose socket has taken nothing for this long is dropped. */
  stallTimeoutMs: number;
  /** Called after each part written. */
  onSent?: () => void;
  /** Told when a viewer is dropped for stalling. */
  onStall: (subscriber: Subscriber) => void;
}

/**
 * One viewer of a live stream, with "latest wins" delivery: while its socket is busy, each new
 * part replaces the one pending, so at most one part waits per viewer (a reference to the
 * stream's shared buffers, not a copy) and a viewer that never reads costs bounded memory and
 * never delays the others.
 */
export class Subscriber {
  partsSent = 0;
  partsSkipped = 0;
  private readonly sink: LiveSink;
  private readonly framing: MultipartFraming;
  private readonly options: SubscriberOptions;
  private pending: EncodedPart | undefined;
  private busy = false;
  /** When the sink last became busy (performance.now()). */
  private busySince = 0;
  private started = false;
  /** end() was called: nothing more is written. */
  private ended = false;
  private lastSentAt = -Infinity;
  private fpsTimer: ReturnType<typeof setTimeout> | undefined;
  private stallTimer: ReturnType<typeof setTimeout> | undefined;
  /** The sink's signal has aborted (the viewer went away). */
  private aborted = false;

  constructor(sink: LiveSink, framing: MultipartFraming, options: SubscriberOptions) {
    this.sink = sink;
    this.framing = framing;
    this.options = options;
    sink.onDrain(() => {
      this.busy = false;
      this.flush();
    });
    this.aborted = sink.signal.aborted;
    sink.signal.addEventListener('abort', () => { this.aborted = true; this.release(); }, { once: true });
  }

  get closed(): boolean {
    // issue 10: a flag, not signal.aborted (a checked getter): read twice per viewer per part.
    return this.ended || this.aborted;
  }

  /** A new part of the stream: send it now, or keep it as the one pending. */
  offer(part: EncodedPart): void {
    if (this.closed) return;
    if (this.pending) this.partsSkipped++;
    this.pending = part;
    this.flush();
  }

  private flush(): void {
    const part = this.pending;
    if (!part || this.busy || this.closed || this.fpsTimer) return;
    const now = performance.now();
    if (this.options.maxFps > 0) {
      const wait = this.lastSentAt + 1000 / this.options.maxFps - now;
      if (wait > 1) {
        this.fpsTimer = setTimeout(() => {
          this.fpsTimer = undefined;
          this.flush();
        }, wait);
        return;
      }
    }
    this.pending = undefined;
    this.lastSentAt = now;
    this.partsSent++;
    // Once the stream has begun, the part's own chunk list, shared by every viewer (EncodedPart).
    let chunks: readonly Uint8Array[];
    if (this.started) chunks = this.options.eager ? part.eager : part.standard;
    else chunks = this.options.eager ? [this.framing.opening, part.head, ...part.eager] : [this.framing.opening, ...part.standard];
    this.started = true;
    const ok = this.sink.write(chunks);
    this.options.onSent?.();
    if (!ok) {
      this.busy = true;
      this.busySince = now;
      // One timer per busy spell at most, not one per write: it re-arms itself for what is left.
      this.stallTimer ??= setTimeout(this.checkStall, this.options.stallTimeoutMs);
    }
  }

  private readonly checkStall = (): void => {
    this.stallTimer = undefined;
    if (!this.busy || this.closed) return;
    const left = this.busySince + this.options.stallTimeoutMs - performance.now();
    if (left > 1) {
      this.stallTimer = setTimeout(this.checkStall, left);
      return;
    }
    this.options.onStall(this);
    try {
      this.sink.destroy('stalled');
    } catch {
      // A sink must not throw here (a timer has no caller to catch it). If one does, nothing more
      // is written to it and its timers are released; it leaves the stream when its signal aborts.
      this.ended = true;
      this.release();
    }
  };

  /** Drops this viewer at once. */
  close(): void {
    this.sink.destroy();
  }

  /**
   * Ends this viewer's response cleanly (server shutdown): the part it has been announced (the
   * delimiter, and with eager framing the header block, went out after its last part) becomes
   * `latest` — the newest frame, again for a viewer that had it — then the closing delimiter.
   * A viewer that got nothing yet just ends; a sink that cannot end is dropped. A viewer that
   * does not take these last bytes is dropped like any stalled one, the stall timeout counting
   * from when it became busy.
   */
  end(latest: EncodedPart | undefined): void {
    if (this.closed) return;
    this.ended = true;
    clearTimeout(this.fpsTimer);
    clearTimeout(this.stallTimer);
    this.pending = undefined;
    if (!this.sink.end) return this.sink.destroy();
    const { close } = this.framing;
    if (!this.started || !latest) this.sink.end([]);
    else this.sink.end(this.options.eager ? [latest.body, close] : [latest.head, latest.body, close]);
    if (this.sink.signal.aborted) return;
    const since = this.busy ? this.busySince : performance.now();
    this.stallTimer = setTimeout(() => {
      if (this.sink.signal.aborted) return;
      this.options.onStall(this);
      try {
        this.sink.destroy('stalled');
      } catch {
        // See checkStall.
      }
    }, Math.max(0, since + this.options.stallTimeoutMs - performance.now()));
  }

  private release(): void {
    clearTimeout(this.fpsTimer);
    clearTimeout(this.stallTimer);
    this.pending = undefined;
  }
}
