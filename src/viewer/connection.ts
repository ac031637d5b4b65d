import { multipartBoundary } from '../protocol/content-type.ts';
import { MultipartParser } from '../protocol/parser.ts';
import type { MultipartPart } from '../protocol/part.ts';

/** A part as the viewer received it. */
export interface ViewerPart {
  /** 1 for the first part of this connection's lifetime (all reconnects included), then 2, 3, … */
  seq: number;
  /** The part's Content-Type; `application/octet-stream` when it has none. */
  contentType: string;
  /** The body as it arrived (views into the fetched chunks). */
  chunks: readonly Uint8Array[];
  size: number;
  /** `X-Timestamp` in milliseconds since the epoch, when the part has one. */
  timestamp: number | undefined;
  /** `Date.now()` when the part was complete. */
  receivedAt: number;
}

/**
 * What the connection is doing: `connecting` (request sent), `open` (a stream is being read),
 * `retrying` (waiting `retryInMs` before the next attempt), `ended` (closing delimiter, no
 * reconnect), `failed` (an answer that retrying will not change, e.g. 404), `unreadable` (this
 * browser's fetch will not read the stream's multipart body: WebKit, see
 * {@link REFUSALS_BEFORE_UNREADABLE}), `stopped`.
 */
export type ConnectionState =
  | { state: 'connecting'; attempt: number }
  | { state: 'open' }
  | { state: 'retrying'; retryInMs: number; reason: string; attempt: number }
  | { state: 'ended' }
  | { state: 'failed'; reason: string }
  | { state: 'unreadable'; reason: string }
  | { state: 'stopped' };

/**
 * WebKit (Safari, every iOS browser, WebKitGTK) gives fetch() and XMLHttpRequest the headers of a
 * `multipart/x-mixed-replace` response, then fails its body before a single byte ("TypeError: Load
 * failed"), every time. After this many such answers in a row the connection gives up with
 * `unreadable` (the player then shows the stream in a plain `<img>`). serverpush's raw variant
 * (`?raw=1`, `application/octet-stream`) is read everywhere.
 */
export const REFUSALS_BEFORE_UNREADABLE = 2;

