/**
 * Web-standard `Request`/`Response` adapter, for fetch-style servers (Bun, Deno, Hono, workers).
 * Runtime-neutral: no `node:` imports.
 */
import type { LiveStream } from '../hub/live-stream.ts';
import type { MultipartSink } from '../hub/viewer.ts';
import { liveServable, serveStream, type LiveViewerOptions, type ResponseWriter, type Servable, type ServeHooks, type StreamRequest } from './serve.ts';

/** Bytes a viewer may have queued in its web stream before it counts as busy. */
const QUEUE_BYTES = 64 * 1024;

function jsonError(status: number, code: string, message: string, headers: Readonly<Record<string, string>> = {}): Response {
  return new Response(`${JSON.stringify({ error: code, message })}\n`, {
    status,
    headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers },
  });
}

/** A web `ReadableStream` body as a {@link MultipartSink}; dropped when `signal` (the request's) aborts. */
function webStreamSink(signal: AbortSignal | undefined): { sink: MultipartSink; body: ReadableStream<Uint8Array> } {
  const closed = new AbortController();
  let onDrain: (() => void) | undefined;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(c) { controller = c; },
    pull() { onDrain?.(); },
    cancel() { closed.abort(); },
  }, new ByteLengthQueuingStrategy({ highWaterMark: QUEUE_BYTES }));
  const sink: MultipartSink = {
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
  signal?.addEventListener('abort', () => sink.destroy(), { once: true });
  return { sink, body };
}

/** What the serving path needs of a web `Request` (none: a plain GET). */
function fetchStreamRequest(request: Request | undefined): StreamRequest {
  if (!request) return { method: 'GET', query: new URLSearchParams() };
  const url = new URL(request.url);
  return { method: request.method, query: url.searchParams, path: url.pathname, accept: request.headers.get('accept') ?? undefined, userAgent: request.headers.get('user-agent') ?? undefined, authorization: request.headers.get('authorization') ?? undefined };
}

/**
 * Serves any {@link Servable} as a web `Response` through the one serving path: the same headers,
 * negotiation (`?raw=1`, eager framing for `<img>` loads), HEAD, refusals and stall handling as
 * serverpush's own server. The viewer is dropped when `request.signal` aborts or the body is
 * cancelled.
 */
export async function serveResponse(stream: Servable, request?: Request, hooks: ServeHooks = {}): Promise<Response> {
  const writer: ResponseWriter<Response> = {
    refuse: (answer) => jsonError(answer.status, answer.code, answer.message, answer.headers),
    head: (headers) => new Response(null, { headers }),
    start(headers) {
      const { sink, body } = webStreamSink(request?.signal);
      return { sink, response: new Response(body, { headers }) };
    },
  };
  const { response, done } = await serveStream(stream, fetchStreamRequest(request), writer, hooks);
  // The session goes on after the Response is handed back; a failure in it only drops the viewer.
  done.catch((error: unknown) => hooks.logger?.error('SP_ERR_INTERNAL', `stream ${stream.name}: ${(error as Error).stack ?? String(error)}`));
  return response;
}

/**
 * A live stream as a web-standard `Response`: `return liveResponse(stream, request)`. Takes
 * `?fps=N`, `?eager=0|1`, `?raw=1` and HEAD from the request; `options` may fix eager framing
 * or the frame rate instead, and add the serving path's hooks (admission, observer, logger).
 * Answers 503 (JSON with a code) when the stream cannot be served yet.
 */
export function liveResponse(stream: LiveStream, request?: Request, options: LiveViewerOptions & ServeHooks = {}): Promise<Response> {
  return serveResponse(liveServable(stream, options), request, options);
}
