/**
 * The one serving path of every multipart/x-mixed-replace response — slideshows (per client) and
 * live streams (synced slideshows, sources, `push()`), on Node's `http` and as a web `Response`.
 * Runtime-neutral: no `node:` imports. The adapters (node-http.ts, fetch.ts) only say how to answer
 * a refusal, a HEAD, and how to start a body ({@link ResponseWriter}).
 *
 * What happens to a request, in order (docs/decisions/0013-one-serving-path.md):
 *   1. the server is stopping → 503 `SP_ERR_SHUTTING_DOWN`;
 *   2. **admission** — `hooks.admit(request, stream)`: the seam for access control and limits;
 *      it answers a refusal (401/403/429/503…) or lets the request through;
 *   3. the stream opens a session for it (`Servable.open`): its own query (`?fps`, `?only`, eager
 *      negotiation) and whether it can be served now (503 `SP_ERR_NO_FRAME`, `SP_ERR_SOURCE_DOWN`,
 *      `SP_ERR_NO_DOCUMENTS` with `Retry-After`);
 *   4. HEAD: the stream's headers alone;
 *   5. the head goes out, a {@link Viewer} is made (stall policy, counts) and the session plays to
 *      it; **observation** — `hooks.observer` is told when a viewer starts and ends (with why,
 *      parts, bytes, duration) and of every refusal: the seam for metrics and session logs.
 */
