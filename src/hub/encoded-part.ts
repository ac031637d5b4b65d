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
 * A part encoded once for every subscriber of a stream. All its byte strings are views of one
 * buffer, `head body delimiter next-head`, so that what a viewer gets for each part is a single
 * contiguous range: one write per viewer, the same bytes for each.
 */
export interface EncodedPart {
  readonly seq: number;
  readonly contentType: string;
  readonly body: Uint8Array;
  readonly timestamp: number;
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
  readonly standard: Uint8Array;
  /** Eager framing, what follows the previous part's `eagerTail`: `body eagerTail`. */
  readonly eager: Uint8Array;
}

/** Encodes a part; its body is copied once into the part's buffer. */
export function encodePart(framing: MultipartFraming, part: LivePart, seq: number): EncodedPart {
  const timestamp = part.timestamp ?? Date.now();
  const head = encodePartHeaders({ contentType: part.contentType, contentLength: part.body.length, timestamp });
  const nextHead = encodePartHeaders({ contentType: part.contentType });
  const { delimiter } = framing;
  const bodyAt = head.length;
  const tailAt = bodyAt + part.body.length;
  const nextAt = tailAt + delimiter.length;
  const wire = new Uint8Array(nextAt + nextHead.length);
  wire.set(head, 0);
  wire.set(part.body, bodyAt);
  wire.set(delimiter, tailAt);
  wire.set(nextHead, nextAt);
  return Object.freeze({
    seq,
    contentType: part.contentType,
    body: wire.subarray(bodyAt, tailAt),
    timestamp,
    head: wire.subarray(0, bodyAt),
    tail: wire.subarray(tailAt, nextAt),
    eagerTail: wire.subarray(tailAt),
    standard: wire.subarray(0, nextAt),
    eager: wire.subarray(bodyAt),
  });
}
