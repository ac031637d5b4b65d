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
}

/** What a stream shows and where it comes from. */
export type StreamSpec = CommonStreamOptions & (
  /** A folder; per client (the original design) or, with `sync`, one show for all. */
  | { type: 'slideshow'; dir: string; intervalMs?: number; loop?: boolean; sync?: boolean }
  /** A folder (each new file) or one file (each new version). */
  | { type: 'watch'; path: string; settleMs?: number }
  /** Bytes from standard input: concatenated JPEGs or a multipart stream. */
  | { type: 'stdin'; format?: PipeFormat }
  /** Bytes from a command's standard output; restarted with backoff when it exits. */
  | { type: 'exec'; command: string; format?: PipeFormat; restartDelayMs?: number }
  /**
   * Another server's multipart/x-mixed-replace stream. Credentials (answered by HTTP Basic or
   * Digest when the upstream asks) come from `user:password@` in `url`, or from `username` with
   * `password` or `passwordFile` (a file holding the password, without one final line break).
   */
  | { type: 'relay'; url: string; idleTimeoutMs?: number; upstreamStallMs?: number; retryDelayMs?: number; headers?: Record<string, string>; username?: string; password?: string; passwordFile?: string }
  /** Frames your program pushes with `server.live(name).push(part)`. */
  | { type: 'push' }
);

export type StreamType = StreamSpec['type'];

export const STREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface SpecContext {
  logger: Logger;
}
