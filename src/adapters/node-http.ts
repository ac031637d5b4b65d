import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { constants, type Http2ServerRequest, type Http2ServerResponse, type Http2Stream } from 'node:http2';
import type { MultipartSink } from '../hub/viewer.ts';
import type { LiveStream } from '../hub/live-stream.ts';
import type { ServerPushErrorCode } from '../errors.ts';
import { liveServable, serveStream, type LiveViewerOptions, type ResponseWriter, type Servable, type ServeHooks, type StreamRequest } from './serve.ts';
import type { ViewerEnd } from '../hub/viewer.ts';
import { DEFAULT_MAX_UNSENT_BYTES, limitResponseUnsentBytes } from './socket-buffer.ts';
import { sendDirect } from './direct-send.ts';
import { redactRequestUrl } from '../redact.ts';

/** Answers a coded JSON error: `{"error": CODE, "message": …}`. */
export function sendError(res: ServerResponse, status: number, code: ServerPushErrorCode, message: string, headers: Record<string, string> = {}): void {
  sendBody(res, status, 'application/json; charset=utf-8', `${JSON.stringify({ error: code, message })}\n`, headers);
}

/** Answers a whole body (none for HEAD), never cached. */
export function sendBody(res: ServerResponse, status: number, contentType: string, body: string | Uint8Array, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/**
 * Drops a response at once; never throws. `stalled`: with a TCP reset, so that the kernel discards
 * the megabytes it may still hold for a client that stopped reading (a plain close keeps them
 * queued until the peer goes away). Only an HTTP/1 response over plain TCP owns a socket it can
 * reset: an HTTP/2 response shares its session's connection (destroying the response resets
 * that one stream), and a TLS socket has no TCP handle to reset (it is closed).
 */
function dropResponse(res: ServerResponse, reason?: 'stalled'): void {
  // HTTP/2 (the compatibility API's response): reset this one stream with CANCEL, so that the
  // client sees the response cut (a plain destroy() resets it with NO_ERROR, which reads as a
  // clean end); the session and its other streams go on.
  const h2 = (res as unknown as { stream?: Http2Stream }).stream;
  if (h2 !== undefined && !(res instanceof ServerResponse)) {
    if (!h2.destroyed) h2.close(constants.NGHTTP2_CANCEL);
    return;
  }
  const socket = res.socket;
  if (reason === 'stalled' && res instanceof ServerResponse && socket && !socket.destroyed && !(socket as TLSSocket).encrypted) {
    try {
      socket.resetAndDestroy();
      return;
    } catch {
      // Not a TCP socket after all (a custom transport): close it below.
    }
  }
  res.destroy();
}

/**
 * One multipart/x-mixed-replace response on Node's `http` (the {@link MultipartSink} of a
 * slideshow client or a live viewer): writes each batch of bytes as one write (one writev for
 * several chunks) and ties an `AbortSignal` to the client going away (the STOP button).
 *
 * A close-delimited body (live streams) has no transfer coding, so once the headers are out its
 * bytes go straight to the socket: Node's `ServerResponse` would only pass them through, at a
 * cost that shows at a thousand viewers × 30 frames a second (decision 0009).
 */
export class NodeMultipartResponse implements MultipartSink {
  readonly signal: AbortSignal;
  private readonly res: ServerResponse;
  /** The socket the body is written to directly, once `start()` has sent a close-delimited head. */
  private direct: Socket | undefined;

  constructor(req: IncomingMessage, res: ServerResponse) {
    this.res = res;
    const controller = new AbortController();
    this.signal = controller.signal;
    // 'close' fires when the response finished or the connection went away.
    res.once('close', () => controller.abort());
    req.once('close', () => { if (!res.writableFinished) controller.abort(); });
  }

  /**
   * Sends the status line and `headers` at once (no body yet), with Nagle off. With
   * `closeDelimited` the body has no chunked coding (`Connection: close`), as for live streams:
   * an endless stream never reuses its connection, and each batch is one plain write.
   * `maxUnsentBytes` (default {@link DEFAULT_MAX_UNSENT_BYTES}; 0 leaves the kernel's default)
   * bounds what the kernel queues unsent for this client (TCP_NOTSENT_LOWAT, HTTP/1 over TCP only).
   * Call it before any other method.
   */
  start(headers: Record<string, string>, closeDelimited: boolean, maxUnsentBytes = DEFAULT_MAX_UNSENT_BYTES): void {
    if (closeDelimited) this.res.useChunkedEncodingByDefault = false;
    this.res.socket?.setNoDelay(true);
    // issue 10: bound what the kernel queues for a client that stops reading (socket-buffer.ts).
    limitResponseUnsentBytes(this.res, maxUnsentBytes);
    this.res.writeHead(200, headers);
    this.res.flushHeaders();
    if (closeDelimited && this.canWriteDirectly()) this.direct = this.res.socket!;
  }

  /**
   * Whether the body may bypass `ServerResponse` now that the head is out: an HTTP/1 response
   * (an HTTP/2 compatibility response's socket belongs to the whole session) that has its socket
   * (it is not queued behind a pipelined request, so flushHeaders() wrote the head to it), with a
   * body (not HEAD), no transfer coding, and nobody wrapping its `write` (compression or
   * instrumentation middleware, `inject()` test harnesses): they all keep getting every byte.
   */
  private canWriteDirectly(): boolean {
    const res = this.res;
    const socket = res.socket;
    return res instanceof ServerResponse && socket !== null && !socket.destroyed && res.req?.method !== 'HEAD'
      && !res.chunkedEncoding && res.write === ServerResponse.prototype.write;
  }

  /** Writes `chunks` as one batch. Returns false when the client is behind (wait for drain). */
  write(chunks: readonly Uint8Array[]): boolean {
    if (this.signal.aborted) return true;
    const out = this.direct ?? this.res;
    if (out.destroyed) return true;
    // issue 10: one send() straight to the socket when nothing is queued (direct-send.ts).
    if (chunks.length === 1) return (this.direct && sendDirect(this.direct, chunks[0]!)) ?? out.write(chunks[0]!);
    let ok = true;
    out.cork();
    for (const chunk of chunks) ok = out.write(chunk);
    out.uncork();
    return ok;
  }

  /** Calls `listener` each time a busy client has taken what was written. */
  onDrain(listener: () => void): void {
    (this.direct ?? this.res).on('drain', listener);
  }

  /** Writes the last bytes and ends the response (after the bytes written directly). */
  end(chunks: readonly Uint8Array[] = []): void {
    if (this.signal.aborted) return;
    if (chunks.length > 0) this.write(chunks);
    this.res.end();
  }

  /** Drops the connection at once (see {@link dropResponse}). */
  destroy(reason?: 'stalled'): void {
    dropResponse(this.res, reason);
  }
}

/** The serving path's {@link ResponseWriter} for one Node request. */
function nodeWriter(req: IncomingMessage, res: ServerResponse): ResponseWriter<void> {
  return {
    refuse: (answer) => sendError(res, answer.status, answer.code, answer.message, { ...answer.headers }),
    head(headers) {
      res.writeHead(200, headers);
      res.end();
    },
    start(headers, { closeDelimited, maxUnsentBytes }) {
      const sink = new NodeMultipartResponse(req, res);
      sink.start(headers, closeDelimited, maxUnsentBytes);
      return { sink, response: undefined };
    },
  };
}

/** What the serving path needs of a Node request. */
export function nodeStreamRequest(req: IncomingMessage, query: URLSearchParams): StreamRequest {
  return { method: req.method ?? 'GET', query, accept: req.headers.accept, remoteAddress: req.socket?.remoteAddress, userAgent: req.headers['user-agent'], authorization: req.headers.authorization, path: req.url?.split('?')[0] };
}

/**
 * Serves `stream` to one Node request through the one serving path (adapters/serve.ts). Resolves
 * when the response is over, with how it ended (undefined when no body was served). `overrides`
 * replace what is read from the request (the server passes the client's address behind a proxy).
 */
export async function serveNode(stream: Servable, req: IncomingMessage, res: ServerResponse, query: URLSearchParams, hooks: ServeHooks = {}, overrides: Partial<StreamRequest> = {}): Promise<ViewerEnd | undefined> {
  const { done } = await serveStream(stream, { ...nodeStreamRequest(req, query), ...overrides }, nodeWriter(req, res), hooks);
  return done;
}

/**
 * A request handler for Node's `http` and `http2` compatibility API (and so Express, Koa's
 * `ctx.req/res`, Fastify's raw objects) that serves a live stream to every request it gets:
 * `http.createServer(liveHandler(stream))` or `app.get('/cam', liveHandler(stream))`. Takes
 * `?fps=N`, `?eager=0|1`, `?raw=1` and HEAD, like serverpush's own server.
 */
export function liveHandler(stream: LiveStream, options: LiveViewerOptions & Omit<ServeHooks, 'stop'> = {}): (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void {
  const servable = liveServable(stream, options);
  // The HTTP/2 compatibility API's request and response have every member used here and by
  // NodeMultipartResponse (decision 0017).
  return (anyReq, anyRes) => {
    const req = anyReq as IncomingMessage;
    const res = anyRes as ServerResponse;
    const q = req.url?.indexOf('?') ?? -1;
    const query = new URLSearchParams(q === -1 ? '' : req.url!.slice(q + 1));
    serveNode(servable, req, res, query, options).catch((error: unknown) => {
      options.logger?.error('SP_ERR_INTERNAL', `stream ${stream.name}: request ${req.method} ${redactRequestUrl(req.url)} failed: ${(error as Error).stack ?? String(error)}`);
      if (!res.headersSent) sendError(res, 500, 'SP_ERR_INTERNAL', 'internal error');
      else res.destroy();
    });
  };
}
