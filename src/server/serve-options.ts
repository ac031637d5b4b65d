/** What {@link createServer} (server.ts) takes, and what its server emits. */
import type { Logger } from '../log.ts';
import type { CorsOrigins } from './viewer-routes.ts';
import type { EndpointResources } from './endpoints.ts';
import type { StreamSpec } from './stream-spec.ts';
import type { ServerLimits } from './limits.ts';
import type { AccessOptions } from './access/policy.ts';
import type { TlsFiles } from './tls.ts';
import type { RedisBusOptions } from '../bus/bus-types.ts';

/** Options of `createServer`. */
export interface ServeOptions {
  /** Shorthand for a default stream that is a per-client slideshow of this folder. */
  dir?: string;
  /** Named streams; the one named `default` is served at `/stream`, the others at `/stream/NAME`. */
  streams?: Record<string, StreamSpec>;
  /** TCP port; 0 picks a free one. @default 8080 */
  port?: number;
  /** Address to listen on. @default '127.0.0.1' */
  host?: string;
  /**
   * Most connections the kernel queues before the server accepts them (the kernel caps it at
   * `net.core.somaxconn`). Node's 511 overflows when a thousand viewers reconnect at once.
   * @default 4096
   */
  backlog?: number;
  /** `dir` shorthand: time between documents, in milliseconds. @default 5000 */
  intervalMs?: number;
  /** `dir` shorthand: after the last document start again at the first. @default false */
  loop?: boolean;
  /** `dir` shorthand: documents larger than this are skipped. @default 16777216 (16 MiB) */
  maxPartBytes?: number;
  /** `dir` shorthand: a client that has not taken a part for this long is dropped. @default 30000 */
  stallTimeoutMs?: number;
  /** `dir` shorthand: the multipart boundary; random by default (190 bits). */
  boundary?: string;
  /**
   * Serve everything under this path (`/webcam`: `/webcam/stream`, `/webcam/?action=stream`), for a
   * reverse proxy that passes the prefix on. Other paths answer 404. @default '' (the root)
   */
  basePath?: string;
  /** Where warnings and errors go. @default silent */
  logger?: Logger;
  /** The bytes of a stream of type `stdin` (the CLI passes `process.stdin`). */
  stdin?: EndpointResources['stdin'];
  /**
   * Origins allowed to read the streams with fetch and to frame the viewer: `'*'` or a list such as
   * `['https://example.com']`. @default none (same origin only)
   */
  cors?: CorsOrigins;
  /** Viewer limits, session duration, request head size and timeouts (README: Limits). */
  limits?: ServerLimits;
  /** `/readyz`: a source that has sent no frame yet is still ready this long after its start. @default 10000 */
  sourceStartGraceMs?: number;
  /**
   * Who may read what: users (htpasswd), bearer tokens, signed links, address lists, trusted
   * proxies (docs/security.md). @default everything public
   */
  access?: AccessOptions;
  /**
   * Serve HTTPS with this certificate and key (PEM files), offering HTTP/2 by ALPN and HTTP/1.1 on
   * the same port; `reloadTls()` reads them again. Throws `SP_ERR_TLS` for a missing, unreadable
   * or mismatched pair. @default none (plain HTTP)
   */
  tls?: TlsFiles;
  /**
   * Share the live streams with other serverpush processes through Redis (`--redis`): each source
   * runs in one process, every process serves its viewers (docs/scaling.md). Without it no Redis
   * code is loaded.
   */
  redis?: RedisBusOptions;
}

/** One part as it went out, emitted as `'part'` on the server (slideshow streams). */
export interface PartEvent {
  client: number;
  stream: string;
  name: string;
  contentType: string;
  bytes: number;
  /** `Date.now()` when the part's body was handed to the socket. */
  sentAt: number;
}
