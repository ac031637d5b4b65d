import { assertValidBoundary } from './boundary.ts';
import { indexOfBytes, utf8 } from './bytes.ts';
import { ServerPushError } from '../errors.ts';

/** The headers serverpush writes before a part's body. */
export interface PartHeaders {
  /** The part's Content-Type, e.g. `image/jpeg`. Required by ffmpeg and GStreamer. */
  contentType: string;
  /** Exact body length in bytes. Omit when it is not known yet (eager headers of a live frame). */
  contentLength?: number;
  /** When the part was made, in milliseconds since the epoch; written as `X-Timestamp`. */
  timestamp?: number;
  /** Further header lines, written in order after the standard ones. */
  extra?: ReadonlyArray<readonly [name: string, value: string]>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * `X-Timestamp` as µStreamer and mjpg-streamer write it: seconds since the epoch, a dot, and six
 * digits of microseconds.
 */
export function formatTimestamp(milliseconds: number): string {
  const micros = Math.round(milliseconds * 1000);
  const seconds = Math.floor(micros / 1e6);
  return `${seconds}.${String(micros - seconds * 1e6).padStart(6, '0')}`;
}

function headerLine(name: string, value: string): string {
  if (!TOKEN.test(name)) throw new ServerPushError('SP_ERR_INVALID_PART', `invalid part header name ${JSON.stringify(name)}`);
  // A CR or LF in a value would let a document inject headers or end the part early.
  if (!FIELD_VALUE.test(value)) throw new ServerPushError('SP_ERR_INVALID_PART', `invalid value for part header ${name}`);
  return `${name}: ${value}\r\n`;
}

/**
 * The header block of one part, ending with the blank line. Header names are written exactly as
 * `Content-Type: ` (one space), which GStreamer's multipartdemux requires.
 */
export function encodePartHeaders(headers: PartHeaders): Uint8Array {
  let text = headerLine('Content-Type', headers.contentType);
  if (headers.contentLength !== undefined) {
    if (!Number.isSafeInteger(headers.contentLength) || headers.contentLength < 0) {
      throw new ServerPushError('SP_ERR_INVALID_PART', `invalid part Content-Length ${headers.contentLength}`);
    }
    text += headerLine('Content-Length', String(headers.contentLength));
  }
  if (headers.timestamp !== undefined) text += headerLine('X-Timestamp', formatTimestamp(headers.timestamp));
  for (const [name, value] of headers.extra ?? []) text += headerLine(name, value);
  return utf8(`${text}\r\n`);
}

/**
 * The fixed byte strings of one stream's framing. The body of a stream is
 * `opening` headers body `delimiter` headers body `delimiter` … body `close`: every part is
 * followed at once by a delimiter, so a client sees it end the moment it is sent.
 */
export class MultipartFraming {
  readonly boundary: string;
  /** `--B CRLF`: the first bytes of the body (no preamble; ffmpeg and GStreamer need that). */
  readonly opening: Uint8Array;
  /** `CRLF --B CRLF`: ends one part and opens the next. */
  readonly delimiter: Uint8Array;
  /** `CRLF --B-- CRLF`: ends the last part and the stream. */
  readonly close: Uint8Array;
  private readonly dashBoundary: Uint8Array;

  constructor(boundary: string) {
    assertValidBoundary(boundary);
    this.boundary = boundary;
    this.opening = utf8(`--${boundary}\r\n`);
    this.delimiter = utf8(`\r\n--${boundary}\r\n`);
    this.close = utf8(`\r\n--${boundary}--\r\n`);
    this.dashBoundary = utf8(`--${boundary}`);
  }

  /**
   * True when `body` contains `--B` anywhere. RFC 2046 only forbids `CRLF--B`, but tolerant
   * parsers (cameras' clients among them) also split on a bare-LF or unprefixed delimiter, so
   * any occurrence is refused.
   */
  containsDelimiter(body: Uint8Array): boolean {
    return indexOfBytes(body, this.dashBoundary) !== -1;
  }

  /** Throws `SP_ERR_BOUNDARY_IN_BODY` when `body` contains the boundary delimiter. */
  assertSafeBody(body: Uint8Array): void {
    if (this.containsDelimiter(body)) {
      throw new ServerPushError('SP_ERR_BOUNDARY_IN_BODY', `part body contains the stream's boundary delimiter --${this.boundary}`);
    }
  }
}
