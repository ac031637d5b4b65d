/**
 * The one contract between serverpush's streams and a client's transport (a Node response, a web
 * stream, …), and the stall policy every stream kind shares. Runtime-neutral: no `node:` imports.
 */

/** One client's multipart response, as a slideshow or a live stream writes it. */
export interface MultipartSink {
  /** Aborted when the client goes away or the response is closed. */
  readonly signal: AbortSignal;
  /** Writes the chunks as one batch. Returns false when the client is busy (wait for drain). */
  write(chunks: readonly Uint8Array[]): boolean;
  /** Calls `listener` each time a busy client has taken what was written. */
  onDrain(listener: () => void): void;
  /** Writes the last chunks and ends the response cleanly. */
  end(chunks: readonly Uint8Array[]): void;
  /**
   * Drops the client at once. `stalled`: it stopped reading, so discard what the kernel still holds
   * for it (a TCP reset) instead of keeping megabytes queued for a peer that takes nothing.
   */
  destroy(reason?: 'stalled'): void;
}

/**
 * Why a viewer's response ended: the stream had no more parts (`finished`, a slideshow that does
 * not loop), the client went away (`disconnected`), it took nothing for the stall timeout
 * (`stalled`), the server ended it (`shutdown`: it stops, or the stream was removed), or a limit
 * ended it (`limit`: the maximum session duration).
 */
export type ViewerEnd = 'finished' | 'disconnected' | 'stalled' | 'shutdown' | 'limit';

/** Totals a viewer adds to as it writes (e.g. the server's `/status`), shared by many viewers. */
export interface WriteTotals {
  partsSent: number;
  bytesSent: number;
}

export interface ViewerOptions {
  /** A viewer whose sink has taken nothing for this long is dropped. */
  stallTimeoutMs: number;
  /** Told once, when the viewer is dropped for stalling (before the drop). */
  onStall?: (viewer: Viewer) => void;
  /** Added to at each write. */
  totals?: WriteTotals;
  /** Told once, when its first part is written (metrics: the time to the first frame). */
  onFirstPart?: (viewer: Viewer) => void;
}

/**
 * One client of a stream: a {@link MultipartSink} plus the policy every stream kind shares. It
 * tracks when the sink is busy (a write it took only in part), keeps one stall timer per busy spell
 * (not one per write), and drops the client with a reset once it has been busy for the stall
 * timeout — also while its last bytes are pending after {@link end}. It counts parts and bytes,
 * and says how the response ended ({@link ended}).
 */
export class Viewer {
  readonly signal: AbortSignal;
  partsSent = 0;
  bytesSent = 0;
  /** Parts of a live stream this viewer never got, a newer one having replaced them (busy, `?fps` cap). */
  partsSkipped = 0;
  /** `performance.now()` when the viewer was created. */
  readonly startedAt = performance.now();
  /** `performance.now()` when its first part was written; undefined before. */
  firstPartAt: number | undefined;
  /** Resolves once the response is closed, with why. */
  readonly ended: Promise<ViewerEnd>;
  private readonly sink: MultipartSink;
  private readonly options: ViewerOptions;
  private busySince: number | undefined;
  private stallTimer: ReturnType<typeof setTimeout> | undefined;
  private reason: ViewerEnd | undefined;
  /** The signal has aborted: a flag, read twice per viewer per part (signal.aborted is a checked getter, 6 % of a 10,000-viewer fan-out). */
  private aborted = false;
  private readonly drainListeners: Array<() => void> = [];
  /** How what plays to this viewer ends it cleanly (see {@link finish}). */
  private finisher: ((reason: 'shutdown' | 'limit') => void) | undefined;

  constructor(sink: MultipartSink, options: ViewerOptions) {
    this.sink = sink;
    this.options = options;
    this.signal = sink.signal;
    sink.onDrain(() => {
      this.busySince = undefined;
      for (const listener of this.drainListeners) listener();
    });
    this.ended = new Promise((resolve) => {
      const done = () => {
        this.aborted = true;
        clearTimeout(this.stallTimer);
        resolve(this.reason ?? 'disconnected');
      };
      if (sink.signal.aborted) done();
      else sink.signal.addEventListener('abort', done, { once: true });
    });
  }

  /** True while the client has not taken the previous write. */
  get busy(): boolean {
    return this.busySince !== undefined;
  }

