import type { LiveStream } from '../hub/live-stream.ts';
import { DEFAULT_RETRY_DELAY_MS, MAX_RETRY_DELAY_MS } from '../defaults.ts';

/** Something that feeds a live stream: a pipe, a command, an upstream URL, a folder. */
export interface Source {
  /** Starts feeding `stream`; returns at once. */
  start(stream: LiveStream): void;
  /** Stops feeding and releases everything (processes, sockets, watchers, timers). */
  stop(): Promise<void>;
  /** What `/status` shows of the source (no secrets), e.g. a relay's upstream. */
  toJSON?(): Record<string, unknown>;
  /**
   * Under which key of the stream's `/status` document `toJSON()` goes. @default 'upstream'
   * (a relay's or poll's upstream); a command says `command`, standard input `input`.
   */
  readonly statusKey?: string | undefined;
}

/**
 * Resolves when someone watches or asks for the stream (a viewer, even a refused one, or a
 * snapshot: see LiveStream.demand), or at once when someone already watches or `signal` aborts.
 */
export function waitForDemand(stream: LiveStream, signal: AbortSignal): Promise<void> {
  if (stream.viewers > 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const wake = () => {
      stream.off('viewers', wake);
      stream.off('demand', wake);
      signal.removeEventListener('abort', wake);
      resolve();
    };
    stream.on('viewers', wake);
    stream.on('demand', wake);
    signal.addEventListener('abort', wake, { once: true });
  });
}

/** Exponential backoff with a cap, reset after a good long run. */
export class Backoff {
  private attempt = 0;
  constructor(private readonly initialMs = DEFAULT_RETRY_DELAY_MS, private readonly maxMs = MAX_RETRY_DELAY_MS) {}

  /** The delay before the next retry. */
  next(): number {
    const delay = Math.min(this.maxMs, this.initialMs * 2 ** this.attempt);
    this.attempt++;
    return delay;
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
