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
 * A part encoded once for every subscriber of a stream. The same buffers are written to each:
 * `head` (full header block), `body`, and the tails that follow the body.
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
}

export function encodePart(framing: MultipartFraming, part: LivePart, seq: number): EncodedPart {
  const timestamp = part.timestamp ?? Date.now();
  const nextHead = encodePartHeaders({ contentType: part.contentType });
  const eagerTail = new Uint8Array(framing.delimiter.length + nextHead.length);
  eagerTail.set(framing.delimiter, 0);
  eagerTail.set(nextHead, framing.delimiter.length);
  return Object.freeze({
    seq,
    contentType: part.contentType,
    body: part.body,
    timestamp,
    head: encodePartHeaders({ contentType: part.contentType, contentLength: part.body.length, timestamp }),
    tail: framing.delimiter,
    eagerTail,
  });
}
