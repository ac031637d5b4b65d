import { setTimeout as sleep } from 'node:timers/promises';
import { encodePartHeaders, type MultipartFraming } from '../protocol/encoder.ts';
import type { FolderCatalog, FolderDocument } from './folder-catalog.ts';
import type { Viewer } from '../hub/viewer.ts';

export interface SlideshowOptions {
  /** Time between parts, in milliseconds. */
  intervalMs: number;
  /** Start again at the first document after the last one, instead of ending the stream. */
  loop: boolean;
  /** Only documents whose content type this accepts are shown. */
  accept?: (contentType: string) => boolean;
  /** When aborted (server shutdown), the stream is ended cleanly: the announced part, then the closing delimiter. */
  stop?: AbortSignal;
  /** Called after each part's body went to the client (for counters and tests). */
  onPart?: (document: FolderDocument, sentAt: number) => void;
}

/** How a client's slideshow ended: `stopped` is a server shutdown. */
export type SlideshowEnd = 'finished' | 'disconnected' | 'stalled' | 'stopped';

function headersFor(document: FolderDocument, timestamp: number): Uint8Array {
  return encodePartHeaders({ contentType: document.contentType, contentLength: document.body.length, timestamp });
}

/**
 * Plays the documents of a folder to one client, the original design's loop: the first document
 * at once, the next every interval, the folder read anew at each step.
 *
 * Framing is eager: right after a part's body go the delimiter and the *next* part's headers, in
 * the same write. Chromium draws a part only once the next part's headers have arrived
 * (crbug 527446); sent this way it draws each document on arrival instead of one interval late,
 * and every other client still sees each part end the moment its body is sent. The next document
 * is therefore chosen and read when the current one is sent (docs/decisions/0002).
 *
 * `first` is the document to open with (the caller has checked that there is one). A client
 * that takes nothing for the viewer's stall timeout is dropped by the {@link Viewer}.
 * Resolves how the stream ended; never rejects.
 */
export async function playSlideshow(
  catalog: FolderCatalog,
  framing: MultipartFraming,
  viewer: Viewer,
  first: FolderDocument,
  options: SlideshowOptions,
): Promise<SlideshowEnd> {
  const { intervalMs, loop, accept } = options;
  const signal = viewer.signal;
  // Wakes the sleeps on disconnect or shutdown. Built by hand: AbortSignal.any() on Node 20 can
  // lose its sources to garbage collection.
  const waker = new AbortController();
  const wakeUp = () => waker.abort();
  signal.addEventListener('abort', wakeUp, { once: true });
  options.stop?.addEventListener('abort', wakeUp, { once: true });
  if (signal.aborted || options.stop?.aborted) waker.abort();
  const wake = waker.signal;
  // A limit (the session duration) ends the show as a shutdown does: the announced part, then the close.
  let finished: 'shutdown' | 'limit' | undefined;
  viewer.setFinisher((reason) => {
    finished = reason;
    waker.abort();
  });
  // `current` is the document whose headers are out (or in `pending`) and whose body is due next.
  let current: FolderDocument | undefined = first;
  let pending: Uint8Array[] = [framing.opening, headersFor(first, Date.now())];
  let due = performance.now();
  try {
    for (;;) {
      if (!current) {
        // A looping show whose folder has emptied keeps its clients and waits for a document.
        current = await catalog.next(undefined, true, accept);
        if (!current) {
          await sleep(intervalMs, undefined, { signal: wake });
          continue;
        }
        pending = [headersFor(current, Date.now())];
        due = performance.now();
      }
      const next = await catalog.next(current.name, loop, accept);
      if (signal.aborted) return 'disconnected';
      if (options.stop?.aborted || finished) break;
      if (viewer.busy && !(await viewer.drained())) {
        return viewer.endReason === 'stalled' ? 'stalled' : 'disconnected';
      }
      const sentAt = Date.now();
      if (!next && !loop) {
        viewer.end([...pending, current.body, framing.close], 'finished');
        options.onPart?.(current, sentAt);
        return 'finished';
      }
      due += intervalMs;
      // Behind by more than a whole interval (a slow client, a busy machine): restart the clock
      // rather than firing the missed parts in a burst.
      const now = performance.now();
      if (due < now) due = now + intervalMs;
      const tail = next ? [framing.delimiter, headersFor(next, sentAt + (due - now))] : [framing.delimiter];
      viewer.write([...pending, current.body, ...tail]);
      options.onPart?.(current, sentAt);
      pending = [];
      current = next;
      await sleep(due - performance.now(), undefined, { signal: wake });
    }
  } catch (error) {
    if (signal.aborted) return 'disconnected';
    if (!options.stop?.aborted && !finished) throw error;
  } finally {
    signal.removeEventListener('abort', wakeUp);
    options.stop?.removeEventListener('abort', wakeUp);
  }
  // Server shutdown: finish the part whose headers are out, then close the stream.
  viewer.end(current ? [...pending, current.body, framing.close] : [], finished ?? 'shutdown');
  return 'stopped';
}
