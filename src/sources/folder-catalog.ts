import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, sep } from 'node:path';
import { contentTypeForFileName } from '../protocol/content-type.ts';
import type { MultipartFraming } from '../protocol/encoder.ts';
import { ServerPushError, type ServerPushErrorCode } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { DEFAULT_MAX_PART_BYTES } from '../defaults.ts';

/** One servable document of a folder, read and checked. Shared by every client; never mutate. */
export interface FolderDocument {
  readonly name: string;
  readonly contentType: string;
  readonly body: Uint8Array;
}

export interface FolderCatalogOptions {
  /** Documents larger than this are skipped with `SP_ERR_PART_TOO_LARGE`. @default 16777216 (16 MiB) */
  maxPartBytes?: number;
  /** Framing of the streams the documents go into; a document containing its boundary is refused. */
  framing: MultipartFraming;
  /**
   * How long a directory listing or a file's check stays fresh, in milliseconds. Within this window
   * the many clients due at about the same moment share one `readdir` and one `stat` per file.
   * @default 100
   */
  freshnessMs?: number;
  /** Upper bound of cached document bytes; the least recently used are evicted. @default 268435456 (256 MiB) */
  cacheBytes?: number;
  logger?: Logger;
}

type Checked = { document: FolderDocument } | { skip: ServerPushErrorCode };

interface CacheEntry {
  signature: string;
  checkedAt: number;
  result: Checked;
}

const collator = new Intl.Collator('en', { numeric: true });