/** Options of {@link StreamConnection}. */
export interface StreamConnectionOptions {
  /** The stream's URL. */
  url: string;
  /**
   * Ask a serverpush server for the raw variant (`?raw=1`: the same bytes as
   * `application/octet-stream`, the boundary in `X-Multipart-Boundary`), which every browser's
   * fetch reads. Set false for other servers; a multipart Content-Type is read either way.
   * @default true
   */
  raw?: boolean;
  /**
   * Reconnect also after the closing delimiter. By default only when the server marks the
   * stream as live (`X-Stream-Kind: live`, which serverpush sends for live streams: their end is a
   * server going away, not the end of the show). Set true for looping slideshows.
   */
  reconnectOnEnd?: boolean;
  /** First delay before reconnecting, doubled at each failed attempt. @default 250 */
  initialRetryMs?: number;
  /** Longest delay before reconnecting. @default 10000 */
  maxRetryMs?: number;
  onPart(part: ViewerPart): void;
  onState(state: ConnectionState): void;
  /** @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
}

/** `refused`: the answer was multipart and its body failed before its first byte (WebKit's fetch). */
type Outcome = { kind: 'ended'; live: boolean } | { kind: 'retry'; reason: string; afterMs?: number; refused?: boolean } | { kind: 'fatal'; reason: string };

/** The stream's URL with `raw=1` added. */
export function rawUrl(url: string, base?: string): string {
  const parsed = new URL(url, base);
  parsed.searchParams.set('raw', '1');
  return parsed.href;
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** An answer's error message: serverpush's JSON `{ message }`, or the status line. */
async function answerText(response: Response): Promise<string> {
  const status = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  try {
    const body = await response.text();
    const message = (JSON.parse(body) as { message?: unknown }).message;
    return typeof message === 'string' ? `${status}: ${message}` : status;
  } catch {
    return status;
  }
}

/**
 * Reads a multipart stream with fetch and the project's parser, part by part, and reconnects with
 * exponential backoff (with jitter) when the connection fails or ends without its closing
 * delimiter. The backoff starts again from `initialRetryMs` once a connection has delivered a part.
 */
export class StreamConnection {
  private readonly options: StreamConnectionOptions;
  private readonly stop = new AbortController();
  private seq = 0;
  private running: Promise<void> | undefined;

  constructor(options: StreamConnectionOptions) {
    this.options = options;
  }

  /** Starts reading (once). */
  start(): void {
    this.running ??= this.run();
  }

  /** Stops reading and releases the connection at once. */
  close(): void {
    if (this.stop.signal.aborted) return;
    this.stop.abort();
    this.options.onState({ state: 'stopped' });
  }

  private async run(): Promise<void> {
    const { initialRetryMs = 250, maxRetryMs = 10_000 } = this.options;
    const signal = this.stop.signal;
    let attempt = 0;
    let refusals = 0;
    while (!signal.aborted) {
      this.options.onState({ state: 'connecting', attempt });
      let delivered = false;
      const outcome = await this.readOnce(() => { delivered = true; });
      if (signal.aborted) return;
      if (delivered) attempt = 0;
      if (outcome.kind === 'fatal') return this.options.onState({ state: 'failed', reason: outcome.reason });
      refusals = outcome.kind === 'retry' && outcome.refused ? refusals + 1 : 0;
      if (refusals >= REFUSALS_BEFORE_UNREADABLE) {
        return this.options.onState({ state: 'unreadable', reason: `this browser's fetch cannot read a multipart/x-mixed-replace body (${outcome.kind === 'retry' ? outcome.reason : ''})` });
      }
      if (outcome.kind === 'ended' && !(this.options.reconnectOnEnd ?? outcome.live)) return this.options.onState({ state: 'ended' });
      const backoff = Math.min(maxRetryMs, initialRetryMs * 2 ** attempt) * (0.8 + 0.4 * Math.random());
      const delay = Math.round(Math.max(backoff, outcome.kind === 'retry' ? outcome.afterMs ?? 0 : 0));
      attempt++;
      this.options.onState({ state: 'retrying', retryInMs: delay, reason: outcome.kind === 'retry' ? outcome.reason : 'the stream ended', attempt });
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', wake);
          resolve();
        };
        const timer = setTimeout(wake, delay);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
  }

  /**
   * One request: reads parts until the stream ends or fails. Never throws. The request is aborted
   * once it is over, whatever the outcome, so that the browser lets its connection go: WebKitGTK
   * keeps the connection of a multipart body it refused open (measured: even once aborted, in most
   * runs; its page gone too), and a browser has six per server. Hence the few attempts before
   * `unreadable`.
   */
  private async readOnce(onDelivered: () => void): Promise<Outcome> {
    const request = new AbortController();
    const abort = () => request.abort();
    this.stop.signal.addEventListener('abort', abort, { once: true });
    if (this.stop.signal.aborted) request.abort();
    try {
      return await this.request(request.signal, onDelivered);
    } finally {
      this.stop.signal.removeEventListener('abort', abort);
      request.abort();
    }
  }

  private async request(signal: AbortSignal, onDelivered: () => void): Promise<Outcome> {
    const { url, raw = true, fetch = globalThis.fetch } = this.options;
    let response: Response;
    try {
      response = await fetch(raw ? rawUrl(url, globalThis.location?.href) : url, { signal, cache: 'no-store', credentials: 'same-origin' });
    } catch (error) {
      return { kind: 'retry', reason: `cannot connect: ${reasonOf(error)}` };
    }
    if (!response.ok) {
      const reason = await answerText(response);
      // 503 (no documents yet, source down, shutting down), 502/504 (a proxy), 429, 408: try again.
      if (response.status >= 500 || response.status === 429 || response.status === 408) {
        const retryAfter = Number(response.headers.get('retry-after'));
        return { kind: 'retry', reason, ...(retryAfter > 0 ? { afterMs: Math.min(retryAfter, 60) * 1000 } : {}) };
      }
      return { kind: 'fatal', reason };
    }
    let parser: MultipartParser;
    try {
      parser = new MultipartParser(response.headers.get('x-multipart-boundary') ?? multipartBoundary(response.headers.get('content-type')));
    } catch (error) {
      await response.body?.cancel().catch(() => {});
      return { kind: 'fatal', reason: reasonOf(error) };
    }
    if (!response.body) return { kind: 'retry', reason: 'the answer has no body' };
    this.options.onState({ state: 'open' });
    const reader = response.body.getReader();
    let received = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.length;
        for (const part of parser.push(value)) {
          onDelivered();
          this.deliver(part);
        }
        if (parser.done) {
          await reader.cancel().catch(() => {});
          return { kind: 'ended', live: response.headers.get('x-stream-kind') === 'live' };
        }
      }
      // The body ended without the closing delimiter: the server or the network went away.
      for (const part of parser.end()) this.deliver(part);
      return { kind: 'retry', reason: 'the connection closed' };
    } catch (error) {
      await reader.cancel().catch(() => {});
      const refused = received === 0 && !signal.aborted && /^\s*multipart\//i.test(response.headers.get('content-type') ?? '');
      return { kind: 'retry', reason: `the stream failed: ${reasonOf(error)}`, ...(refused ? { refused } : {}) };
    }
  }

  private deliver(part: MultipartPart): void {
    const stamp = part.headers['x-timestamp'];
    const seconds = stamp === undefined ? NaN : Number(stamp);
    this.options.onPart({
      seq: ++this.seq,
      contentType: part.headers['content-type']?.trim() || 'application/octet-stream',
      chunks: part.chunks,
      size: part.size,
      timestamp: Number.isFinite(seconds) ? seconds * 1000 : undefined,
      receivedAt: Date.now(),
    });
  }
}
