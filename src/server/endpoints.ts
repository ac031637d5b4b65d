import { createBoundary } from '../protocol/boundary.ts';
import { MultipartFraming } from '../protocol/encoder.ts';
import { FolderCatalog } from '../sources/folder-catalog.ts';
import { LiveStream } from '../hub/live-stream.ts';
import { SyncSlideshowSource } from '../sources/sync-slideshow.ts';
import { WatchSource } from '../sources/watch.ts';
import { CommandSource, ReadableSource } from '../sources/pipe.ts';
import { RelaySource } from '../sources/relay.ts';
import { PollSource } from '../sources/poll.ts';
import { StallCheckedSource } from '../sources/stall.ts';
import type { Source } from '../sources/source.ts';
import { readFile } from 'node:fs/promises';
import { ServerPushError } from '../errors.ts';
import type { Endpoint, EndpointContext } from './http-util.ts';
import type { Logger } from '../log.ts';
import { DEFAULT_INTERVAL_MS, DEFAULT_MAX_PART_BYTES, DEFAULT_POLL_INTERVAL_MS, DEFAULT_SNAPSHOT_MAX_AGE_MS, DEFAULT_STALL_TIMEOUT_MS } from '../defaults.ts';
import { SlideshowEndpoint } from './slideshow-endpoint.ts';
import { LiveEndpoint } from './live-endpoint.ts';
import { STREAM_NAME, type StreamSpec } from './stream-spec.ts';
import type { StreamBus } from '../bus/bus-types.ts';

/** What the process around the server lends it: a logger, and standard input for a `stdin` stream. */
export interface EndpointResources {
  logger: Logger;
  /** The bytes of a `stdin` stream (the CLI passes `process.stdin`). */
  stdin?: (AsyncIterable<Uint8Array> & { destroy?: () => void }) | undefined;
  /** The bus live streams are shared on (`--redis`), if any. */
  bus?: StreamBus | undefined;
}

/**
 * Builds the endpoint of one stream from its spec. Throws coded errors for a bad spec
 * (`SP_ERR_CONFIG`) or a missing folder (`SP_ERR_DIR_NOT_FOUND`, `SP_ERR_NOT_A_DIRECTORY`).
 * The source of a live stream starts when `start()` is called (when the server listens).
 */
