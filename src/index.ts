/**
 * `serverpush`: the Node server (createServer, its sources and Node adapters) and everything of
 * the runtime-neutral entry `serverpush/fetch`.
 */
export * from './web.ts';
export { createServer, type ServerPushServer, type ServeOptions, type PartEvent } from './server/server.ts';
export type { StreamSpec, CommonStreamOptions, StreamType } from './server/stream-spec.ts';
export { SyncSlideshowSource, type SyncSlideshowOptions } from './sources/sync-slideshow.ts';
export { WatchSource, type WatchSourceOptions } from './sources/watch.ts';
export { ReadableSource, CommandSource, type PipeSourceOptions, type CommandSourceOptions } from './sources/pipe.ts';
export { RelaySource, type RelaySourceOptions } from './sources/relay.ts';
export { PollSource, type PollSourceOptions } from './sources/poll.ts';
export { StallWatch, StallCheckedSource, type StallWatchOptions } from './sources/stall.ts';
export type { Source } from './sources/source.ts';
export type { RedisBusOptions } from './bus/bus-types.ts';
export type { PipeFormat } from './sources/frame-feed.ts';
export { liveHandler, serveNode } from './adapters/node-http.ts';
export { createStreamLogger } from './log.ts';
export { authenticatingFetch, type AuthenticatingFetch, type AuthenticatingFetchOptions, type AuthScheme, type Credentials } from './client/http-auth.ts';
export { redactUrl } from './redact.ts';
export { createJsonLogger, type JsonLoggerOptions } from './log-json.ts';
export type { ServerLimits } from './server/limits.ts';
export type { ServerMetrics } from './server/metrics.ts';
export type { StreamChanges } from './server/stream-set.ts';
export { createAccessPolicy, AccessPolicy, type AccessOptions, type StreamAccess, type ReadList, type Principal, type Resource } from './server/access/policy.ts';
export { accessAdmission } from './server/access/guard.ts';
export { signLink, verifyLink, linkTarget, type SignLinkOptions } from './server/access/signed-link.ts';
export { createToken, hashToken, type TokenEntry } from './server/access/tokens.ts';
export { updateHtpasswd } from './server/access/htpasswd.ts';
export type { JwtOptions } from './server/access/jwt.ts';
