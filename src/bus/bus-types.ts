/**
 * The seam between the server and a bus that carries live streams between serverpush processes
 * (issue 14; docs/decisions/0020-redis-bus.md). Types only: the server imports this file whether
 * or not a bus is configured, and loads the Redis code itself (src/bus/redis-bus.ts) only with
 * `ServeOptions.redis`.
 */
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
