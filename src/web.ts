/**
 * `serverpush/fetch`: everything that runs in any JavaScript runtime (Node, Bun, Deno, workers,
 * browsers) — the live stream hub, its web `Response` adapter, the serving path, the protocol
 * encoder and parser, and the client. It loads no `node:` module (checked by
 * test/public-api.test.ts); the root entry `serverpush` adds the Node server, its sources and
 * adapters.
 */
export { LiveStream, type LiveStreamOptions, type LiveStreamEvents, type SubscribeOptions, type SourceState, type SourceStateName } from './hub/live-stream.ts';
export { Viewer, type MultipartSink, type ViewerEnd, type ViewerOptions, type WriteTotals } from './hub/viewer.ts';
export type { Subscriber } from './hub/subscriber.ts';
export type { LivePart, EncodedPart } from './hub/encoded-part.ts';
export { liveResponse, serveResponse } from './adapters/fetch.ts';
export {
  serveStream, liveServable, streamHeaders, refusal,
  type Servable, type Session, type StreamRequest, type Refusal, type ServeHooks, type ServeObserver,
  type ViewerSession, type ResponseWriter, type Served, type LiveViewerOptions, type StreamHeaderOptions,
} from './adapters/serve.ts';
export { fetchParts, HttpStatusError, type FetchPartsOptions } from './client/fetch-parts.ts';
export { ServerPushError, LimitExceededError, isServerPushError, type ServerPushErrorCode } from './errors.ts';
export { silentLogger, type Logger } from './log.ts';
export * from './defaults.ts';
export * from './protocol/index.ts';
