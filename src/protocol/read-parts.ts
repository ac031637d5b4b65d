import { multipartBoundary } from './content-type.ts';
import { MultipartParser, type MultipartLimits } from './parser.ts';
import type { MultipartPart } from './part.ts';

/**
 * Bytes to read parts from: a web `ReadableStream`, a fetch `Response` (its body), or any
 * `AsyncIterable<Uint8Array>` — a Node `Readable` such as an `http.IncomingMessage` is one, since
 * Buffers are Uint8Arrays.
 */
export type ByteSource = ReadableStream<Uint8Array> | Response | AsyncIterable<Uint8Array>;

/** Options of {@link readParts}: the parser's limits, the boundary and an abort signal. */
export interface ReadPartsOptions extends MultipartLimits {
  /**
   * The boundary, as declared in the stream's Content-Type. Required unless the source is a
   * `Response`, whose Content-Type gives it (and must then be multipart with a boundary).
   */
  boundary?: string;
  /** Stops reading, releases the source and rejects with the signal's reason when aborted. */
  signal?: AbortSignal;
}

function isResponse(source: ByteSource): source is Response {
  return 'headers' in source && 'body' in source && typeof (source as Response).headers.get === 'function';
}

function isReadableStream(source: ByteSource): source is ReadableStream<Uint8Array> {
  return typeof (source as ReadableStream<Uint8Array>).getReader === 'function';
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError(`readParts needs chunks of bytes, got ${typeof chunk === 'string' ? 'a string (a Node stream with setEncoding?)' : typeof chunk}`);
}

/** A uniform pull interface over a ReadableStream or an async iterator. */
interface Pull {
  next(): Promise<IteratorResult<unknown>>;
  release(reason: unknown): void;
}

function pullFrom(source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>): Pull {
  if (isReadableStream(source)) {
    const reader = source.getReader();
    return { next: () => reader.read() as Promise<IteratorResult<unknown>>, release: (reason) => void reader.cancel(reason).catch(() => {}) };
  }
  const iterator = source[Symbol.asyncIterator]();
  const destroy = (source as { destroy?: (error?: Error) => void }).destroy;
  return {
    next: () => iterator.next(),
    // A Node Readable is destroyed at once, even with a read pending; other iterators are asked to return.
    release: () => (typeof destroy === 'function' ? destroy.call(source) : void iterator.return?.()?.catch(() => {})),
  };
}

/**
 * Reads the parts of a multipart stream as they complete. Each part is yielded as soon as it is
 * complete (see {@link MultipartParser}); stopping the loop early (`break`) releases the source.
 * Ends after the closing delimiter or when the source ends. Throws the parser's coded errors
 * (`SP_ERR_INCOMPLETE_PART` when the source ends inside a part), the source's own errors, and
 * the signal's reason when it is aborted.
 */
export async function* readParts(source: ByteSource, options: ReadPartsOptions = {}): AsyncGenerator<MultipartPart, void, undefined> {
  const { boundary, signal, ...limits } = options;
  let stream: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;
  let declared = boundary;
  if (isResponse(source)) {
    declared ??= multipartBoundary(source.headers.get('content-type'));
    if (source.body === null) return;
    stream = source.body;
  } else {
    stream = source;
  }
  if (declared === undefined) throw new TypeError('readParts needs options.boundary unless the source is a Response');
  const parser = new MultipartParser(declared, limits);
  signal?.throwIfAborted();
  const pull = pullFrom(stream);
  let finished = false;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => {});
  try {
    while (!parser.done) {
      const result = await (signal ? Promise.race([pull.next(), aborted]) : pull.next());
      if (result.done) {
        finished = true;
        yield* parser.end();
        return;
      }
      yield* parser.push(toBytes(result.value));
    }
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    if (!finished) pull.release(signal?.aborted ? signal.reason : undefined);
  }
}