  /** Why the response ended, once it has (its signal aborted); undefined before. */
  get endReason(): ViewerEnd | undefined {
    return this.signal.aborted ? (this.reason ?? 'disconnected') : undefined;
  }

  /** The viewer's response is over (or ending): nothing more is written. */
  get closed(): boolean {
    return this.reason !== undefined || this.aborted;
  }

  /** Calls `listener` each time a busy client has taken what was written. */
  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
  }

  /**
   * Writes one part (`chunks` as one batch). Returns false when the client is now busy; the stall
   * timer runs from the first write it did not take whole.
   */
  write(chunks: readonly Uint8Array[]): boolean {
    if (this.closed) return true;
    this.count(chunks, true);
    const ok = this.sink.write(chunks);
    if (!ok) this.becameBusy();
    return ok;
  }

  /**
   * Resolves true once the client has taken what was written (at once when it is not busy); false
   * when it went away or was dropped for stalling.
   */
  drained(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (!this.busy) return Promise.resolve(true);
    return new Promise((resolve) => {
      let settled = false;
      const settle = (value: boolean) => {
        if (settled) return;
        settled = true;
        const at = this.drainListeners.indexOf(onDrain);
        if (at !== -1) this.drainListeners.splice(at, 1);
        this.signal.removeEventListener('abort', onAbort);
        resolve(value);
      };
      const onDrain = () => settle(true);
      const onAbort = () => settle(false);
      this.drainListeners.push(onDrain);
      this.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Ends the response cleanly with `chunks` (`part`: they hold a part, counted as sent). A client
   * that does not take these last bytes is dropped like any stalled one, the stall timeout counting
   * from when it became busy.
   */
  end(chunks: readonly Uint8Array[], reason: 'finished' | 'shutdown' | 'limit', part = chunks.length > 0): void {
    if (this.closed) return;
    this.reason = reason;
    this.count(chunks, part);
    this.sink.end(chunks);
    if (this.signal.aborted) return;
    // Whether the last bytes were taken is not known from end(): keep the stall guard running.
    this.busySince ??= performance.now();
    this.armStallTimer();
  }

  /**
   * Set by what plays to the viewer (a live stream's subscriber, a slideshow): how to end the
   * response cleanly — the part whose headers are out, then the closing delimiter.
   */
  setFinisher(finisher: (reason: 'shutdown' | 'limit') => void): void {
    this.finisher = finisher;
  }

  /**
   * Ends the response cleanly, as what plays to it knows how (else at once with no more bytes):
   * the server removed its stream, or a limit (the session duration) ended it.
   */
  finish(reason: 'shutdown' | 'limit'): void {
    if (this.closed) return;
    if (this.finisher) this.finisher(reason);
    else this.end([], reason, false);
  }

  /** Drops the client at once. */
  close(reason: ViewerEnd = 'disconnected'): void {
    if (this.signal.aborted) return;
    this.reason ??= reason;
    this.sink.destroy();
  }

  private count(chunks: readonly Uint8Array[], part: boolean): void {
    let bytes = 0;
    for (const chunk of chunks) bytes += chunk.length;
    this.bytesSent += bytes;
    if (part && this.partsSent++ === 0) {
      this.firstPartAt = performance.now();
      this.options.onFirstPart?.(this);
    }
    const totals = this.options.totals;
    if (totals) {
      totals.bytesSent += bytes;
      if (part) totals.partsSent++;
    }
  }

  private becameBusy(): void {
    this.busySince ??= performance.now();
    this.armStallTimer();
  }

  // One timer per busy spell at most, not one per write: it re-arms itself for what is left.
  private armStallTimer(): void {
    this.stallTimer ??= setTimeout(this.checkStall, Math.max(0, this.busySince! + this.options.stallTimeoutMs - performance.now()));
  }

  private readonly checkStall = (): void => {
    this.stallTimer = undefined;
    if (this.busySince === undefined || this.signal.aborted) return;
    const left = this.busySince + this.options.stallTimeoutMs - performance.now();
    if (left > 1) {
      this.stallTimer = setTimeout(this.checkStall, left);
      return;
    }
    this.reason = 'stalled';
    this.options.onStall?.(this);
    try {
      this.sink.destroy('stalled');
    } catch {
      // A sink must not throw here (a timer has no caller to catch it). Nothing more is written to
      // it (reason is set); it ends when its signal aborts.
    }
  };
}
