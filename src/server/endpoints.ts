import { createBoundary } from '../protocol/boundary.ts';
import { MultipartFraming } from '../protocol/encoder.ts';
import { FolderCatalog } from '../sources/folder-catalog.ts';
import { LiveStream } from '../hub/live-stream.ts';
import { SyncSlideshowSource } from '../sources/sync-slideshow.ts';
import { WatchSource } from '../sources/watch.ts';
import { CommandSource, ReadableSource } from '../sources/pipe.ts';
import { RelaySource } from '../sources/relay.ts';
import type { Source } from '../sources/source.ts';
import { ServerPushError } from '../errors.ts';
import type { Endpoint, EndpointContext } from './http-util.ts';
import { SlideshowEndpoint } from './slideshow-endpoint.ts';
import { LiveEndpoint } from './live-endpoint.ts';
import { STREAM_NAME, type StreamSpec } from './stream-spec.ts';

const MiB16 = 16 * 1024 * 1024;

/**
 * Builds the endpoint of one stream from its spec. Throws coded errors for a bad spec
 * (`SP_ERR_CONFIG`) or a missing folder (`SP_ERR_DIR_NOT_FOUND`, `SP_ERR_NOT_A_DIRECTORY`).
 * Sources are started by {@link startEndpoint}.
 */
export async function createEndpoint(name: string, spec: StreamSpec, ctx: EndpointContext): Promise<{ endpoint: Endpoint; start(): void }> {
  if (!STREAM_NAME.test(name)) throw new ServerPushError('SP_ERR_CONFIG', `invalid stream name ${JSON.stringify(name)}: use 1-64 of [A-Za-z0-9._-], starting with a letter or digit`);
  const maxPartBytes = spec.maxPartBytes ?? MiB16;
  const stallTimeoutMs = spec.stallTimeoutMs ?? 30_000;
  const { logger } = ctx;
  if (spec.type === 'slideshow' && !spec.sync) {
    const framing = new MultipartFraming(spec.boundary ?? createBoundary());
    const catalog = await FolderCatalog.open(spec.dir, { framing, maxPartBytes, logger });
    const endpoint = new SlideshowEndpoint(name, catalog, framing, { intervalMs: spec.intervalMs ?? 5000, loop: spec.loop ?? false, stallTimeoutMs, ...(spec.maxUnsentBytes !== undefined ? { maxUnsentBytes: spec.maxUnsentBytes } : {}) }, ctx);
    return { endpoint, start() {} };
  }
  const live = new LiveStream({
    name,
    maxPartBytes,
    stallTimeoutMs,
    ...(spec.maxUnsentBytes !== undefined ? { maxUnsentBytes: spec.maxUnsentBytes } : {}),
    logger,
    dropDuplicates: spec.dropDuplicates ?? false,
    serveLastWhenDown: spec.serveLastWhenDown ?? false,
    ...(spec.boundary ? { boundary: spec.boundary } : {}),
  });
  let source: Source | undefined;
  switch (spec.type) {
    case 'slideshow':
      await FolderCatalog.open(spec.dir, { framing: live.framing }); // fail early on a bad folder
      source = new SyncSlideshowSource(spec.dir, { intervalMs: spec.intervalMs ?? 5000, maxPartBytes, logger });
      break;
    case 'watch':
      source = await WatchSource.create(spec.path, { maxPartBytes, logger, ...(spec.settleMs !== undefined ? { settleMs: spec.settleMs } : {}) });
      break;
    case 'stdin':
      source = new ReadableSource(process.stdin, { maxPartBytes, logger, ...(spec.format ? { format: spec.format } : {}) });
      break;
    case 'exec':
      source = new CommandSource(spec.command, { maxPartBytes, logger, ...(spec.format ? { format: spec.format } : {}), ...(spec.restartDelayMs !== undefined ? { restartDelayMs: spec.restartDelayMs } : {}) });
      break;
    case 'relay': {
      let url: URL;
      try {
        url = new URL(spec.url);
      } catch {
        throw new ServerPushError('SP_ERR_CONFIG', `stream ${name}: invalid relay URL ${JSON.stringify(spec.url)}`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ServerPushError('SP_ERR_CONFIG', `stream ${name}: relay URL must be http or https`);
      source = new RelaySource(url.href, {
        maxPartBytes,
        logger,
        ...(spec.idleTimeoutMs !== undefined ? { idleTimeoutMs: spec.idleTimeoutMs } : {}),
        ...(spec.upstreamStallMs !== undefined ? { stallTimeoutMs: spec.upstreamStallMs } : {}),
        ...(spec.retryDelayMs !== undefined ? { retryDelayMs: spec.retryDelayMs } : {}),
        ...(spec.headers ? { headers: spec.headers } : {}),
      });
      break;
    }
    case 'push':
      source = undefined;
      break;
  }
  const endpoint = new LiveEndpoint(name, live, source, ctx);
  return { endpoint, start: () => source?.start(live) };
}
