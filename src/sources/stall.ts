import type { LiveStream } from '../hub/live-stream.ts';
import type { Logger } from '../log.ts';
import type { Source } from './source.ts';

export interface StallWatchOptions {
  /** No frame for this long: the source is stalled. 0 turns the check off. */
  timeoutMs: number;
  /** What the log line calls the source (`command`, `stdin`, `watch /cam/now.jpg`). */
  label: string;
  logger: Logger;
  /** Called at each stall (a command source kills its child here, which restarts it). */
  onStall?: () => void;
}

/**
 * Watches a live stream for frames while a source runs: when none comes for `timeoutMs`, the stream's
 * source becomes `stalled` (a kind of down: /status says so, new viewers and snapshots are refused
 * with `SP_ERR_SOURCE_DOWN` unless `serveLastWhenDown`), a warning `SP_ERR_SOURCE_STALLED` is logged
 * once per stall (not again until a frame has come), and `onStall` runs. The next frame makes the
 * stream `up` again (LiveStream.push does that).
 */
export class StallWatch {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private armed = false;
  /** True from a stall until the next frame. */
  private inStall = false;
  /** Stalls seen so far (each restart of a hung command that stays hung counts again). */
  stalls = 0;
  private readonly onPart = () => {
    this.inStall = false;
    this.restart();
  };

  constructor(private readonly stream: LiveStream, private readonly options: StallWatchOptions) {}

  /** True while no frame has come since the last stall. */
  get stalled(): boolean {
    return this.inStall;
  }

  /** Starts (or restarts) the clock: a frame is due within the timeout from now. */
  arm(): void {
    if (this.options.timeoutMs <= 0) return;
    if (!this.armed) {
      this.armed = true;
      this.stream.on('part', this.onPart);
    }
    this.restart();
  }

  /** Stops watching (the source ended, paused or stopped). */
  disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.armed) this.stream.off('part', this.onPart);
    this.armed = false;
  }

  private restart(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fire(), this.options.timeoutMs);
    this.timer.unref?.();
  }

  private fire(): void {
    this.timer = undefined;
    this.stalls++;
    const seconds = this.options.timeoutMs / 1000;
    const reason = `${this.options.label}: no frame for ${seconds} s (stalled)`;
    if (!this.inStall) {
      this.inStall = true;
      this.options.logger.warn('SP_ERR_SOURCE_STALLED', `stream ${this.stream.name}: ${reason}${this.options.onStall ? '' : '; waiting for the next frame'}`);
    }
    this.stream.setSource({ up: false, reason, stalled: true });
    this.options.onStall?.();
    // Still running (a stdin that stays silent, a watched file that does not change): the next
    // stall is counted, not logged again.
    if (this.armed && !this.options.onStall) this.restart();
  }
}

/** A source with a {@link StallWatch} around it, for sources that cannot be restarted (a watch). */
export class StallCheckedSource implements Source {
  private watch: StallWatch | undefined;

  /** `statusKey`: where `/status` shows the stalls (`watch` for a watch source). */
  constructor(private readonly inner: Source, private readonly options: Omit<StallWatchOptions, 'onStall'> & { statusKey?: string }) {}

  get statusKey(): string | undefined {
    return this.inner.statusKey ?? this.options.statusKey;
  }

  start(stream: LiveStream): void {
    this.watch = new StallWatch(stream, this.options);
    this.watch.arm();
    this.inner.start(stream);
  }

  async stop(): Promise<void> {
    this.watch?.disarm();
    await this.inner.stop();
  }

  /** Stalls seen so far. */
  get stalls(): number {
    return this.watch?.stalls ?? 0;
  }

  toJSON(): Record<string, unknown> {
    return { ...this.inner.toJSON?.(), stalls: this.stalls };
  }
}
