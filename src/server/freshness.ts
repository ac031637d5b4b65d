import type { LiveStream } from '../hub/live-stream.ts';
import type { EncodedPart } from '../hub/encoded-part.ts';

/**
 * The next part `stream` accepts, or undefined after `timeoutMs` (or when `signal` aborts: the
 * client went away, the server stops).
 */
export function nextPart(stream: LiveStream, timeoutMs: number, signal?: AbortSignal): Promise<EncodedPart | undefined> {
  if (timeoutMs <= 0 || signal?.aborted) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const done = (part: EncodedPart | undefined) => {
      clearTimeout(timer);
      stream.off('part', onPart);
      signal?.removeEventListener('abort', onAbort);
      resolve(part);
    };
    const onPart = (part: EncodedPart) => done(part);
    const onAbort = () => done(undefined);
    const timer = setTimeout(done, timeoutMs, undefined);
    stream.on('part', onPart);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** How old `part` is now, in milliseconds (never negative). */
export function ageMs(part: EncodedPart): number {
  return Math.max(0, Date.now() - part.timestamp);
}

/**
 * The headers that say how old a frame is, whatever the client: `X-Timestamp` (Unix seconds, as
 * each part of a stream), `Last-Modified` (an HTTP date, to the second) and `Age` (whole seconds
 * since the frame came from the source).
 */
export function freshnessHeaders(part: EncodedPart, formatTimestamp: (ms: number) => string): Record<string, string> {
  return {
    'X-Timestamp': formatTimestamp(part.timestamp),
    'Last-Modified': new Date(part.timestamp).toUTCString(),
    Age: String(Math.floor(ageMs(part) / 1000)),
  };
}
