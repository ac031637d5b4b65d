export { createServer, ServerPushServer, type ServeOptions, type PartEvent } from './server/server.ts';
export { FolderCatalog, compareFileNames, type FolderDocument, type FolderCatalogOptions } from './sources/folder-catalog.ts';
export { playSlideshow, type PartSink, type SlideshowOptions, type SlideshowEnd } from './sources/slideshow.ts';
export { NodeMultipartResponse, streamHeaders } from './adapters/node-http.ts';
export { ServerPushError, LimitExceededError, isServerPushError, type ServerPushErrorCode } from './errors.ts';
export { fetchParts, HttpStatusError, type FetchPartsOptions } from './client/fetch-parts.ts';
export { createStreamLogger, silentLogger, type Logger } from './log.ts';
export * from './protocol/index.ts';
