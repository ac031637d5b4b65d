import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MultipartFraming } from '../protocol/encoder.ts';
import { formatTimestamp } from '../protocol/encoder.ts';
import type { FolderCatalog, FolderDocument } from '../sources/folder-catalog.ts';
import { playSlideshow } from '../sources/slideshow.ts';
import { NodeMultipartResponse, streamHeaders } from '../adapters/node-http.ts';
import { sendBody, sendError, typeFilter, type Endpoint, type EndpointContext } from './http-util.ts';
import { contentTypeForFileName, isImageType } from '../protocol/content-type.ts';
import { isRawRequest } from '../adapters/negotiation.ts';

export interface SlideshowEndpointOptions {
  intervalMs: number;
  loop: boolean;
  stallTimeoutMs: number;
  /** See NodeMultipartResponse.start(). */
  maxUnsentBytes?: number;
}

/** A folder played to each client on its own clock: the original design. */
export class SlideshowEndpoint implements Endpoint {
  readonly kind = 'slideshow';
  private readonly plays = new Set<Promise<unknown>>();

  constructor(
    readonly name: string,
    private readonly catalog: FolderCatalog,
    private readonly framing: MultipartFraming,
    private readonly options: SlideshowEndpointOptions,
    private readonly ctx: EndpointContext,
  ) {}

  private unavailable(res: ServerResponse): void {
    sendError(res, 503, 'SP_ERR_NO_DOCUMENTS', 'the folder holds no document that can be served yet', { 'Retry-After': String(Math.ceil(this.options.intervalMs / 1000)) });
  }

  async stream(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    if (this.ctx.stop.aborted) return sendError(res, 503, 'SP_ERR_NO_DOCUMENTS', 'the server is shutting down');
    const accept = typeFilter(query.get('only'));
    const first = await this.catalog.next(undefined, false, accept);
    if (!first) return this.unavailable(res);
    const raw = isRawRequest(query);
    if (req.method === 'HEAD') {
      // Node would hold the headers of an endless HEAD response until end(): answer them alone.
      res.writeHead(200, streamHeaders(this.framing.boundary, { raw }));
      res.end();
      return;
    }
    const { counters, logger } = this.ctx;
    const client = this.ctx.nextClientId();
    const sink = new NodeMultipartResponse(req, res, counters);
    counters.clients++;
    counters.clientsTotal++;
    sink.signal.addEventListener('abort', () => { counters.clients--; }, { once: true });
    sink.start(this.framing.boundary, { raw, ...(this.options.maxUnsentBytes !== undefined ? { maxUnsentBytes: this.options.maxUnsentBytes } : {}) });
    const played = playSlideshow(this.catalog, this.framing, sink, first, {
      intervalMs: this.options.intervalMs,
      loop: this.options.loop,
      stallTimeoutMs: this.options.stallTimeoutMs,
      stop: this.ctx.stop,
      ...(accept ? { accept } : {}),
      onPart: (document: FolderDocument, sentAt: number) => {
        counters.partsSent++;
        this.ctx.emitPart({ client, stream: this.name, name: document.name, contentType: document.contentType, bytes: document.body.length, sentAt });
      },
    });
    this.plays.add(played);
    try {
      if ((await played) === 'stalled') {
        counters.droppedClients++;
        logger.warn('SP_ERR_SLOW_CLIENT', `dropped client ${client} (${req.socket.remoteAddress}): it took no data for ${this.options.stallTimeoutMs} ms`);
        sink.destroy('stalled');
      }
    } finally {
      this.plays.delete(played);
    }
  }

  /** The document a new client would see first. */
  async snapshot(_req: IncomingMessage, res: ServerResponse): Promise<void> {
    const first = await this.catalog.next(undefined, false);
    if (!first) return this.unavailable(res);
    sendBody(res, 200, first.contentType, first.body, { 'X-Timestamp': formatTimestamp(Date.now()) });
  }

  async previewQuery(): Promise<string> {
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