import type { ServerPushErrorCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { LiveStream } from '../hub/live-stream.ts';
import { Viewer, type MultipartSink, type ViewerEnd, type WriteTotals } from '../hub/viewer.ts';
import { multipartContentType } from '../protocol/content-type.ts';
import { MAX_FPS } from '../defaults.ts';
import { isRawRequest, wantsEager } from './negotiation.ts';

/** What the serving path needs to know of a request, whatever the runtime. */
export interface StreamRequest {
  /** `GET` or `HEAD` (other methods are refused before). */
  readonly method: string;
  readonly query: URLSearchParams;
  /** The Accept header, for eager-framing negotiation. */
  readonly accept?: string | undefined;
  /** The client's address, for logs and per-address limits. */
  readonly remoteAddress?: string | undefined;
  readonly userAgent?: string | undefined;
  /** The user access control let in, if any (for session logs); set by the server's access check. */
  readonly user?: string | undefined;
  /** The request's path (without the query), for an `admit` hook that checks signed links. */
  readonly path?: string | undefined;
  /** The Authorization header, for an `admit` hook that checks credentials (never logged). */
  readonly authorization?: string | undefined;
}

/** A request that is not served: the status, a stable code, a message, and headers (`Retry-After`). */
export interface Refusal {
  readonly status: number;
  readonly code: ServerPushErrorCode;
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Builds a {@link Refusal}; `retryAfterSeconds` adds `Retry-After`. */
export function refusal(status: number, code: ServerPushErrorCode, message: string, retryAfterSeconds?: number): Refusal {
  return retryAfterSeconds === undefined ? { status, code, message } : { status, code, message, headers: { 'Retry-After': String(retryAfterSeconds) } };
}

/** A session a stream opened for one request: it plays to the viewer until the response ends. */
export interface Session {
  /** Writes the stream to `viewer`. Resolves when the stream has nothing more for it (or it left). */
  play(viewer: Viewer): Promise<void>;
}

/** Something served as a multipart/x-mixed-replace stream: a live stream or a slideshow. */
export interface Servable {
  /** The stream's name (logs, observers). */
  readonly name: string;
  readonly boundary: string;
  /**
   * A live stream: its body is close-delimited (no chunked coding on HTTP/1.1), it says
   * `X-Stream-Kind: live`, and a client that sees it end reconnects.
   */
  readonly live: boolean;
  /** A viewer whose sink takes nothing for this long is dropped. */
  readonly stallTimeoutMs: number;
  /** Bytes the kernel may queue unsent for one viewer (TCP_NOTSENT_LOWAT; 0: the kernel's default). */
  readonly maxUnsentBytes?: number | undefined;
  /** Reads what this stream takes from the request and says whether it can be served now. */
  open(request: StreamRequest): Session | Refusal | Promise<Session | Refusal>;
}

/** One viewer's session as the observer sees it. */
export interface ViewerSession {
  readonly stream: string;
  readonly request: StreamRequest;
  readonly viewer: Viewer;
}

/** Told what the serving path does: the seam for counters, metrics and session logs. */
export interface ServeObserver {
  /** A request was refused (by admission, the stream, or shutdown). */
  refused?(stream: string, request: StreamRequest, refusal: Refusal): void;
  /** A viewer's head went out. */
  started?(session: ViewerSession): void;
  /** A viewer's first part was written (`viewer.firstPartAt - viewer.startedAt`: the wait for it). */
  firstPart?(session: ViewerSession): void;
  /** A viewer's response is over; `reason` says why. */
  ended?(session: ViewerSession, reason: ViewerEnd): void;
}

/** What the server (or a user of the adapters) plugs into the serving path. */
export interface ServeHooks {
  /** When aborted, new requests are refused with 503 `SP_ERR_SHUTTING_DOWN`. */
  stop?: AbortSignal;
  /** Admission (access control, limits): a refusal, or undefined to let the request through. */
  admit?(request: StreamRequest, stream: Servable): Refusal | undefined | Promise<Refusal | undefined>;
  observer?: ServeObserver;
  /** Totals every viewer adds to (`/status`). */
  totals?: WriteTotals;
  /** `SP_ERR_SLOW_CLIENT` warnings go here. */
  logger?: Logger;
}

/** How one runtime answers: a refusal, the headers of a HEAD, or the start of a body. */
export interface ResponseWriter<R> {
  refuse(refusal: Refusal): R;
  head(headers: Record<string, string>): R;
  /** Sends the status line and `headers` at once and returns the sink of the body. */
  start(headers: Record<string, string>, options: { closeDelimited: boolean; maxUnsentBytes?: number | undefined }): { sink: MultipartSink; response: R };
}

/** Options of {@link streamHeaders}. */
export interface StreamHeaderOptions {
  /**
   * The raw variant, for browsers whose fetch will not read a multipart/x-mixed-replace body: the
   * same bytes as `application/octet-stream` (not sniffed), the boundary in `X-Multipart-Boundary`.
   * @default false
   */
  raw?: boolean;
  /**
   * A live stream: says so in `X-Stream-Kind: live`, so that a client that sees it end (the
   * server went away) knows to reconnect rather than take it as the end of the show.
   * @default false
   */
  live?: boolean;
}

/** Headers every multipart/x-mixed-replace response carries (DESIGN.md, wire format). */
export function streamHeaders(boundary: string, options: StreamHeaderOptions = {}): Record<string, string> {
  return {
    ...(options.live ? { 'X-Stream-Kind': 'live' } : {}),
    ...(options.raw
      ? { 'Content-Type': 'application/octet-stream', 'X-Multipart-Boundary': boundary, 'X-Content-Type-Options': 'nosniff' }
      : { 'Content-Type': multipartContentType(boundary) }),
    'Cache-Control': 'no-cache, no-store, must-revalidate',
    Pragma: 'no-cache',
    Expires: '0',
    // nginx and other proxies: do not buffer this response.
    'X-Accel-Buffering': 'no',
    // A stream has no byte ranges; ffmpeg sends `Range: bytes=0-` and gets a plain 200.
    'Accept-Ranges': 'none',
  };
}

/** The answer of {@link serveStream}: the runtime's response, and when the viewer is gone. */
export interface Served<R> {
  response: R;
  /** Resolves once the response is over: how it ended, or undefined when no body was served. */
  done: Promise<ViewerEnd | undefined>;
}

/** Serves `stream` to one request (see the file's comment for the order of things). */
export async function serveStream<R>(stream: Servable, request: StreamRequest, writer: ResponseWriter<R>, hooks: ServeHooks = {}): Promise<Served<R>> {
  const refuse = (answer: Refusal): Served<R> => {
    hooks.observer?.refused?.(stream.name, request, answer);
    return { response: writer.refuse(answer), done: Promise.resolve(undefined) };
  };
  if (hooks.stop?.aborted) return refuse(refusal(503, 'SP_ERR_SHUTTING_DOWN', 'the server is shutting down'));
  const denied = await hooks.admit?.(request, stream);
  if (denied) return refuse(denied);
  const session = await stream.open(request);
  if ('status' in session) return refuse(session);
  const headers = streamHeaders(stream.boundary, { raw: isRawRequest(request.query), live: stream.live });
  // Node would hold the headers of an endless HEAD response until end(): answer them alone.
  if (request.method === 'HEAD') return { response: writer.head(headers), done: Promise.resolve(undefined) };
  const { sink, response } = writer.start(headers, { closeDelimited: stream.live, maxUnsentBytes: stream.maxUnsentBytes });
  const viewer = new Viewer(sink, {
    stallTimeoutMs: stream.stallTimeoutMs,
    ...(hooks.totals ? { totals: hooks.totals } : {}),
    ...(hooks.observer?.firstPart ? { onFirstPart: () => hooks.observer!.firstPart!(observed) } : {}),
    onStall: () => hooks.logger?.warn('SP_ERR_SLOW_CLIENT', `stream ${stream.name}: dropped a viewer (${request.remoteAddress ?? 'unknown address'}) that took no data for ${stream.stallTimeoutMs} ms`),
  });
  const observed: ViewerSession = { stream: stream.name, request, viewer };
  hooks.observer?.started?.(observed);
  const done = (async () => {
    try {
      await session.play(viewer);
    } catch (error) {
      // A session must not fail; if one does, its viewer is dropped rather than left hanging.
      viewer.close();
      throw error;
    } finally {
      // A slideshow that finished has ended its response; wait until it is closed.
      hooks.observer?.ended?.(observed, await viewer.ended);
    }
    return viewer.endReason;
  })();
  return { response, done };
}

/**
 * Why a live stream cannot be served to a new viewer or a snapshot now (503 `SP_ERR_NO_FRAME` or
 * `SP_ERR_SOURCE_DOWN`, `Retry-After: 1`), or undefined. A request, served or not, wakes a source
 * that pulls on demand (an idle relay).
 */
export function liveRefusal(stream: LiveStream): Refusal | undefined {
  stream.demand();
  const problem = stream.unavailable();
  return problem && refusal(503, problem.code, problem.message, 1);
}

/** Options of a live stream's viewers that override what the request asks for. */
export interface LiveViewerOptions {
  /** Eager framing; by default negotiated from the request (`?eager`, Accept). */
  eager?: boolean;
  /** Most parts per second; by default `?fps=N`, else every part. */
  maxFps?: number;
}

/**
 * A {@link LiveStream} as the serving path serves it: `?fps=N` (400 when not a number from 0 to
 * 1000), eager framing for `<img>` loads and browsers (`?eager=0|1` decides), 503 with a code
 * while it cannot be served (`SP_ERR_NO_FRAME`, `SP_ERR_SOURCE_DOWN`). A request, served or not,
 * wakes a source that pulls on demand (an idle relay).
 */
export function liveServable(stream: LiveStream, overrides: LiveViewerOptions = {}): Servable {
  return {
    name: stream.name,
    boundary: stream.framing.boundary,
    live: true,
    get stallTimeoutMs() { return stream.stallTimeoutMs; },
    get maxUnsentBytes() { return stream.maxUnsentBytes; },
    open(request) {
      const fpsText = request.query.get('fps');
      const maxFps = overrides.maxFps ?? (fpsText === null ? 0 : Number(fpsText));
      if (!Number.isFinite(maxFps) || maxFps < 0 || maxFps > MAX_FPS) {
        return refusal(400, 'SP_ERR_BAD_REQUEST', `fps must be a number from 0 to ${MAX_FPS}, got ${JSON.stringify(fpsText)}`);
      }
      const unavailable = liveRefusal(stream);
      if (unavailable) return unavailable;
      const eager = overrides.eager ?? wantsEager(request.accept, request.query);
      return {
        play(viewer) {
          stream.subscribe(viewer, { eager, maxFps });
          return viewer.ended.then(() => {});
        },
      };
    },
  };
}
