/**
 * Every default of serverpush, once. The library, the server and the CLI all read these; the
 * README's option tables are checked against them by test/defaults.test.ts. Runtime-neutral.
 */

/** Slideshows: time between documents. */
export const DEFAULT_INTERVAL_MS = 5000;
/** Documents and frames larger than this are refused. 16 MiB. */
export const DEFAULT_MAX_PART_BYTES = 16 * 1024 * 1024;
/** A client whose socket takes nothing for this long is dropped (slideshows and live streams). */
export const DEFAULT_STALL_TIMEOUT_MS = 30_000;
/** Live streams (LiveStream, liveHandler, liveResponse): the same as every other stream. */
export const DEFAULT_LIVE_STALL_TIMEOUT_MS = DEFAULT_STALL_TIMEOUT_MS;
/** Connections the kernel queues before the server accepts them (capped by net.core.somaxconn). */
export const DEFAULT_BACKLOG = 4096;
/** TCP port of the server. */
export const DEFAULT_PORT = 8080;
/** Address the server listens on. */
export const DEFAULT_HOST = '127.0.0.1';
/** `?fps=N` may ask for at most this many parts per second. */
export const MAX_FPS = 1000;
/** Relay: stop pulling after nobody has watched for this long. */
export const DEFAULT_RELAY_IDLE_MS = 30_000;
/** Relay: an upstream that sends no part for this long is dropped and retried. */
export const DEFAULT_UPSTREAM_STALL_MS = 10_000;
/** Relay and exec: first delay before a retry or restart; doubles up to {@link MAX_RETRY_DELAY_MS}. */
export const DEFAULT_RETRY_DELAY_MS = 500;
/** Relay and exec: the longest delay between retries. */
export const MAX_RETRY_DELAY_MS = 30_000;
/** Exec: a command that ran this long before it exited restarts with the first delay again. */
export const RETRY_RESET_AFTER_MS = 30_000;
/**
 * Exec and stdin: no frame for this long and the source is `stalled` (a command is killed and
 * restarted). The relay's {@link DEFAULT_UPSTREAM_STALL_MS} for the other sources. Watch: off by default.
 */
export const DEFAULT_SOURCE_STALL_MS = 10_000;
/** Exec `onDemand`: stop the command after nobody has watched for this long (as the relay's idle). */
export const DEFAULT_EXEC_IDLE_MS = 30_000;
/** Exec: a command asked to stop (SIGTERM) that is still there after this long is killed (SIGKILL). */
export const KILL_GRACE_MS = 2000;
/**
 * Snapshots of a streaming source (exec, stdin, relay, poll): a frame older than this is not served
 * as the current picture; the snapshot waits for a fresh one (see {@link DEFAULT_SNAPSHOT_WAIT_MS}).
 */
export const DEFAULT_SNAPSHOT_MAX_AGE_MS = 5000;
/**
 * Snapshots and new viewers of a paused source (an idle relay or on-demand command): how long they
 * wait for a fresh frame before the answer is a 503.
 */
export const DEFAULT_SNAPSHOT_WAIT_MS = 5000;
/** Poll: time between requests for the snapshot. */
export const DEFAULT_POLL_INTERVAL_MS = 1000;
/** `serverpush get --wait`: retry a 503 with Retry-After for at most this long. */
export const DEFAULT_GET_WAIT_MS = 30_000;
/** Watch: a file written in place is pushed once it has not changed for this long (and is whole). */
export const DEFAULT_SETTLE_MS = 50;
/** Watch: a document rewritten without ever pausing goes out at the latest this long after its first change. */
export const DEFAULT_WATCH_MAX_WAIT_MS = 1000;
/** `server.close()`: connections still open after this long are cut. */
export const DEFAULT_CLOSE_GRACE_MS = 2000;
/**
 * HTTPS/HTTP/2: streams one HTTP/2 connection may have open at once (each is a viewer or a
 * request); the 101st waits. RFC 9113 recommends no fewer than 100; Node's own default is no limit.
 */
