import type { LiveStream } from '../hub/live-stream.ts';
import { fetchParts } from '../client/fetch-parts.ts';
import { ServerPushError, isServerPushError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { WarningThrottle } from './frame-feed.ts';
import { DEFAULT_MAX_PART_BYTES, DEFAULT_RELAY_IDLE_MS, DEFAULT_RETRY_DELAY_MS, DEFAULT_UPSTREAM_STALL_MS } from '../defaults.ts';
import { Backoff, pause, waitForDemand, type Source } from './source.ts';
import type { AuthenticatingFetch } from '../client/http-auth.ts';
import { prepareUpstream } from './upstream.ts';

export interface RelaySourceOptions {
  /** Stop pulling after nobody has watched for this long; 0 = never stop. @default 30000 */
  idleTimeoutMs?: number;
  /** An upstream that sends no part for this long is dropped and retried. @default 10000 */
  stallTimeoutMs?: number;
  /** First delay before reconnecting; doubles up to 30 s. @default 500 */
  retryDelayMs?: number;
  /** Request headers for the upstream. Their values are treated as secrets (never logged). */
  headers?: Record<string, string>;
  /**
   * User name for the upstream, answered by HTTP Basic or Digest when it asks (a 401). A
   * `user:password@` in the URL is used (and removed from the URL) when this is not given.
   */
  username?: string;
  /** Password for the upstream (never logged or shown). */
  password?: string;
  /** Parts larger than this are refused by the parser. @default 16777216 (16 MiB) */
  maxPartBytes?: number;
  /**
   * The upstream's boundary, for an upstream that does not declare a multipart type (ffmpeg's
   * `-f mpjpeg` served over HTTP says `application/octet-stream`); any Content-Type is then
   * accepted. @default the boundary of the upstream's multipart Content-Type
   */
  boundary?: string;
  logger?: Logger;
}

/**
 * Re-serves another server's multipart/x-mixed-replace stream (an IP camera, mjpg-streamer,
 * another serverpush) over one upstream connection, whatever the number of viewers. Reconnects
 * with backoff; pulls only while someone watches (after `idleTimeoutMs` without viewers it
 * disconnects, and stops retrying a failing upstream; the next request for the stream — a viewer
 * or a snapshot — starts it again).
 */
export class RelaySource implements Source {
  private readonly stopped = new AbortController();
  private done: Promise<void> | undefined;
  /** Upstream connections made so far. */
  connections = 0;
  /** The upstream URL without credentials: what is fetched. */
  private readonly url: string;
  /** The upstream URL as it may be shown: `http://admin:***@cam/…`, secret query values hidden. */
  readonly displayUrl: string;
  private readonly fetch: AuthenticatingFetch;
  /** A failure's message as it may be shown: the URL as {@link displayUrl}, secrets hidden. */
  private readonly shown: (message: string) => string;

  /**
   * Throws `SP_ERR_CONFIG` for a URL that is not http(s), or a password given both in the URL and
   * in the options. The message never holds the password.
   */
  constructor(url: string, private readonly options: RelaySourceOptions = {}) {
    const upstream = prepareUpstream('relay', url, options);
    this.url = upstream.url;
    this.displayUrl = upstream.displayUrl;
    this.fetch = upstream.fetch;
    this.shown = upstream.shown;
  }

  /** For `/status`: the upstream (redacted), how it was last authenticated, connections made. */
  toJSON(): Record<string, unknown> {
    return { url: this.displayUrl, authentication: this.fetch.scheme, connections: this.connections, ...(this.options.boundary ? { boundary: this.options.boundary } : {}) };
  }

  start(stream: LiveStream): void {
    this.done = this.run(stream);
  }

  private async run(stream: LiveStream): Promise<void> {
    const logger = this.options.logger ?? silentLogger;
    const idleMs = this.options.idleTimeoutMs ?? DEFAULT_RELAY_IDLE_MS;
    const stallMs = this.options.stallTimeoutMs ?? DEFAULT_UPSTREAM_STALL_MS;
    const backoff = new Backoff(this.options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS);
    const warnings = new WarningThrottle(logger, `stream ${stream.name} (relay ${this.displayUrl}): `);
    while (!this.stopped.signal.aborted) {
      if (idleMs > 0 && stream.viewers === 0 && this.connections > 0) {
        logger.info(`stream ${stream.name}: nobody watches; relay paused until someone asks for the stream`);
        // Its latest frame is getting old: /status says `idle`, a snapshot waits for a fresh frame.
        if (stream.sourceState === 'up') stream.setSource({ up: true, idle: true });
        await waitForDemand(stream, this.stopped.signal);
        if (this.stopped.signal.aborted) break;
      }
      const connection = new AbortController();
      const cut = (reason: ServerPushError) => connection.abort(reason);
      const onStop = () => connection.abort(new ServerPushError('SP_ERR_SOURCE_FAILED', 'stopped'));
      this.stopped.signal.addEventListener('abort', onStop, { once: true });
      let stall = setTimeout(cut, stallMs, new ServerPushError('SP_ERR_TIMEOUT', `upstream sent nothing for ${stallMs} ms`));
      let idle: ReturnType<typeof setTimeout> | undefined;
      // Cut for lack of viewers: told apart from a failure by identity, not by its message.
      const idleCut = new ServerPushError('SP_ERR_SOURCE_FAILED', 'nobody watches');
      const onViewers = (count: number) => {
        clearTimeout(idle);
        idle = count === 0 && idleMs > 0 ? setTimeout(cut, idleMs, idleCut) : undefined;
      };
      stream.on('viewers', onViewers);
      onViewers(stream.viewers);
      let reason: string;
      let failure: string | undefined;
      try {
        this.connections++;
        for await (const part of fetchParts(this.url, { fetch: this.fetch, signal: connection.signal, maxPartBytes: this.options.maxPartBytes ?? DEFAULT_MAX_PART_BYTES, ...(this.options.headers ? { headers: this.options.headers } : {}), ...(this.options.boundary ? { boundary: this.options.boundary } : {}) })) {
          clearTimeout(stall);
          stall = setTimeout(cut, stallMs, new ServerPushError('SP_ERR_TIMEOUT', `upstream sent nothing for ${stallMs} ms`));
          backoff.reset();
          try {
            stream.push({ contentType: part.headers['content-type'] ?? 'image/jpeg', body: part.body });
          } catch (error) {
            warnings.warn(isServerPushError(error) ? error.code : 'SP_ERR_INVALID_FRAME', `dropped a frame: ${this.shown((error as Error).message)}`);
          }
        }
        reason = 'upstream ended the stream';
      } catch (error) {
        reason = this.shown((error as Error).message);
        failure = isServerPushError(error) ? error.code : undefined;
      } finally {
        clearTimeout(stall);
        clearTimeout(idle);
        stream.off('viewers', onViewers);
        this.stopped.signal.removeEventListener('abort', onStop);
      }
      if (this.stopped.signal.aborted) break;
      if (connection.signal.reason === idleCut) continue;
      stream.setSource({ up: false, reason });
      const delay = backoff.next();
      const code = connection.signal.reason instanceof ServerPushError ? connection.signal.reason.code : failure;
      logger.warn(code === 'SP_ERR_TIMEOUT' || code === 'SP_ERR_AUTH_FAILED' ? code : 'SP_ERR_SOURCE_FAILED', `stream ${stream.name}: relay ${this.displayUrl}: ${reason}; retrying in ${delay} ms`);
      await pause(delay, this.stopped.signal);
    }
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    await this.done;
  }
}
