import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat, readdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { LiveStream } from '../hub/live-stream.ts';
import { contentTypeForFileName } from '../protocol/content-type.ts';
import { imageProblem } from '../protocol/image-check.ts';
import { ServerPushError, isServerPushError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { WarningThrottle } from './frame-feed.ts';
import type { Source } from './source.ts';

export interface WatchSourceOptions {
  /**
   * A file is pushed once it has not changed for this long (and, for an image, once it is whole).
   * @default 50
   */
  settleMs?: number;
  /** Files larger than this are skipped. @default 16777216 (16 MiB) */
  maxPartBytes?: number;
  logger?: Logger;
}

interface Seen {
  signature: string;
  timer?: ReturnType<typeof setTimeout> | undefined;
}

/**
 * Pushes each file of a folder that is created or finished writing, in arrival order — or, for a
 * single file path, each new version of that file (a camera overwriting `latest.jpg`). Both
 * write-then-rename and in-place writes work: a file is pushed only once it has settled, and an
 * image only once it is whole, so a half-written file is never pushed.
 */
export class WatchSource implements Source {
  private watcher: FSWatcher | undefined;
  private readonly seen = new Map<string, Seen>();
  private readonly folder: string;
  private readonly only: string | undefined;
  private stopped = false;

  /** Use {@link WatchSource.create}, which tells a folder from a file. */
  private constructor(private readonly path: string, private readonly options: WatchSourceOptions, file: boolean) {
    this.folder = file ? dirname(resolve(path)) : resolve(path);
    this.only = file ? basename(path) : undefined;
  }

  /** Throws `SP_ERR_DIR_NOT_FOUND` when the path does not exist (a single file's folder must). */
  static async create(path: string, options: WatchSourceOptions = {}): Promise<WatchSource> {
    let isFile = false;
    try {
      isFile = (await stat(path)).isFile();
    } catch (cause) {
      try {
        await stat(dirname(resolve(path)));
      } catch {
        throw new ServerPushError('SP_ERR_DIR_NOT_FOUND', `cannot watch ${path}: not found`, { cause });
      }
      // A file that does not exist yet, in a folder that does: watch for it.
      isFile = contentTypeForFileName(basename(path)) !== undefined;
    }
    return new WatchSource(path, options, isFile);
  }

  start(stream: LiveStream): void {
    const logger = this.options.logger ?? silentLogger;
    const warnings = new WarningThrottle(logger, `stream ${stream.name} (watch ${this.path}): `);
    this.watcher = watch(this.folder, (_event, name) => {
      if (typeof name === 'string') this.changed(stream, name, warnings);
    });
    this.watcher.on('error', (error) => {
      stream.setSource({ up: false, reason: `watching ${this.path} failed: ${error.message}` });
      logger.error('SP_ERR_SOURCE_FAILED', `stream ${stream.name}: watching ${this.path} failed: ${error.message}`);
    });
    void this.pushNewest(stream, warnings);
  }

  private wanted(name: string): boolean {
    if (this.only !== undefined) return name === this.only;
    return !name.startsWith('.') && contentTypeForFileName(name) !== undefined;
  }

  /** At start: the newest existing document, so the first viewer has a picture. */
  private async pushNewest(stream: LiveStream, warnings: WarningThrottle): Promise<void> {
    let names: string[];
    try {
      names = this.only !== undefined ? [this.only] : (await readdir(this.folder)).filter((n) => this.wanted(n));
    } catch {
      return;
    }
    let newest: { name: string; mtime: number } | undefined;
    for (const name of names) {
      const info = await stat(join(this.folder, name)).catch(() => undefined);
      if (info?.isFile() && (!newest || info.mtimeMs > newest.mtime)) newest = { name, mtime: info.mtimeMs };
    }
    if (newest && !stream.latest) await this.check(stream, newest.name, warnings);
  }

  private changed(stream: LiveStream, name: string, warnings: WarningThrottle): void {
    if (this.stopped || !this.wanted(name)) return;
    const entry = this.seen.get(name) ?? { signature: '' };
    this.seen.set(name, entry);
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => void this.check(stream, name, warnings), this.options.settleMs ?? 50);
  }

  private async check(stream: LiveStream, name: string, warnings: WarningThrottle): Promise<void> {
    if (this.stopped) return;
    const path = join(this.folder, name);
    const entry = this.seen.get(name) ?? { signature: '' };
    this.seen.set(name, entry);
    entry.timer = undefined;
    const before = await stat(path).catch(() => undefined);
    if (!before?.isFile() || before.size === 0) return;
    const signature = `${before.ino}:${before.size}:${before.mtimeMs}`;
    if (signature === entry.signature) return;
    if (before.size > (this.options.maxPartBytes ?? 16 * 1024 * 1024)) {
      entry.signature = signature;
      return warnings.warn('SP_ERR_PART_TOO_LARGE', `skipped ${name}: ${before.size} bytes`);
    }
    const body = await readFile(path).catch(() => undefined);
    const after = await stat(path).catch(() => undefined);
    // Still being written: wait for the next change event.
    if (!body || !after || `${after.ino}:${after.size}:${after.mtimeMs}` !== signature || body.length !== before.size) return;
    const contentType = contentTypeForFileName(name)!;
    if (imageProblem(contentType, body)) return; // a half-written image: its writer is not done
    entry.signature = signature;
    try {
      stream.push({ contentType, body, timestamp: after.mtimeMs });
    } catch (error) {
      warnings.warn(isServerPushError(error) ? error.code : 'SP_ERR_INVALID_FRAME', `skipped ${name}: ${(error as Error).message}`);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.close();
    for (const entry of this.seen.values()) clearTimeout(entry.timer);
  }
}