/** File-name order: natural (`2.jpg` before `10.jpg`), ties broken by code units so it is total. */
export function compareFileNames(a: string, b: string): number {
  return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

function signatureOf(stats: Stats): string {
  return `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`;
}

/**
 * The documents of one folder, as the folder is now. Listings and file contents are cached and
 * revalidated (by inode, size and times), and concurrent requests share one read, so a thousand
 * clients do not read one file a thousand times. Every skipped file is logged once per version.
 */
export class FolderCatalog {
  readonly root: string;
  /** How many times a file was read and a listing taken; shows the cache at work in `/status`. */
  readonly counters = { fileReads: 0, listings: 0 };
  private readonly options: Required<Omit<FolderCatalogOptions, 'framing' | 'logger'>>;
  private readonly framing: MultipartFraming;
  private readonly logger: Logger;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly loading = new Map<string, Promise<Checked>>();
  private cachedBytes = 0;
  private listing: { names: string[]; at: number } | undefined;
  private listingInFlight: Promise<string[]> | undefined;

  private constructor(root: string, options: FolderCatalogOptions) {
    this.root = root;
    this.framing = options.framing;
    this.logger = options.logger ?? silentLogger;
    this.options = {
      maxPartBytes: options.maxPartBytes ?? DEFAULT_MAX_PART_BYTES,
      freshnessMs: options.freshnessMs ?? 100,
      cacheBytes: options.cacheBytes ?? 256 * 1024 * 1024,
    };
  }

  /**
   * Opens a folder. Throws `SP_ERR_DIR_NOT_FOUND` or `SP_ERR_NOT_A_DIRECTORY` when `dir` is not an
   * existing folder.
   */
  static async open(dir: string, options: FolderCatalogOptions): Promise<FolderCatalog> {
    let root: string;
    try {
      root = await realpath(dir);
    } catch (cause) {
      throw new ServerPushError('SP_ERR_DIR_NOT_FOUND', `folder not found: ${dir}`, { cause });
    }
    if (!(await stat(root)).isDirectory()) {
      throw new ServerPushError('SP_ERR_NOT_A_DIRECTORY', `not a folder: ${dir}`);
    }
    return new FolderCatalog(root, options);
  }

  /** Names of the candidate documents (served extension, not hidden), in file-name order. */
  async list(): Promise<string[]> {
    if (this.listing && performance.now() - this.listing.at < this.options.freshnessMs) return this.listing.names;
    this.listingInFlight ??= this.readListing().finally(() => { this.listingInFlight = undefined; });
    return this.listingInFlight;
  }

  private async readListing(): Promise<string[]> {
    let names: string[];
    this.counters.listings++;
    try {
      names = (await readdir(this.root))
        .filter((name) => !name.startsWith('.') && contentTypeForFileName(name) !== undefined)
        .sort(compareFileNames);
    } catch (error) {
      // The folder was removed or became unreadable while serving: serve nothing until it is back.
      if (this.listing?.names.length !== 0) {
        this.logger.warn('SP_ERR_UNREADABLE', `cannot list folder ${this.root}: ${(error as Error).message}`);
      }
      names = [];
    }
    const present = new Set(names);
    for (const name of this.cache.keys()) if (!present.has(name)) this.evict(name);
    this.listing = { names, at: performance.now() };
    return names;
  }

  /**
   * The first servable document after `after` in file-name order (the first of all when `after` is
   * undefined), skipping files that cannot be served. With `loop`, wraps around to the start.
   * Resolves `undefined` when there is none. `accept` narrows the documents by content type.
   */
  async next(after: string | undefined, loop: boolean, accept?: (contentType: string) => boolean): Promise<FolderDocument | undefined> {
    const names = await this.list();
    const start = after === undefined ? 0 : names.findIndex((name) => compareFileNames(name, after) > 0);
    const order = start === -1 ? (loop ? names : []) : loop ? [...names.slice(start), ...names.slice(0, start)] : names.slice(start);
    for (const name of order) {
      if (accept && !accept(contentTypeForFileName(name)!)) continue;
      const checked = await this.load(name);
      if ('document' in checked) return checked.document;
    }
    return undefined;
  }

  /** Reads and checks one document, from the cache while its file is unchanged. */
  load(name: string): Promise<Checked> {
    const entry = this.cache.get(name);
    if (entry && performance.now() - entry.checkedAt < this.options.freshnessMs) return Promise.resolve(entry.result);
    let pending = this.loading.get(name);
    if (!pending) {
      pending = this.revalidate(name, entry).finally(() => this.loading.delete(name));
      this.loading.set(name, pending);
    }
    return pending;
  }

  private async revalidate(name: string, entry: CacheEntry | undefined): Promise<Checked> {
    const path = join(this.root, name);
    let target = path;
    let stats: Stats;
    try {
      stats = await lstat(path);
      if (stats.isSymbolicLink()) {
        target = await realpath(path);
        if (!target.startsWith(this.root + sep)) return this.remember(name, `link:${target}`, { skip: 'SP_ERR_OUTSIDE_ROOT' }, `${name} links outside the folder (to ${target})`);
        stats = await stat(target);
      }
    } catch (error) {
      return this.failure(name, error);
    }
    const signature = `${target}:${signatureOf(stats)}`;
    if (entry?.signature === signature) {
      entry.checkedAt = performance.now();
      this.touch(name, entry);
      return entry.result;
    }
    if (!stats.isFile()) return this.remember(name, signature, { skip: 'SP_ERR_NOT_A_FILE' }, `${name} is not a regular file`);
    if (stats.size > this.options.maxPartBytes) return this.tooLarge(name, signature, stats.size);
    let body: Uint8Array;
    try {
      this.counters.fileReads++;
      body = await readFile(target);
    } catch (error) {
      return this.failure(name, error);
    }
    // The file may have changed between stat and read; judge the bytes actually read.
    if (body.length === 0) return this.remember(name, signature, { skip: 'SP_ERR_EMPTY_DOCUMENT' }, `${name} is empty`);
    if (body.length > this.options.maxPartBytes) return this.tooLarge(name, signature, body.length);
    if (this.framing.containsDelimiter(body)) {
      return this.remember(name, signature, { skip: 'SP_ERR_BOUNDARY_IN_BODY' }, `${name} contains the stream's boundary delimiter; refused so that no client gets a corrupt stream`);
    }
    const document: FolderDocument = Object.freeze({ name, contentType: contentTypeForFileName(name)!, body });
    return this.remember(name, signature, { document });
  }

  private tooLarge(name: string, signature: string, size: number): Checked {
    return this.remember(name, signature, { skip: 'SP_ERR_PART_TOO_LARGE' }, `${name} is ${size} bytes, over the ${this.options.maxPartBytes}-byte part limit`);
  }

  private failure(name: string, error: unknown): Checked {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      // Vanished between listing and reading: an ordinary race, logged once per name.
      return this.remember(name, 'vanished', { skip: 'SP_ERR_VANISHED' }, `${name} vanished before it could be read`);
    }
    if (code === 'EISDIR') return this.remember(name, 'dir', { skip: 'SP_ERR_NOT_A_FILE' }, `${name} is not a regular file`);
    return this.remember(name, `error:${code}`, { skip: 'SP_ERR_UNREADABLE' }, `${name} cannot be read: ${(error as Error).message}`);
  }

  private remember(name: string, signature: string, result: Checked, warning?: string): Checked {
    const previous = this.cache.get(name);
    if (warning && 'skip' in result && previous?.signature !== signature) {
      this.logger.warn(result.skip, `skipped ${warning}`);
    }
    if (previous) this.evict(name);
    const entry: CacheEntry = { signature, checkedAt: performance.now(), result };
    this.cache.set(name, entry);
    if ('document' in result) {
      this.cachedBytes += result.document.body.length;
      for (const [oldest, { result: cached }] of this.cache) {
        if (this.cachedBytes <= this.options.cacheBytes || oldest === name) break;
        if ('document' in cached) this.evict(oldest);
      }
    }
    return result;
  }

  private touch(name: string, entry: CacheEntry): void {
    this.cache.delete(name);
    this.cache.set(name, entry);
  }

  private evict(name: string): void {
    const entry = this.cache.get(name);
    if (!entry) return;
    if ('document' in entry.result) this.cachedBytes -= entry.result.document.body.length;
    this.cache.delete(name);
  }
}
