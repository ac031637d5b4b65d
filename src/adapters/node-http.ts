import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { multipartContentType } from '../protocol/content-type.ts';
import type { LiveSink } from '../hub/subscriber.ts';
import type { ServerPushErrorCode } from '../errors.ts';
import { DEFAULT_MAX_UNSENT_BYTES, limitResponseUnsentBytes } from './socket-buffer.ts';
import { sendDirect } from './direct-send.ts';

/** Answers a coded JSON error: `{"error": CODE, "message": …}`. */
export function sendError(res: ServerResponse, status: number, code: ServerPushErrorCode, message: string, headers: Record<string, string> = {}): void {
  sendBody(res, status, 'application/json; charset=utf-8', `${JSON.stringify({ error: code, message })}\n`, headers);
}

/** Answers a whole body (none for HEAD), never cached. */
export function sendBody(res: ServerResponse, status: number, contentType: string, body: string | Uint8Array, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
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

/**
 * Drops a response at once; never throws. `stalled`: with a TCP reset, so that the kernel discards
 * the megabytes it may still hold for a client that stopped reading (a plain close keeps them
 * queued until the peer goes away). Only an HTTP/1 response over plain TCP owns a socket it can
 * reset: an HTTP/2 response shares its session's connection (destroying the response resets
 * that one stream), and a TLS socket has no TCP handle to reset (it is closed).
 */
function dropResponse(res: ServerResponse, reason?: 'stalled'): void {
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
 * One multipart/x-mixed-replace response on Node's `http`, for a slideshow client (a `PartSink`)
 * or a live stream's viewer (a `LiveSink`): writes each batch of bytes as one write (one writev
 * for several chunks), counts what was written, and ties an `AbortSignal` to the client going
 * away (the STOP button).
 *
 * A close-delimited body (live streams) has no transfer coding, so once the headers are out its
 * bytes go straight to the socket: Node's `ServerResponse` would only pass them through, at a
 * cost that shows at a thousand viewers × 30 frames a second (decision 0009).
 */
export class NodeMultipartResponse implements LiveSink {
  readonly signal: AbortSignal;
  private readonly res: ServerResponse;
  private readonly counter: { bytesSent: number };
  /** The socket the body is written to directly, once `start()` has sent a close-delimited head. */
  private direct: Socket | undefined;

  /** `counter.bytesSent` grows by every byte written. */
  constructor(req: IncomingMessage, res: ServerResponse, counter: { bytesSent: number } = { bytesSent: 0 }) {
    this.res = res;
    this.counter = counter;
    const controller = new AbortController();
    this.signal = controller.signal;
    // 'close' fires when the response finished or the connection went away.
    res.once('close', () => controller.abort());
    req.once('close', () => { if (!res.writableFinished) controller.abort(); });
  }

  /**
   * Sends the status line and headers at once (no body yet), with Nagle off. With
   * `closeDelimited` the body has no chunked coding (`Connection: close`), as for live streams:
   * an endless stream never reuses its connection, and each batch is one plain write.
   * `maxUnsentBytes` (default {@link DEFAULT_MAX_UNSENT_BYTES}; 0 leaves the kernel's default)
   * bounds what the kernel queues unsent for this client (TCP_NOTSENT_LOWAT, HTTP/1 over TCP only).
   * Call it before any other method.
   */
  start(boundary: string, options: StreamHeaderOptions & { closeDelimited?: boolean; maxUnsentBytes?: number } = {}): void {
    if (options.closeDelimited) this.res.useChunkedEncodingByDefault = false;
    this.res.socket?.setNoDelay(true);
    // issue 10: bound what the kernel queues for a client that stops reading (socket-buffer.ts).
    limitResponseUnsentBytes(this.res, options.maxUnsentBytes ?? DEFAULT_MAX_UNSENT_BYTES);
    this.res.writeHead(200, streamHeaders(boundary, options));
    this.res.flushHeaders();
    if (options.closeDelimited && this.canWriteDirectly()) this.direct = this.res.socket!;
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

  /** True while the client has not taken the previous write yet. */
  get congested(): boolean {
    return this.direct ? this.direct.writableNeedDrain : this.res.writableNeedDrain;
  }

  /** Writes `chunks` as one batch. Returns false when the client is behind (wait for drain). */
  write(chunks: readonly Uint8Array[]): boolean {
    if (this.signal.aborted) return true;
    const out = this.direct ?? this.res;
    if (out.destroyed) return true;
    let ok = true;
    if (chunks.length === 1) {
      // issue 10: one send() straight to the socket when nothing is queued (direct-send.ts).
      ok = (this.direct && sendDirect(this.direct, chunks[0]!)) ?? out.write(chunks[0]!);
      this.counter.bytesSent += chunks[0]!.length;
    } else {
      out.cork();
      for (const chunk of chunks) {
        ok = out.write(chunk);
        this.counter.bytesSent += chunk.length;
      }
      out.uncork();
    }
    return ok;
  }

  /** Calls `listener` each time a busy client has taken what was written. */
  onDrain(listener: () => void): void {
    (this.direct ?? this.res).on('drain', listener);
  }

  /** Resolves true once the client has taken what was written, false on timeout or disconnect. */
  drained(timeoutMs: number): Promise<boolean> {
    if (!this.congested) return Promise.resolve(true);
    if (this.signal.aborted) return Promise.resolve(false);
    const out = this.direct ?? this.res;
    // A plain timer, not AbortSignal.timeout(): combined with AbortSignal.any() on Node 20 that
    // signal can be garbage-collected before it fires, and the client would never be dropped.
    return new Promise((resolve) => {
      const settle = (drained: boolean) => {
        clearTimeout(timer);
        out.off('drain', onDrain);
        this.signal.removeEventListener('abort', onAbort);
        resolve(drained);
      };
      const onDrain = () => settle(true);
      const onAbort = () => settle(false);
      const timer = setTimeout(settle, timeoutMs, false);
      out.on('drain', onDrain);
      this.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Writes the last bytes and ends the response (after the bytes written directly). */
  end(chunks: readonly Uint8Array[] = []): void {
    if (this.signal.aborted) return;
    this.write(chunks);
    this.res.end();
  }

  /** Drops the connection at once (see {@link dropResponse}). */
  destroy(reason?: 'stalled'): void {
    dropResponse(this.res, reason);
  }
}
