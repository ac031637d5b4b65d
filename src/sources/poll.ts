import type { LiveStream } from '../hub/live-stream.ts';
import { ServerPushError, isServerPushError, LimitExceededError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { DEFAULT_MAX_PART_BYTES, DEFAULT_POLL_INTERVAL_MS, DEFAULT_RETRY_DELAY_MS } from '../defaults.ts';
import { Backoff, pause, type Source } from './source.ts';
import { prepareUpstream, type Upstream, type UpstreamOptions } from './upstream.ts';

export interface PollSourceOptions extends UpstreamOptions {
  /** Time between the starts of two requests. @default 1000 */
  intervalMs?: number;
  /** A request that has not answered whole within this long fails. @default max(interval, 10 s) */
  requestTimeoutMs?: number;
  /** First delay before retrying after a failure; doubles up to 30 s. @default 500 */
  retryDelayMs?: number;
  /** Images larger than this are refused. @default 16777216 (16 MiB) */
  maxPartBytes?: number;
  logger?: Logger;
}

/**
 * A camera that offers only a still (`snapshot.jpg`, `?action=snapshot`, `cgi-bin/snapshot.cgi`),
 * served as a live stream: the URL is fetched every `intervalMs` and each answer pushed as a frame.
 * Requests are conditional (`If-None-Match` / `If-Modified-Since` from the last answer): a 304
 * pushes the same picture again, as current (the camera said so). Credentials as the relay's (Basic
 * or Digest). A failure (no answer, a non-image, an HTTP error) marks the source down with the
 * reason and is retried with backoff (500 ms doubling up to 30 s, never faster than the interval);
 * the first good answer makes it up again.
 */
export class PollSource implements Source {
  readonly statusKey = 'upstream';
  private readonly stopped = new AbortController();
  private readonly upstream: Upstream;
  private done: Promise<void> | undefined;
  private etag: string | undefined;
  private lastModified: string | undefined;
  private last: { contentType: string; body: Uint8Array } | undefined;
  /** Requests made. */
  requests = 0;
  /** Answers 304 Not Modified. */
  notModified = 0;
  /** Requests that failed. */
  failures = 0;

  /** Throws `SP_ERR_CONFIG` for a bad URL (see the relay). */
  constructor(url: string, private readonly options: PollSourceOptions = {}) {
    this.upstream = prepareUpstream('poll', url, options);
  }

  get displayUrl(): string {
    return this.upstream.displayUrl;
  }

  /** For `/status`: the URL (redacted), how it was authenticated, the counts. */
  toJSON(): Record<string, unknown> {
    return {
      url: this.upstream.displayUrl,
      authentication: this.upstream.fetch.scheme,
      intervalSeconds: (this.options.intervalMs ?? DEFAULT_POLL_INTERVAL_MS) / 1000,
      requests: this.requests,
      notModified: this.notModified,
      failures: this.failures,
    };
  }

  start(stream: LiveStream): void {
    this.done = this.run(stream);
  }

  private async run(stream: LiveStream): Promise<void> {
    const logger = this.options.logger ?? silentLogger;
    const intervalMs = this.options.intervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    const backoff = new Backoff(this.options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS);
    let failing = false;
    while (!this.stopped.signal.aborted) {
      const startedAt = performance.now();
      try {
        const frame = await this.fetchOnce();
        if (this.stopped.signal.aborted) break;
        stream.push(frame);
        backoff.reset();
        if (failing) logger.info(`stream ${stream.name}: poll ${this.upstream.displayUrl} answers again`);
        failing = false;
        await pause(Math.max(0, intervalMs - (performance.now() - startedAt)), this.stopped.signal);
      } catch (error) {
        if (this.stopped.signal.aborted) break;
        this.failures++;
        const reason = this.upstream.shown((error as Error).message);
        const code = isServerPushError(error) ? error.code : 'SP_ERR_SOURCE_FAILED';
        const delay = Math.max(intervalMs, backoff.next());
        stream.setSource({ up: false, reason: `poll: ${reason}` });
        // Logged at the first failure and then at each backoff step's doubling, not at every poll.
        if (!failing || delay > intervalMs) logger.warn(code, `stream ${stream.name}: poll ${this.upstream.displayUrl}: ${reason}; retrying in ${delay} ms`);
        failing = true;
        await pause(delay, this.stopped.signal);
      }
    }
  }

  /** One request: the new picture, or the last one again on a 304. Throws a coded error. */
  private async fetchOnce(): Promise<{ contentType: string; body: Uint8Array }> {
    const maxPartBytes = this.options.maxPartBytes ?? DEFAULT_MAX_PART_BYTES;
    const timeoutMs = this.options.requestTimeoutMs ?? Math.max(this.options.intervalMs ?? DEFAULT_POLL_INTERVAL_MS, 10_000);
    const headers: Record<string, string> = { ...this.options.headers };
    if (this.last && this.etag) headers['If-None-Match'] = this.etag;
    if (this.last && this.lastModified) headers['If-Modified-Since'] = this.lastModified;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([this.stopped.signal, timeout]);
    this.requests++;
    let response: Response;
    try {
      response = await this.upstream.fetch(this.upstream.url, { headers, signal, redirect: 'follow' });
    } catch (error) {
      if (timeout.aborted) throw new ServerPushError('SP_ERR_TIMEOUT', `no answer within ${timeoutMs} ms`);
      if (isServerPushError(error)) throw error;
      throw new ServerPushError('SP_ERR_CONNECTION', `cannot get ${this.upstream.url}: ${reasonOf(error)}`, { cause: error });
    }
    if (response.status === 304 && this.last) {
      await response.body?.cancel().catch(() => {});
      this.notModified++;
      return this.last;
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => {});
      throw new ServerPushError('SP_ERR_HTTP_STATUS', `${this.upstream.url} answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`);
    }
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (declared > maxPartBytes) {
      await response.body?.cancel().catch(() => {});
      throw new LimitExceededError('SP_ERR_PART_TOO_LARGE', `the picture is ${declared} bytes, over the ${maxPartBytes}-byte limit`, maxPartBytes);
    }
    const body = await readLimited(response, maxPartBytes, timeout);
    const contentType = (response.headers.get('content-type') ?? 'image/jpeg').split(';')[0]!.trim() || 'image/jpeg';
    if (!contentType.toLowerCase().startsWith('image/')) throw new ServerPushError('SP_ERR_INVALID_FRAME', `the answer is ${contentType}, not an image`);
    this.etag = response.headers.get('etag') ?? undefined;
    this.lastModified = response.headers.get('last-modified') ?? undefined;
    this.last = { contentType, body };
    return this.last;
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    await this.done;
  }
}

/** The whole body, refusing more than `limit` bytes. */
async function readLimited(response: Response, limit: number, timeout: AbortSignal): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = response.body?.getReader();
  try {
    for (;;) {
      const next = await reader?.read();
      if (!next || next.done) break;
      const chunk = next.value;
      total += chunk.length;
      if (total > limit) throw new LimitExceededError('SP_ERR_PART_TOO_LARGE', `the picture is over the ${limit}-byte limit`, limit);
      chunks.push(chunk);
    }
  } catch (error) {
    await reader?.cancel().catch(() => {});
    if (isServerPushError(error)) throw error;
    if (timeout.aborted) throw new ServerPushError('SP_ERR_TIMEOUT', 'the picture did not come whole in time');
    throw new ServerPushError('SP_ERR_CONNECTION', `the answer broke off: ${reasonOf(error)}`, { cause: error });
  }
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}

function reasonOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}
