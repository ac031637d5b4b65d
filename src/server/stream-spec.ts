import type { Logger } from '../log.ts';
import type { PipeFormat } from '../sources/frame-feed.ts';

/** Options every stream takes. */
export interface CommonStreamOptions {
  /** Parts (documents, frames) larger than this are refused. @default 16777216 (16 MiB) */
  maxPartBytes?: number;
  /** A viewer whose socket takes no data for this long is dropped. @default 30000 */
  stallTimeoutMs?: number;
  /** Bytes the kernel may queue unsent for one viewer's socket (TCP_NOTSENT_LOWAT); 0: the kernel's default. @default 131072 */
  maxUnsentBytes?: number;
  /** Live streams: drop a frame identical to the previous one. @default false */
  dropDuplicates?: boolean;
  /** Live streams: while the source is down, new viewers get the last frame instead of 503. @default false */
  serveLastWhenDown?: boolean;
  /** The multipart boundary; random by default. */
  boundary?: string;
  /**
   * Live streams: a snapshot older than this is not served as the current picture (the request
   * waits up to 5 s for a fresh frame, then gets 503 `SP_ERR_STALE_FRAME`); 0: no bound.
   * @default 5000 for exec, stdin, relay and poll (poll: at least twice its interval); 0 for the others
   */
  snapshotMaxAgeMs?: number;
}

/** What a stream shows and where it comes from. */
export type StreamSpec = CommonStreamOptions & (
  /** A folder; per client (the original design) or, with `sync`, one show for all. */
  | { type: 'slideshow'; dir: string; intervalMs?: number; loop?: boolean; sync?: boolean }
  /** A folder (each new file) or one file (each new version). */
  /** `sourceStallMs`: no new version for this long and the stream is `stalled` (default 0: never). */
  | { type: 'watch'; path: string; settleMs?: number; sourceStallMs?: number }
  /**
   * Bytes from standard input: concatenated JPEGs or a multipart stream. `sourceStallMs`: no frame
   * for this long and the stream is `stalled` (default 10000; 0 never). `exitOnEof`: the CLI exits
   * (0) when the input ends, after the viewers got the last frame.
   */
  | { type: 'stdin'; format?: PipeFormat; sourceStallMs?: number; exitOnEof?: boolean }
  /**
   * Bytes from a command's standard output; restarted with backoff when it exits, killed and
   * restarted when it sends no frame for `sourceStallMs` (default 10000; 0 never). `onDemand`: run
   * only while someone watches, stopped `idleTimeoutMs` (default 30000) after the last viewer left.
   */
  | { type: 'exec'; command: string; format?: PipeFormat; restartDelayMs?: number; sourceStallMs?: number; onDemand?: boolean; idleTimeoutMs?: number }
  /**
   * Another server's multipart/x-mixed-replace stream. Credentials (answered by HTTP Basic or
   * Digest when the upstream asks) come from `user:password@` in `url`, or from `username` with
   * `password` or `passwordFile` (a file holding the password, without one final line break).
   */
  | { type: 'relay'; url: string; idleTimeoutMs?: number; upstreamStallMs?: number; retryDelayMs?: number; headers?: Record<string, string>; username?: string; password?: string; passwordFile?: string; upstreamBoundary?: string }
  /**
   * A still image fetched every `intervalMs` (default 1000) and served as a live stream; conditional
   * requests, credentials as the relay's, backoff on errors.
   */
  | { type: 'poll'; url: string; intervalMs?: number; retryDelayMs?: number; headers?: Record<string, string>; username?: string; password?: string; passwordFile?: string }
  /** Frames your program pushes with `server.live(name).push(part)`. */
  | { type: 'push' }
);

export type StreamType = StreamSpec['type'];

export const STREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface SpecContext {
  logger: Logger;
}
