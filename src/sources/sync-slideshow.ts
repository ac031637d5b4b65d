import type { LiveStream } from '../hub/live-stream.ts';
import { FolderCatalog } from './folder-catalog.ts';
import { isServerPushError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import type { Source } from './source.ts';

export interface SyncSlideshowOptions {
  intervalMs: number;
  maxPartBytes?: number;
  logger?: Logger;
}

/**
 * One slideshow shared by every viewer (signage): the documents of a folder, in file-name order,
 * looping, one per interval on one clock. Every viewer sees the same document at the same moment;
 * a viewer who arrives gets the current document at once.
 */
export class SyncSlideshowSource implements Source {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private catalog: FolderCatalog | undefined;

  constructor(private readonly dir: string, private readonly options: SyncSlideshowOptions) {}

  start(stream: LiveStream): void {
    const logger = this.options.logger ?? silentLogger;
    let current: string | undefined;
    let due = performance.now();
    const step = async () => {
      if (this.stopped) return;
      try {
        this.catalog ??= await FolderCatalog.open(this.dir, { framing: stream.framing, logger, ...(this.options.maxPartBytes ? { maxPartBytes: this.options.maxPartBytes } : {}) });
        const document = await this.catalog.next(current, true);
        if (document) {
          current = document.name;
          stream.push({ contentType: document.contentType, body: document.body });
        } else {
          stream.setSource({ up: false, reason: `no document in ${this.dir}` });
        }
      } catch (error) {
        const reason = (error as Error).message;
        stream.setSource({ up: false, reason });
        logger.warn(isServerPushError(error) ? error.code : 'SP_ERR_SOURCE_FAILED', `stream ${stream.name}: ${reason}`);
      }
      if (this.stopped) return;
      due += this.options.intervalMs;
      const now = performance.now();
      if (due < now) due = now + this.options.intervalMs;
      this.timer = setTimeout(() => void step(), due - now);
    };
    void step();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
