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
export type { Source } from './sources/source.ts';
export type { RedisBusOptions } from './bus/bus-types.ts';
export type { PipeFormat } from './sources/frame-feed.ts';
export { liveHandler, serveNode } from './adapters/node-http.ts';
export { createStreamLogger } from './log.ts';
export { authenticatingFetch, type AuthenticatingFetch, type AuthenticatingFetchOptions, type AuthScheme, type Credentials } from './client/http-auth.ts';
export { redactUrl } from './redact.ts';
