import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename } from 'node:path';
import type { MultipartFraming } from '../protocol/encoder.ts';
import { formatTimestamp } from '../protocol/encoder.ts';
import type { FolderCatalog, FolderDocument } from '../sources/folder-catalog.ts';
import { playSlideshow } from '../sources/slideshow.ts';
import { refusal, type Refusal, type Servable, type Session, type StreamRequest } from '../adapters/serve.ts';
import { sendBody, sendRefusal, typeFilter, type Endpoint, type EndpointContext } from './http-util.ts';
import { contentTypeForFileName, isImageType } from '../protocol/content-type.ts';

export interface SlideshowEndpointOptions {
  intervalMs: number;
  loop: boolean;
  stallTimeoutMs: number;
  /** See NodeMultipartResponse.start(). */
  maxUnsentBytes?: number;
}

/** A folder played to each client on its own clock: the original design. */
export class SlideshowEndpoint implements Endpoint, Servable {
  readonly kind = 'slideshow';
  readonly live = false;
  private readonly plays = new Set<Promise<unknown>>();

  constructor(
    readonly name: string,
    private readonly catalog: FolderCatalog,
    private readonly framing: MultipartFraming,
    private readonly options: SlideshowEndpointOptions,
    private readonly ctx: EndpointContext,
  ) {}

  get servable(): Servable {
    return this;
  }

  get boundary(): string {
    return this.framing.boundary;
  }

  get stallTimeoutMs(): number {
    return this.options.stallTimeoutMs;
  }

  get maxUnsentBytes(): number | undefined {
    return this.options.maxUnsentBytes;
  }

  /** The folder's name. */
  get title(): string {
    return basename(this.catalog.root);
  }

  get loop(): boolean {
    return this.options.loop;
  }

  private noDocuments(): Refusal {
    return refusal(503, 'SP_ERR_NO_DOCUMENTS', 'the folder holds no document that can be served yet', Math.ceil(this.options.intervalMs / 1000));
  }

  /** `?only=image|text|TYPE` filters the documents; 503 while the folder holds none to show. */
  async open(request: StreamRequest): Promise<Session | Refusal> {
    const accept = typeFilter(request.query.get('only'));
    const first = await this.catalog.next(undefined, false, accept);
    if (!first) return this.noDocuments();
    return {
      play: async (viewer) => {
        const client = this.ctx.nextClientId();
        const played = playSlideshow(this.catalog, this.framing, viewer, first, {
          intervalMs: this.options.intervalMs,
          loop: this.options.loop,
          stop: this.ctx.stop,
          ...(accept ? { accept } : {}),
          onPart: (document: FolderDocument, sentAt: number) => {
            this.ctx.emitPart({ client, stream: this.name, name: document.name, contentType: document.contentType, bytes: document.body.length, sentAt });
          },
        });
        this.plays.add(played);
        try {
          await played;
        } finally {
          this.plays.delete(played);
        }
      },
    };
  }

  /** The document a new client would see first. */
  async snapshot(_req: IncomingMessage, res: ServerResponse): Promise<void> {
    const first = await this.catalog.next(undefined, false);
    if (!first) return sendRefusal(res, this.noDocuments());
    sendBody(res, 200, first.contentType, first.body, { 'X-Timestamp': formatTimestamp(Date.now()) });
  }

  previewQuery(): string {
    return '?only=image';
  }

  /** True when the folder holds documents (of those `accept` lets through) an `<img>` cannot show. */
  async hasNonImages(accept?: (contentType: string) => boolean): Promise<boolean> {
    return (await this.contentTypes(accept)).some((type) => !isImageType(type));
  }

  /** True when the folder holds an image document (the index page's `<img>` gets those only). */
  async previewsAsImage(): Promise<boolean> {
    return (await this.contentTypes()).some(isImageType);
  }

  private async contentTypes(accept?: (contentType: string) => boolean): Promise<string[]> {
    const types = (await this.catalog.list()).map((name) => contentTypeForFileName(name) ?? 'application/octet-stream');
    return accept ? types.filter(accept) : types;
  }

  toJSON(): Record<string, unknown> {
    return { type: 'slideshow', dir: this.catalog.root, intervalSeconds: this.options.intervalMs / 1000, loop: this.options.loop, folder: { ...this.catalog.counters } };
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.plays]);
  }
}
