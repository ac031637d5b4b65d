import { constants, watch, type BigIntStats, type FSWatcher, type Stats } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { LiveStream } from '../hub/live-stream.ts';
import { contentTypeForFileName, DOCUMENT_TYPES } from '../protocol/content-type.ts';
import { imageCompleteness } from '../protocol/image-check.ts';
import { ServerPushError, isServerPushError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { WarningThrottle } from './frame-feed.ts';
import { Backoff, type Source } from './source.ts';
import { DEFAULT_MAX_PART_BYTES, DEFAULT_SETTLE_MS, DEFAULT_WATCH_MAX_WAIT_MS } from '../defaults.ts';

export interface WatchSourceOptions {
  /**
   * A document whose completeness its bytes cannot show — html, text, svg, json, or an image
   * whose structure is not recognised — is pushed once it has not changed (by its modification
   * time) for this long. Images (JPEG, PNG, GIF, WebP) do not wait: they are pushed the moment
   * they are whole.
   * @default 50
   */
  settleMs?: number;
  /**
   * A document that keeps changing without ever settling is pushed anyway this long after its
   * first unpushed change, from a read that no change overlapped: a writer that never pauses
   * cannot postpone it for ever. An image that stays unfinished this long is skipped with a
   * warning.
   * @default 1000
   */
  maxWaitMs?: number;
  /** Files larger than this are skipped. @default 16777216 (16 MiB) */
  maxPartBytes?: number;
  logger?: Logger;
}

/** One whole read of a file. */
interface Held {
  version: string;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  body: Buffer;
  /** Its writer has since truncated the file or put another in its place: it was finished. */
  finished: boolean;
}

/** What is known of one file name. */
interface Entry {
  /** `ino:size:mtime` of the version last pushed or skipped under this name. */
  done: string;
  /** When a document without a structure check began to wait for quiet (performance.now()), for `maxWaitMs`. */
  waitingSince: number | undefined;
  /** The last read of such a document, held back until it settles. */
  held: Held | undefined;
  /** A look again once the file may have settled. */
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Names remembered in a folder (each one's last pushed version); the oldest are forgotten beyond. */
const MAX_ENTRIES = 4096;

const EXTENSIONS = Object.keys(DOCUMENT_TYPES).map((extension) => `.${extension}`).join(' ');

const identity = (info: BigIntStats): string => `${info.ino}:${info.size}:${info.mtimeNs}`;

/**
 * Pushes each file of a folder that is created or finished writing, in arrival order — or, for a
 * single file path, each new version of that file (a camera overwriting `current.jpg` 30 times a
 * second). A file that appears by rename is complete and goes at once; an image written in place
 * goes as soon as its structure shows it whole; other documents once settled (see
 * {@link WatchSourceOptions}). A half-written file is never pushed.
 *
 * Each change event queues its file name (once: a name already queued keeps its place); one file
 * is read at a time, opened once and read through that descriptor, so a read always sees one
 * version even when the next one is renamed over the name meanwhile — and the read after an event
 * always sees the newest version, so the newest wins and a fast writer cannot starve the stream.
 */
export class WatchSource implements Source {
  private watcher: FSWatcher | undefined;
  private readonly entries = new Map<string, Entry>();
  private readonly pending = new Set<string>();
  private draining: Promise<void> | undefined;
  private readonly folder: string;
  private readonly only: string | undefined;
  private readonly settleMs: number;
  private readonly maxWaitMs: number;
  private readonly maxPartBytes: number;
  private readonly logger: Logger;
  private stream: LiveStream | undefined;
  private warnings: WarningThrottle | undefined;
  /** Identity of the last file pushed, under any name (a temporary name, then the final one). */
  private lastPushed = '';
  private folderIno: bigint | undefined;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private readonly backoff = new Backoff(500, 5000);
  /** The watcher failed and is being set up again. */
  private down = false;
  private stopped = false;

  /** Use {@link WatchSource.create}, which tells a folder from a file. */
  private constructor(private readonly path: string, options: WatchSourceOptions, file: boolean) {
    this.folder = file ? dirname(resolve(path)) : resolve(path);
    this.only = file ? basename(resolve(path)) : undefined;
    this.settleMs = options.settleMs ?? DEFAULT_SETTLE_MS;
    this.maxWaitMs = options.maxWaitMs ?? DEFAULT_WATCH_MAX_WAIT_MS;
    this.maxPartBytes = options.maxPartBytes ?? DEFAULT_MAX_PART_BYTES;
    this.logger = options.logger ?? silentLogger;
  }

  /**
   * Watches a folder, or a file (which may not exist yet if its folder does). Throws
   * `SP_ERR_DIR_NOT_FOUND` when the path (or a missing file's folder) does not exist,
   * `SP_ERR_NOT_A_FILE` for a special file (a FIFO, a device), and `SP_ERR_UNKNOWN_TYPE` for a
   * file whose name has no document extension, whose type therefore cannot be told (it is never
   * read).
   */
  static async create(path: string, options: WatchSourceOptions = {}): Promise<WatchSource> {
    const full = resolve(path);
    let info: Stats | undefined;
    try {
      info = await stat(full);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw new ServerPushError('SP_ERR_UNREADABLE', `cannot watch ${path}: ${(cause as Error).message}`, { cause });
      const folder = await stat(dirname(full)).catch(() => undefined);
      if (!folder?.isDirectory() || contentTypeForFileName(basename(full)) === undefined) {
        throw new ServerPushError('SP_ERR_DIR_NOT_FOUND', `cannot watch ${path}: not found`, { cause });
      }
      // A file that does not exist yet, in a folder that does: watch for it.
    }
    if (info?.isDirectory()) return new WatchSource(path, options, false);
    if (info && !info.isFile()) throw new ServerPushError('SP_ERR_NOT_A_FILE', `cannot watch ${path}: neither a folder nor a regular file`);
    if (contentTypeForFileName(basename(full)) === undefined) {
      throw new ServerPushError('SP_ERR_UNKNOWN_TYPE', `cannot watch ${path}: cannot tell the type of ${basename(full)} from its name; give it one of the extensions ${EXTENSIONS}`);
    }
    return new WatchSource(path, options, true);
  }

  start(stream: LiveStream): void {
    this.stream = stream;
    this.warnings = new WarningThrottle(this.logger, `stream ${stream.name} (watch ${this.path}): `);
    this.listen();
  }

  /** Starts the folder watcher and pushes the newest file; on failure, tries again later. */
  private listen(): void {
    if (this.stopped) return;
    try {
      this.watcher = watch(this.folder, (event, name) => {
        if (typeof name !== 'string') return;
        if (event === 'rename' && name === basename(this.folder)) void this.checkFolder();
        this.changed(name);
      });
    } catch (error) {
      return this.failed(error as Error);
    }
    this.watcher.on('error', (error) => this.failed(error));
    void this.pushNewest();
  }

  /** The watcher failed or the folder went away: the source is down until it can watch again. */
  private failed(error: Error): void {
    if (this.stopped) return;
    this.watcher?.close();
    this.watcher = undefined;
    const delay = this.backoff.next();
    const reason = `watching ${this.path} failed: ${error.message}`;
    if (!this.down) this.logger.error('SP_ERR_SOURCE_FAILED', `stream ${this.stream?.name}: ${reason}; trying again until it works`);
    this.down = true;
    this.stream?.setSource({ up: false, reason });
    clearTimeout(this.retry);
    this.retry = setTimeout(() => this.listen(), delay);
  }

  /**
   * An event named like the watched folder is what inotify reports when the folder itself is
   * removed or moved (and the watcher then sees nothing more): watch the path again.
   */
  private async checkFolder(): Promise<void> {
    const info = await stat(this.folder, { bigint: true }).catch(() => undefined);
    if (info?.isDirectory() && (this.folderIno === undefined || info.ino === this.folderIno)) return;
    this.failed(new Error(info ? 'the folder was replaced' : 'the folder was removed or moved'));
  }

  private wanted(name: string): boolean {
    if (this.only !== undefined) return name === this.only;
    return !name.startsWith('.') && contentTypeForFileName(name) !== undefined;
  }

  /** At start (and after the watcher was set up again): the newest document, so viewers have a picture. */
  private async pushNewest(): Promise<void> {
    let names: string[];
    try {
      this.folderIno = (await stat(this.folder, { bigint: true })).ino;
      names = this.only !== undefined ? [this.only] : (await readdir(this.folder)).filter((name) => this.wanted(name));
    } catch (error) {
      return this.failed(error as Error);
    }
    this.backoff.reset();
    if (this.down) {
      this.down = false;
      this.stream?.setSource({ up: true });
    }
    let newest: { name: string; mtime: number } | undefined;
    for (const name of names) {
      const info = await stat(join(this.folder, name)).catch(() => undefined);
      if (info?.isFile() && (!newest || info.mtimeMs > newest.mtime)) newest = { name, mtime: info.mtimeMs };
    }
    if (newest) this.changed(newest.name);
  }

  /** Queues a look at `name`; one file is read at a time, in the order of their first event. */
  private changed(name: string): void {
    if (this.stopped || !this.wanted(name)) return;
    this.pending.add(name);
    if (!this.draining) this.draining = this.drain();
  }

  private async drain(): Promise<void> {
    await undefined; // after changed() has kept this promise; events of the same tick queue up too
    try {
      for (;;) {
        const name = this.pending.values().next().value;
        if (name === undefined || this.stopped) return;
        this.pending.delete(name);
        try {
          await this.read(name);
        } catch (error) {
          // Never let one file take the source (or the process) down.
          this.warnings?.warn('SP_ERR_UNREADABLE', `skipped ${name}: ${(error as Error).message}`);
        }
      }
    } finally {
      this.draining = undefined;
    }
  }

  private entry(name: string): Entry {
    let entry = this.entries.get(name);
    if (entry) {
      // Most recently used last, so that the oldest names are the ones forgotten.
      this.entries.delete(name);
    } else {
      entry = { done: '', waitingSince: undefined, held: undefined, timer: undefined };
      for (const [old, oldEntry] of this.entries) {
        if (this.entries.size < MAX_ENTRIES) break;
        clearTimeout(oldEntry.timer);
        this.entries.delete(old);
      }
    }
    this.entries.set(name, entry);
    return entry;
  }

  /** Reads the version of `name` there now, by one descriptor, and pushes it if it is ready. */
  private async read(name: string): Promise<void> {
    let handle: FileHandle;
    try {
      // O_NONBLOCK: a FIFO given a document's name must not hang the read.
      handle = await open(join(this.folder, name), constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        // Renamed away or removed; a folder without it forgets it.
        const entry = this.entries.get(name);
        if (entry && this.only === undefined) {
          clearTimeout(entry.timer);
          this.entries.delete(name);
        }
        return;
      }
      throw error;
    }
    try {
      await this.readOpen(name, handle);
    } finally {
      await handle.close();
    }
  }

  private async readOpen(name: string, handle: FileHandle): Promise<void> {
    const info = await handle.stat({ bigint: true });
    if (!info.isFile()) {
      this.warnings?.warn('SP_ERR_NOT_A_FILE', `skipped ${name}: not a regular file`);
      return;
    }
    const entry = this.entry(name);
    const held = entry.held;
    // The writer has moved on from the version held back (put another file in its place, or
    // truncated it): that version was finished.
    if (held && (info.ino !== held.ino || info.size < held.size)) held.finished = true;
    const size = Number(info.size);
    if (size === 0) return; // just truncated or created: its writer is at work
    const version = identity(info);
    if (version === entry.done) return;
    if (version === this.lastPushed) {
      entry.done = version; // pushed under its temporary name a moment ago
      return;
    }
    if (size > this.maxPartBytes) {
      entry.done = version;
      return this.warnings?.warn('SP_ERR_PART_TOO_LARGE', `skipped ${name}: ${size} bytes, over the ${this.maxPartBytes}-byte limit`);
    }
    const body = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const { bytesRead } = await handle.read(body, got, size - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    // Truncated while read: its writer has begun the next version, whose events are coming.
    if (got < size) return;
    const after = await handle.stat({ bigint: true });
    if (identity(after) !== version || after.ctimeNs !== info.ctimeNs) {
      this.pending.add(name); // changed while read: read it again
      return;
    }
    // Rewritten rather than added to: the version held back was finished too.
    if (held && !held.finished && !body.subarray(0, held.body.length).equals(held.body)) held.finished = true;
    const contentType = contentTypeForFileName(name)!;
    const read: Held = { version, ino: info.ino, size: info.size, mtimeNs: info.mtimeNs, body, finished: false };
    const verdict = imageCompleteness(contentType, body);
    if (verdict === 'whole') return this.publish(name, entry, contentType, read);
    const now = performance.now();
    const quietMs = Date.now() - Number(info.mtimeNs / 1_000_000n);
    if (verdict === 'partial') {
      // Its writer is not done: its next change brings the rest. One that never comes is reported.
      if (quietMs < this.maxWaitMs) return this.lookAgain(name, entry, this.maxWaitMs - quietMs);
      entry.done = version;
      return this.warnings?.warn('SP_ERR_INVALID_FRAME', `skipped ${name}: an unfinished ${contentType} (${size} bytes) unchanged for ${Math.round(quietMs)} ms`);
    }
    // No structure to show it whole: push it once it has settled.
    if (quietMs >= this.settleMs) return this.publish(name, entry, contentType, read);
    entry.waitingSince ??= now;
    const waitedMs = now - entry.waitingSince;
    if (waitedMs >= this.maxWaitMs && entry.held?.finished) {
      // A writer that never pauses: push its last version known to be finished.
      this.publish(name, entry, contentType, entry.held);
      entry.waitingSince = now;
    }
    entry.held = read;
    this.lookAgain(name, entry, waitedMs < this.maxWaitMs ? Math.min(this.settleMs - quietMs, this.maxWaitMs - waitedMs) : this.settleMs - quietMs);
  }

  /** Pushes a version read from `name`. */
  private publish(name: string, entry: Entry, contentType: string, read: Held): void {
    entry.done = read.version;
    entry.held = undefined;
    entry.waitingSince = undefined;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    if (this.stopped || !this.stream) return;
    this.lastPushed = read.version;
    try {
      this.stream.push({ contentType, body: read.body, timestamp: Number(read.mtimeNs / 1000n) / 1000 });
    } catch (error) {
      this.warnings?.warn(isServerPushError(error) ? error.code : 'SP_ERR_INVALID_FRAME', `skipped ${name}: ${(error as Error).message}`);
    }
  }

  /** Reads `name` again after `ms` (unless an event comes first, which reads it at once). */
  private lookAgain(name: string, entry: Entry, ms: number): void {
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      this.changed(name);
    }, Math.max(1, Math.ceil(ms)));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    this.watcher?.close();
    this.pending.clear();
    for (const entry of this.entries.values()) clearTimeout(entry.timer);
    await this.draining;
  }
}
