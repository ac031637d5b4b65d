/**
 * The seam between the server and a bus that carries live streams between serverpush processes
 * (issue 14; docs/decisions/0020-redis-bus.md). Types only: the server imports this file whether
 * or not a bus is configured, and loads the Redis code itself (src/bus/redis-bus.ts) only with
 * `ServeOptions.redis`.
 */
import type { Logger } from '../log.ts';
import type { LiveStream } from '../hub/live-stream.ts';
import type { Source } from '../sources/source.ts';

/**
 * How a stream's frames enter the bus.
 * - `leased`: the source may run in any process started with the same config (exec, relay, watch,
 *   a synced slideshow): exactly one process runs it at a time, the one holding its lease.
 * - `local`: frames come from this process only (`push`, `stdin`): it publishes what it gets.
 */
export type BusRole = 'leased' | 'local';

/** One live stream joined to the bus: runs in place of the stream's own source. */
export interface BusLink extends Source {
  /**
   * Resolves once a request for the stream can be answered with the newest frame on the bus (the
   * stream is subscribed and its latest-frame key read), or at once while the bus is down.
   */
  prepare(): Promise<void>;
  /**
   * True while another process runs the source and this one takes the frames from the bus (only
   * when it has viewers): no frame here yet does not make the stream unready (`/readyz`).
   */
  readonly following?: boolean;
}

/** A bus of live streams shared by several serverpush processes. */
export interface StreamBus {
  /**
   * Joins the live stream `live` to the bus. `source` is the stream's own source (undefined for a
   * `push` stream); `makeSource` makes a fresh one each time this process takes the lease again.
   */
  link(name: string, live: LiveStream, role: BusRole, source: Source | undefined, makeSource: () => Promise<Source | undefined>): BusLink;
  /** What `/status` shows under `bus` (no secrets). */
  toJSON(): Record<string, unknown>;
  /** Releases the leases and presence of this process and closes the connections. */
  close(): Promise<void>;
}

/** Options of the Redis bus (`--redis`, `ServeOptions.redis`). */
export interface RedisBusOptions {
  /** `redis://HOST:PORT/DB` or `rediss://…` (TLS); a user name may be in it, a password only from a file or the environment. */
  url: string;
  /** Redis's password (AUTH); never logged or shown. */
  password?: string;
  /** Frames larger than this are not put on the bus (a warning says so). @default 8388608 (8 MiB) */
  maxFrameBytes?: number;
  /** How long a source's lease lasts unless renewed; an owner that dies is replaced within about this long. @default 3000 */
  leaseMs?: number;
  /** How long a stream's latest frame stays in Redis after its owner stops refreshing it. @default 10000 */
  latestTtlMs?: number;
  /** Prefix of every key and channel. @default 'serverpush:' */
  prefix?: string;
}

/**
 * What a stream's link (stream-link.ts) needs of the bus's connection to Redis (redis-bus.ts
 * implements it): leases, frames, presence and state, per stream.
 */
export interface BusConnection {
  readonly maxFrameBytes: number;
  readonly leaseMs: number;
  readonly logger: Logger;
  /** `performance.now()` of the last reconnection, if any. */
  readonly reconnectedAt: number | undefined;
  /** True when commands can be sent now. */
  readonly writable: boolean;
  /** Calls `listener` each time the connection is (again) ready; returns how to stop. */
  onReady(listener: () => void): () => void;
  /** Publishes a frame and makes it the stream's latest: the subscribers reached, or -1 when `token` no longer holds the lease. */
  publish(stream: string, message: Uint8Array, token: string): Promise<number>;
  /** The stream's latest frame, or undefined. */
  latest(stream: string): Promise<Uint8Array | undefined>;
  /** Takes the lease when nobody holds it. */
  acquire(stream: string, token: string): Promise<boolean>;
  /** Renews the lease (and the latest frame's TTL) if `token` still holds it. */
  renew(stream: string, token: string): Promise<boolean>;
  /** Refreshes the latest frame's TTL (a `local` stream's publisher). */
  keepLatest(stream: string): Promise<void>;
  release(stream: string, token: string): Promise<void>;
  /** Marks this process as having viewers of `stream` for `ttlMs` (0: no longer; -1: only count); answers how many processes have viewers. */
  presence(stream: string, ttlMs: number): Promise<number>;
  /** The source of `stream` is down (`reason`, free of secrets). */
  sourceDown(stream: string, reason: string): Promise<void>;
  /** Why the source of `stream` is down, or undefined while it is up. */
  downReason(stream: string): Promise<string | undefined>;
  /** Tells the owner of `stream` that someone asked for it. */
  demand(stream: string): Promise<void>;
  subscribe(stream: string, listener: (message: Buffer) => void): Promise<void>;
  /** Removes `listener` alone (a link replaced by a reload leaves its successor's). */
  unsubscribe(stream: string, listener: (message: Buffer) => void): Promise<void>;
  /** An error of the bus as it may be logged (no password). */
  describe(error: unknown): string;
}
