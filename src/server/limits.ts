/**
 * Limits (issue 13): how many viewers in all, per stream and per client address, and how long a
 * session may last, applied on the one serving path (`hooks.admit` and `hooks.observer`); and what
 * Node's HTTP server is told of request heads (size, slowloris timeouts).
 */
import type { ServerOptions as HttpServerOptions } from 'node:http';
import { refusal, type Refusal, type Servable, type ServeObserver, type StreamRequest, type ViewerSession } from '../adapters/serve.ts';
import type { Viewer } from '../hub/viewer.ts';
import { ServerPushError } from '../errors.ts';
import {
  DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_SESSION_MS, DEFAULT_MAX_VIEWERS, DEFAULT_MAX_VIEWERS_PER_CLIENT,
  DEFAULT_MAX_VIEWERS_PER_STREAM, DEFAULT_REQUEST_TIMEOUT_MS, LIMIT_RETRY_AFTER_SECONDS,
} from '../defaults.ts';

/** The limits of a server. Every count is of stream viewers (slideshow clients and live viewers). */
export interface ServerLimits {
  /** Most viewers in all; more are answered 503 `SP_ERR_TOO_MANY_VIEWERS`. 0: no limit. @default 0 */
  maxViewers?: number;
  /** Most viewers of one stream; more are answered 503 `SP_ERR_TOO_MANY_VIEWERS`. 0: no limit. @default 0 */
  maxViewersPerStream?: number;
  /** Most viewers from one client address; more are answered 429 `SP_ERR_TOO_MANY_FROM_CLIENT`. 0: no limit. @default 0 */
  maxViewersPerClient?: number;
  /** A session lasting this long is ended by the server (its viewer reconnects). 0: no limit. @default 0 */
  maxSessionMs?: number;
  /** Largest request head in bytes (request line and headers); larger is answered 431. @default 16384 */
  maxHeaderBytes?: number;
  /** A client must send its whole request head within this time, else it is cut (slowloris). @default 10000 */
  headersTimeoutMs?: number;
  /** A client must send its whole request within this time; a response (an endless stream) is never cut by it. @default 30000 */
  requestTimeoutMs?: number;
}

/** The limits with their defaults, checked. Throws `SP_ERR_CONFIG` for a value that is not one. */
export function resolveLimits(limits: ServerLimits = {}): Required<ServerLimits> {
  const resolved: Required<ServerLimits> = {
    maxViewers: limits.maxViewers ?? DEFAULT_MAX_VIEWERS,
    maxViewersPerStream: limits.maxViewersPerStream ?? DEFAULT_MAX_VIEWERS_PER_STREAM,
    maxViewersPerClient: limits.maxViewersPerClient ?? DEFAULT_MAX_VIEWERS_PER_CLIENT,
    maxSessionMs: limits.maxSessionMs ?? DEFAULT_MAX_SESSION_MS,
    maxHeaderBytes: limits.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES,
    headersTimeoutMs: limits.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: limits.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
  };
  for (const [key, value] of Object.entries(resolved)) {
    if (!Number.isFinite(value) || value < 0 || !Number.isInteger(value)) throw new ServerPushError('SP_ERR_CONFIG', `${key} must be a whole number from 0, got ${value}`);
  }
  if (resolved.maxHeaderBytes < 1024) throw new ServerPushError('SP_ERR_CONFIG', `maxHeaderBytes must be at least 1024, got ${resolved.maxHeaderBytes}`);
  if (resolved.headersTimeoutMs === 0 || resolved.requestTimeoutMs === 0) throw new ServerPushError('SP_ERR_CONFIG', 'headersTimeoutMs and requestTimeoutMs must be above 0');
  if (resolved.requestTimeoutMs < resolved.headersTimeoutMs) throw new ServerPushError('SP_ERR_CONFIG', `requestTimeoutMs (${resolved.requestTimeoutMs}) must not be below headersTimeoutMs (${resolved.headersTimeoutMs})`);
  return resolved;
}

/**
 * What Node's `http.createServer` is given for the limits on request heads. Node's requestTimeout
 * covers receiving the request only (a GET is received with its head), so an endless response is
 * never cut; the timeouts are checked every `connectionsCheckingInterval` (30 s by Node's
 * default, too coarse for a 10 s head timeout).
 */
