import type { LiveStream, SubscribeOptions } from '../hub/live-stream.ts';
import type { LiveSink } from '../hub/subscriber.ts';
import { multipartContentType } from '../protocol/content-type.ts';

/** Bytes a viewer may have queued in its web stream before it counts as busy. */
const QUEUE_BYTES = 64 * 1024;

/**
 * A live stream as a web-standard `Response`, for fetch-style servers (Bun, Deno, Hono, workers):
 * `return liveResponse(stream, request)`. The viewer is dropped when `request.signal` aborts or
 * the body is cancelled. Answers 503 (JSON with a code) when the stream cannot be served yet.
 */
export function liveResponse(stream: LiveStream, request?: Request, options: SubscribeOptions = {}): Response {
  const problem = stream.unavailable();
  if (problem) {
    return new Response(`${JSON.stringify({ error: problem.code, message: problem.message })}\n`, {
      status: 503,
      headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Retry-After': '1' },
    });
  }
  const closed = new AbortController();
  let onDrain: (() => void) | undefined;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(c) { controller = c; },
    pull() { onDrain?.(); },
    cancel() { closed.abort(); },
  }, new ByteLengthQueuingStrategy({ highWaterMark: QUEUE_BYTES }));
  const sink: LiveSink = {
    signal: closed.signal,
    write(chunks) {
      if (closed.signal.aborted) return true;
      for (const chunk of chunks) controller.enqueue(chunk);
      return (controller.desiredSize ?? 0) > 0;
    },
    onDrain(listener) { onDrain = listener; },
    destroy() {
      if (closed.signal.aborted) return;
      closed.abort();
      try { controller.close(); } catch { /* already closed */ }
    },
    end(chunks) {
      if (closed.signal.aborted) return;
      try {
        for (const chunk of chunks) controller.enqueue(chunk);
      } catch { /* the reader went away */ }
      sink.destroy();
    },
  };
  request?.signal.addEventListener('abort', () => sink.destroy(), { once: true });
  stream.subscribe(sink, options);
  return new Response(body, {
    headers: {
      'Content-Type': multipartContentType(stream.framing.boundary),
      'Cache-Control': 'no-cache, no-store, must-revalidate',
      Pragma: 'no-cache',
      Expires: '0',
      'X-Accel-Buffering': 'no',
      'X-Stream-Kind': 'live',
    },
  });
}