export async function createEndpoint(name: string, spec: StreamSpec, ctx: EndpointContext, resources: EndpointResources): Promise<{ endpoint: Endpoint; start(): void }> {
  if (!STREAM_NAME.test(name)) throw new ServerPushError('SP_ERR_CONFIG', `invalid stream name ${JSON.stringify(name)}: use 1-64 of [A-Za-z0-9._-], starting with a letter or digit`);
  const maxPartBytes = spec.maxPartBytes ?? DEFAULT_MAX_PART_BYTES;
  const stallTimeoutMs = spec.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  const { logger } = resources;
  if (spec.type === 'slideshow' && !spec.sync) {
    const framing = new MultipartFraming(spec.boundary ?? createBoundary());
    const catalog = await FolderCatalog.open(spec.dir, { framing, maxPartBytes, logger });
    const endpoint = new SlideshowEndpoint(name, catalog, framing, { intervalMs: spec.intervalMs ?? DEFAULT_INTERVAL_MS, loop: spec.loop ?? false, stallTimeoutMs, ...(spec.maxUnsentBytes !== undefined ? { maxUnsentBytes: spec.maxUnsentBytes } : {}) }, ctx);
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
  const own = await createSource(name, spec, live, resources);
  // With a bus (--redis), the stream's link to it runs the source, in this process or another.
  const source = resources.bus?.link(name, live, spec.type === 'push' || spec.type === 'stdin' ? 'local' : 'leased', own, () => createSource(name, spec, live, resources)) ?? own;
  const endpoint = new LiveEndpoint(name, live, source, { snapshotMaxAgeMs: spec.snapshotMaxAgeMs ?? defaultSnapshotMaxAge(spec) });
  return { endpoint, start: () => endpoint.startSource() };
}

/** The source of a live stream (undefined for a `push` stream): made anew each time a bus lease is taken again. */
export async function createSource(name: string, spec: StreamSpec, live: LiveStream, resources: EndpointResources): Promise<Source | undefined> {
  const maxPartBytes = spec.maxPartBytes ?? DEFAULT_MAX_PART_BYTES;
  const { logger } = resources;
  let source: Source | undefined;
  switch (spec.type) {
    case 'slideshow':
      await FolderCatalog.open(spec.dir, { framing: live.framing }); // fail early on a bad folder
      source = new SyncSlideshowSource(spec.dir, { intervalMs: spec.intervalMs ?? DEFAULT_INTERVAL_MS, maxPartBytes, logger });
      break;
    case 'watch':
      source = await WatchSource.create(spec.path, { maxPartBytes, logger, ...(spec.settleMs !== undefined ? { settleMs: spec.settleMs } : {}) });
      if (spec.sourceStallMs) source = new StallCheckedSource(source, { timeoutMs: spec.sourceStallMs, label: `watch ${spec.path}`, logger, statusKey: 'watch' });
      break;
    case 'stdin':
      if (!resources.stdin) throw new ServerPushError('SP_ERR_CONFIG', `stream ${name}: a stdin stream needs the input to read (ServeOptions.stdin)`);
      source = new ReadableSource(resources.stdin, { maxPartBytes, logger, ...(spec.format ? { format: spec.format } : {}), ...(spec.sourceStallMs !== undefined ? { stallTimeoutMs: spec.sourceStallMs } : {}) });
      break;
    case 'exec':
      source = new CommandSource(spec.command, {
        maxPartBytes,
        logger,
        ...(spec.format ? { format: spec.format } : {}),
        ...(spec.restartDelayMs !== undefined ? { restartDelayMs: spec.restartDelayMs } : {}),
        ...(spec.sourceStallMs !== undefined ? { stallTimeoutMs: spec.sourceStallMs } : {}),
        ...(spec.onDemand ? { onDemand: true } : {}),
        ...(spec.idleTimeoutMs !== undefined ? { idleTimeoutMs: spec.idleTimeoutMs } : {}),
      });
      break;
    case 'poll':
      source = await upstreamSource(name, spec, (credentials) => new PollSource(spec.url, {
        maxPartBytes,
        logger,
        ...(spec.intervalMs !== undefined ? { intervalMs: spec.intervalMs } : {}),
        ...(spec.retryDelayMs !== undefined ? { retryDelayMs: spec.retryDelayMs } : {}),
        ...(spec.headers ? { headers: spec.headers } : {}),
        ...credentials,
      }));
      break;
    case 'relay':
      source = await upstreamSource(name, spec, (credentials) => new RelaySource(spec.url, {
        maxPartBytes,
        logger,
        ...(spec.idleTimeoutMs !== undefined ? { idleTimeoutMs: spec.idleTimeoutMs } : {}),
        ...(spec.upstreamStallMs !== undefined ? { stallTimeoutMs: spec.upstreamStallMs } : {}),
        ...(spec.retryDelayMs !== undefined ? { retryDelayMs: spec.retryDelayMs } : {}),
        ...(spec.headers ? { headers: spec.headers } : {}),
        ...credentials,
        ...(spec.upstreamBoundary !== undefined ? { boundary: spec.upstreamBoundary } : {}),
      }));
      break;
    case 'push':
      source = undefined;
      break;
  }
  return source;
}

/**
 * How old a snapshot may be by default: a source that streams (exec, stdin, relay, poll) makes
 * frames all the time, so an old one means it paused or hangs; a watched file or pushed frames are
 * current until replaced (no bound).
 */
function defaultSnapshotMaxAge(spec: StreamSpec): number {
  switch (spec.type) {
    case 'exec':
    case 'stdin':
    case 'relay':
      return DEFAULT_SNAPSHOT_MAX_AGE_MS;
    case 'poll':
      return Math.max(DEFAULT_SNAPSHOT_MAX_AGE_MS, 2 * (spec.intervalMs ?? DEFAULT_POLL_INTERVAL_MS));
    default:
      return 0;
  }
}

/**
 * The source of a stream that reads an upstream URL (relay, poll), made by `make` with the
 * credentials of its spec (the password from its file, if given); a coded error of the source
 * names the stream.
 */
async function upstreamSource<S>(name: string, spec: { username?: string | undefined; password?: string | undefined; passwordFile?: string | undefined }, make: (credentials: { username?: string; password?: string }) => S): Promise<S> {
  const password = spec.passwordFile === undefined ? spec.password : await readPasswordFile(name, spec.passwordFile, spec.password);
  try {
    return make({ ...(spec.username !== undefined ? { username: spec.username } : {}), ...(password !== undefined ? { password } : {}) });
  } catch (error) {
    if (error instanceof ServerPushError) throw new ServerPushError(error.code, `stream ${name}: ${error.message}`);
    throw error;
  }
}

/**
 * A relay's password from a file (so that it is neither in argv, where `ps` shows it, nor in the
 * config file): the whole file, without one final line break. Throws `SP_ERR_CONFIG`.
 */
async function readPasswordFile(name: string, file: string, inline: string | undefined): Promise<string> {
  if (inline !== undefined) throw new ServerPushError('SP_ERR_CONFIG', `stream ${name}: give password or passwordFile, not both`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ServerPushError('SP_ERR_CONFIG', `stream ${name}: cannot read the password file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const password = text.replace(/\r?\n$/, '');
  if (password === '') throw new ServerPushError('SP_ERR_CONFIG', `stream ${name}: the password file ${file} is empty`);
  return password;
}
