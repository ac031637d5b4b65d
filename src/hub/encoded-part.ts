import { encodePartHeaders, type MultipartFraming } from '../protocol/encoder.ts';

/** A part as a source hands it to a stream. */
export interface LivePart {
  /** e.g. `image/jpeg`. */
  contentType: string;
  body: Uint8Array;
  /** When the part was made, ms since the epoch. @default Date.now() at push */
  timestamp?: number;
}

/**
 * Bodies up to this size are copied into the part's one buffer, so that each viewer gets a single
 * write; larger ones are written as they are, head, body and tail in one writev: the copy would
 * save little per write and leave megabytes a second for the garbage collector (decision 0009).
 */
export const CONTIGUOUS_MAX_BODY = 64 * 1024;

/**
 * A part encoded once for every subscriber of a stream. The same buffers are written to each.
 * For bodies up to {@link CONTIGUOUS_MAX_BODY} all its byte strings are views of one buffer,
 * `head body delimiter next-head`, so what a viewer gets for each part is one contiguous range.
 */
export interface EncodedPart {
  readonly seq: number;
  readonly contentType: string;
  readonly body: Uint8Array;
  readonly timestamp: number;
  /** `performance.now()` when the stream accepted the part (for the frame age at the socket write). */
  readonly arrivedAt: number;
  /** Content-Type, Content-Length, X-Timestamp, blank line. */
  readonly head: Uint8Array;
  /** Standard framing: the delimiter alone. */
  readonly tail: Uint8Array;
  /**
   * Eager framing: the delimiter and the *next* part's header block, guessed from this part:
   * its Content-Type, no Content-Length (the next frame's size is not known yet).
   */
  readonly eagerTail: Uint8Array;
  /** Standard framing, what follows the opening or the previous part: `head body tail`. */
  readonly standard: readonly Uint8Array[];
  /** Eager framing, what follows the previous part's `eagerTail`: `body eagerTail`. */
  readonly eager: readonly Uint8Array[];
}

/** Encodes a part (see {@link CONTIGUOUS_MAX_BODY} for when its body is copied). */
export function encodePart(framing: MultipartFraming, part: LivePart, seq: number): EncodedPart {
  const timestamp = part.timestamp ?? Date.now();
  const head = encodePartHeaders({ contentType: part.contentType, contentLength: part.body.length, timestamp });
  const nextHead = encodePartHeaders({ contentType: part.contentType });
  const { delimiter } = framing;
  const common = { seq, contentType: part.contentType, timestamp, arrivedAt: performance.now() };
  if (part.body.length > CONTIGUOUS_MAX_BODY) {
    const eagerTail = new Uint8Array(delimiter.length + nextHead.length);
    eagerTail.set(delimiter, 0);
    eagerTail.set(nextHead, delimiter.length);
    return Object.freeze({ ...common, body: part.body, head, tail: delimiter, eagerTail, standard: [head, part.body, delimiter], eager: [part.body, eagerTail] });
  }
  const bodyAt = head.length;
  const tailAt = bodyAt + part.body.length;
  const nextAt = tailAt + delimiter.length;
  const wire = new Uint8Array(nextAt + nextHead.length);
  wire.set(head, 0);
  wire.set(part.body, bodyAt);
  wire.set(delimiter, tailAt);
  wire.set(nextHead, nextAt);
  return Object.freeze({
    ...common,
    body: wire.subarray(bodyAt, tailAt),
    head: wire.subarray(0, bodyAt),
    tail: wire.subarray(tailAt, nextAt),
    eagerTail: wire.subarray(tailAt),
    standard: [wire.subarray(0, nextAt)],
    eager: [wire.subarray(bodyAt)],
  });
}
