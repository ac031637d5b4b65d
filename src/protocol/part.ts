import type { PartHeaderFields } from './headers.ts';

/** One part of a multipart stream, as received. */
export interface MultipartPart {
  /** Header fields by lower-case name, e.g. `headers['content-type']`. */
  readonly headers: PartHeaderFields;
  /**
   * The body as one array: a view into the chunk it arrived in (no copy) when it lies in one
   * chunk; joined from {@link chunks} on first use (and kept) when it spans several.
   */
  readonly body: Uint8Array;
  /**
   * The body as it arrived: views into the chunks that were pushed, in order, never copied.
   * `new Blob(part.chunks)` or a `writev` of them handle a large body without joining it.
   * Do not reuse or modify a chunk after pushing it.
   */
  readonly chunks: readonly Uint8Array[];
  /** The body's length in bytes. */
  readonly size: number;
}

/** A received part; its body is joined from its chunks only when asked for. */
export class ReceivedPart implements MultipartPart {
  readonly headers: PartHeaderFields;
  readonly chunks: readonly Uint8Array[];
  readonly size: number;
  private cached: Uint8Array | undefined;

  constructor(headers: PartHeaderFields, chunks: readonly Uint8Array[], size: number) {
    this.headers = headers;
    this.chunks = chunks;
    this.size = size;
  }

  get body(): Uint8Array {
    if (this.cached === undefined) {
      if (this.chunks.length === 1) {
        this.cached = this.chunks[0]!;
      } else {
        const body = new Uint8Array(this.size);
        let offset = 0;
        for (const chunk of this.chunks) {
          body.set(chunk, offset);
          offset += chunk.length;
        }
        this.cached = body;
      }
    }
    return this.cached;
  }
}