export function httpServerLimits(limits: Required<ServerLimits>): Pick<HttpServerOptions, 'maxHeaderSize' | 'headersTimeout' | 'requestTimeout' | 'connectionsCheckingInterval'> {
  return {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: Math.max(250, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
  };
}

/** A request let in and not yet a viewer (its stream is opening it). */
interface Reservation {
  stream: string;
  address: string;
  at: number;
}

/** A reservation older than this was lost (its request failed between admission and its start). */
const RESERVATION_TTL_MS = 30_000;

/**
 * The viewer limits on the serving path: {@link admit} is `hooks.admit`, the rest is an observer.
 * A request let in holds a place until it is a viewer or refused, so that requests admitted at the
 * same time cannot exceed a limit together.
 */
export class ViewerLimits implements ServeObserver {
  private limits: Required<ServerLimits>;
  private total = 0;
  private readonly perStream = new Map<string, number>();
  private readonly perClient = new Map<string, number>();
  private readonly reservations = new Map<StreamRequest, Reservation>();
  private readonly timers = new Map<Viewer, ReturnType<typeof setTimeout>>();

  constructor(limits: Required<ServerLimits>) {
    this.limits = limits;
  }

  /** The limits in force (a reload may change the viewer limits and the session duration). */
  get current(): Required<ServerLimits> {
    return this.limits;
  }

  set(limits: Required<ServerLimits>): void {
    this.limits = limits;
  }

  readonly admit = (request: StreamRequest, stream: Servable): Refusal | undefined => {
    const { maxViewers, maxViewersPerStream, maxViewersPerClient } = this.limits;
    if (maxViewers === 0 && maxViewersPerStream === 0 && maxViewersPerClient === 0) return undefined;
    this.expireReservations();
    const address = request.remoteAddress ?? 'unknown';
    let total = this.total;
    let ofStream = this.perStream.get(stream.name) ?? 0;
    let ofClient = this.perClient.get(address) ?? 0;
    for (const reservation of this.reservations.values()) {
      total++;
      if (reservation.stream === stream.name) ofStream++;
      if (reservation.address === address) ofClient++;
    }
    if (maxViewersPerClient > 0 && ofClient >= maxViewersPerClient) {
      return refusal(429, 'SP_ERR_TOO_MANY_FROM_CLIENT', `this client address has ${ofClient} viewer(s), the most one address may have (maxViewersPerClient ${maxViewersPerClient})`, LIMIT_RETRY_AFTER_SECONDS);
    }
    if (maxViewersPerStream > 0 && ofStream >= maxViewersPerStream) {
      return refusal(503, 'SP_ERR_TOO_MANY_VIEWERS', `stream ${stream.name} has ${ofStream} viewer(s), its most (maxViewersPerStream ${maxViewersPerStream})`, LIMIT_RETRY_AFTER_SECONDS);
    }
    if (maxViewers > 0 && total >= maxViewers) {
      return refusal(503, 'SP_ERR_TOO_MANY_VIEWERS', `the server has ${total} viewer(s), its most (maxViewers ${maxViewers})`, LIMIT_RETRY_AFTER_SECONDS);
    }
    // A HEAD request never becomes a viewer: nothing to hold.
    if (request.method !== 'HEAD') this.reservations.set(request, { stream: stream.name, address, at: performance.now() });
    return undefined;
  };

  refused(_stream: string, request: StreamRequest): void {
    this.reservations.delete(request);
  }

  started(session: ViewerSession): void {
    this.reservations.delete(session.request);
    const address = session.request.remoteAddress ?? 'unknown';
    this.total++;
    this.perStream.set(session.stream, (this.perStream.get(session.stream) ?? 0) + 1);
    this.perClient.set(address, (this.perClient.get(address) ?? 0) + 1);
    const { maxSessionMs } = this.limits;
    if (maxSessionMs > 0) {
      // Ended as a clean close; a live viewer (a player, a browser) reconnects and is admitted again.
      const timer = setTimeout(() => session.viewer.finish('limit'), maxSessionMs);
      timer.unref?.();
      this.timers.set(session.viewer, timer);
    }
  }

  ended(session: ViewerSession): void {
    const address = session.request.remoteAddress ?? 'unknown';
    this.total--;
    decrement(this.perStream, session.stream);
    decrement(this.perClient, address);
    const timer = this.timers.get(session.viewer);
    if (timer) {
      clearTimeout(timer);
      this.timers.delete(session.viewer);
    }
  }

  private expireReservations(): void {
    const oldest = performance.now() - RESERVATION_TTL_MS;
    for (const [request, reservation] of this.reservations) if (reservation.at < oldest) this.reservations.delete(request);
  }
}

function decrement(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 0) - 1;
  if (left <= 0) counts.delete(key);
  else counts.set(key, left);
}