export const HTTP2_MAX_CONCURRENT_STREAMS = 100;
/**
 * HTTPS: a connection with no request in flight (an HTTP/1.1 keep-alive connection between
 * requests, an HTTP/2 connection with no open stream) is closed after this long, as Node's plain
 * HTTP server does with its `keepAliveTimeout`. A stream in progress, however quiet, keeps it.
 */
export const IDLE_CONNECTION_TIMEOUT_MS = 5000;
/** `serverpush get`: fail when the response or the next part takes longer. */
export const DEFAULT_GET_TIMEOUT_MS = 30_000;

/**
 * What the kernel may keep queued, not yet sent, for one viewer's socket, by default: 128 KiB
 * (TCP_NOTSENT_LOWAT). A viewer that stops reading then costs the server's kernel about that much
 * instead of `net.ipv4.tcp_wmem`'s maximum (4 MiB here), and it is seen as busy (and skipped)
 * after ~128 KiB instead of after megabytes, which the kernel would first have had to allocate
 * while every other viewer waited (decision 0011). 0 leaves the kernel's default.
 */
export const DEFAULT_MAX_UNSENT_BYTES = 128 * 1024;

/** Limits (issue 13): most stream viewers in all; 0 = no limit. */
export const DEFAULT_MAX_VIEWERS = 0;
/** Most viewers of one stream; 0 = no limit. */
export const DEFAULT_MAX_VIEWERS_PER_STREAM = 0;
/** Most viewers from one client address (answered 429); 0 = no limit. */
export const DEFAULT_MAX_VIEWERS_PER_CLIENT = 0;
/** Longest a viewer's session may last before the server ends it (reason `limit`); 0 = no limit. */
export const DEFAULT_MAX_SESSION_MS = 0;
/** `Retry-After` of a request refused by a viewer limit, in seconds. */
export const LIMIT_RETRY_AFTER_SECONDS = 5;
/** Largest request head (request line and headers) in bytes; larger is answered 431. */
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
/** A client must send its whole request head within this time (slowloris). */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
/** A client must send its whole request (head and body) within this time; never cuts a response. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** `/readyz`: a source that has sent no frame yet is still ready for this long after its start. */
export const DEFAULT_SOURCE_START_GRACE_MS = 10_000;
/** Access control: failed authentications from one address within the window that lock it out. */
export const DEFAULT_AUTH_FAILURE_LIMIT = 10;
/** Access control: the window failed authentications are counted in. */
export const DEFAULT_AUTH_FAILURE_WINDOW_MS = 60_000;
/** Access control: how long an address that failed too often gets 429. */
export const DEFAULT_AUTH_LOCKOUT_MS = 300_000;
/** Access control: most client addresses whose failures are remembered at once (older ones are forgotten first). */
export const DEFAULT_AUTH_TRACKED_ADDRESSES = 10_000;
/** Access control: a verified user name and password is remembered this long (a bcrypt check costs ~100 ms). */
export const DEFAULT_CREDENTIAL_CACHE_MS = 60_000;
/** Access control: password checks (bcrypt, in a worker thread) that may wait at once; more get 503 `SP_ERR_AUTH_BUSY`. */
export const DEFAULT_BCRYPT_QUEUE = 64;
/** Redis bus (`--redis`): frames larger than this are not put on the bus (served by their own process only). 8 MiB. */
export const DEFAULT_REDIS_MAX_FRAME_BYTES = 8 * 1024 * 1024;
/** Redis bus: a source's lease lasts this long unless renewed; an owner that dies is replaced within about this long. */
export const DEFAULT_REDIS_LEASE_MS = 3000;
/** Redis bus: a stream's latest frame stays in Redis this long after its owner stops refreshing it. */
export const DEFAULT_REDIS_LATEST_TTL_MS = 10_000;
/** Redis bus: how often each stream renews or tries its lease and its presence. */
export const BUS_TICK_MS = 500;
/** Redis bus: a process stays subscribed to a stream this long after its last viewer left. */
export const BUS_SUBSCRIPTION_LINGER_MS = 10_000;
/** Redis bus: a request for a stream not yet subscribed waits at most this long for its latest frame. */
export const BUS_PREPARE_WAIT_MS = 1000;
