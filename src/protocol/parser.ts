import { LimitExceededError, ServerPushError } from '../errors.ts';
import { createSearch, utf8, type ByteSearch } from './bytes.ts';
import { contentLengthOf, parseHeaderBlock, type PartHeaderFields } from './headers.ts';

/** One part of a multipart stream, as received. */
export interface MultipartPart {
  /** Header fields by lower-case name, e.g. `headers['content-type']`. */
  headers: PartHeaderFields;
  /**
   * The body. It may be a view into a chunk you pushed (no copy): do not reuse or modify a chunk
   * after pushing it.
   */
  body: Uint8Array;
}

/** Limits of {@link MultipartParser}; exceeding one throws a {@link LimitExceededError}. */
export interface MultipartLimits {
  /**
   * Most bytes of one part's header block. Exceeding it throws `SP_ERR_HEADERS_TOO_LARGE`.
   * @default 8192 (8 KiB)
   */
  maxHeaderBytes?: number;
  /**
   * Most bytes of one part's body, checked against Content-Length before any byte is buffered.
   * Exceeding it throws `SP_ERR_PART_TOO_LARGE`.
   * @default 16777216 (16 MiB)
   */
  maxPartBytes?: number;
  /**
   * Most bytes before the first delimiter line (the preamble). Exceeding it throws
   * `SP_ERR_NO_DELIMITER`: the stream is not multipart with this boundary.
   * @default 65536 (64 KiB)
   */
  maxPreambleBytes?: number;
}

export const DEFAULT_LIMITS: Readonly<Required<MultipartLimits>> = Object.freeze({ maxHeaderBytes: 8192, maxPartBytes: 16 * 1024 * 1024, maxPreambleBytes: 65536 });

const LF = 0x0a, CR = 0x0d, DASH = 0x2d, SPACE = 0x20, TAB = 0x09;
const NEED_MORE = -1, NO_MATCH = -2;
// States. SEEK: looking for a delimiter line (preamble, or junk after a wrong Content-Length).
const SEEK = 0, HEADERS = 1, BODY_LENGTH = 2, BODY_SCAN = 3, AFTER_BODY = 4, DONE = 5;
const EMPTY = new Uint8Array(0);

function isWhitespace(byte: number | undefined): boolean {
  return byte === CR || byte === LF || byte === SPACE || byte === TAB;
}

/**
 * An incremental, tolerant parser of a multipart body (`multipart/x-mixed-replace` and any other
 * `multipart/*`). Push chunks of any size; each call returns the parts completed by that chunk.
 *
 * A part is returned the moment it is complete: at exactly its Content-Length when it has one, or
 * else as soon as the delimiter line after it has arrived — never held until the next part begins.
 *
 * Tolerated: a delimiter line with or without the leading `--` (and a declared boundary that
 * already starts with `--`), CRLF or bare LF, padding after the boundary, a preamble, blank lines
 * and whitespace between parts, header names in any case, a missing closing delimiter, an endless
 * stream. Not supported: a part with no header lines at all (blank lines after a delimiter are
 * skipped as padding).
 *
 * A Content-Length is checked when the bytes after the body arrive: if they are not (optional
 * whitespace and) a delimiter line, the length was wrong. That part has already been returned as
 * framed by the length; the parser counts it in {@link contentLengthMismatches}, skips to the next
 * delimiter line, and from then on ignores Content-Length in this stream, ending each part at its
 * delimiter.
 */
export class MultipartParser {
  /** The boundary as declared (a leading `--` kept). */
  readonly boundary: string;
  readonly limits: Readonly<Required<MultipartLimits>>;
  /** Parts whose Content-Length proved wrong (see the class description). */
  contentLengthMismatches = 0;
  private readonly core: Uint8Array;
  private readonly find: ByteSearch;
  private buf: Uint8Array = EMPTY;
  private start = 0;
  private tail = 0;
  /** True when `buf` is ours and bytes may be appended after `end` (never before: bodies are views). */
  private owned = false;
  private state = SEEK;
  private scanFrom = 0;
  private seekLimit: number;
  private seekAtLineStart = true;
  private sawDelimiter = false;
  private trustLength = true;
  private ended = false;
  private closing = false;
  private fields: PartHeaderFields = {};
  private length = 0;
  private bodyStart = 0;
  /** A Content-Length body larger than the bytes at hand, filled by later chunks. */
  private pending: Uint8Array | undefined;
  private filled = 0;
  private out: MultipartPart[] = [];

  constructor(boundary: string, limits: MultipartLimits = {}) {
    if (boundary === '' || boundary.length > 256 || /[\r\n]/.test(boundary)) {
      throw new ServerPushError('SP_ERR_INVALID_BOUNDARY', `invalid multipart boundary ${JSON.stringify(boundary)}`);
    }
    this.boundary = boundary;
    this.limits = Object.freeze({ ...DEFAULT_LIMITS, ...limits });
    // Match the boundary without its leading dashes, and accept any dashes before it on the line:
    // `--B`, `B` (cameras that omit the dashes), and `----B` for a declared `--B`.
    const core = boundary.replace(/^-+/, '');
    this.core = utf8(core === '' ? boundary : core);
    this.find = createSearch(this.core);
    this.seekLimit = this.limits.maxPreambleBytes;
  }

  /** True once the closing delimiter has been seen, or after {@link end}. */
  get done(): boolean {
    return this.state === DONE;
  }

  /** Parses the next chunk; returns the parts it completed, in order. */
  push(chunk: Uint8Array): MultipartPart[] {
    if (this.state === DONE || chunk.length === 0) return [];
    // A plain Uint8Array view, so that bodies are Uint8Array and not a subclass (e.g. Buffer).
    if (chunk.constructor !== Uint8Array) chunk = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.pending !== undefined) {
      const n = Math.min(chunk.length, this.pending.length - this.filled);
      this.pending.set(n === chunk.length ? chunk : chunk.subarray(0, n), this.filled);
      this.filled += n;
      if (this.filled < this.pending.length) return [];
      this.emit(this.pending);
      this.pending = undefined;
      this.state = AFTER_BODY;
      chunk = chunk.subarray(n);
    }
    if (chunk.length > 0) this.append(chunk);
    this.run();
    return this.take();
  }

  /**
   * Ends the input. Returns a last part completed by the end (a closing delimiter with no line end
   * after it). Throws `SP_ERR_INCOMPLETE_PART` when the input ended inside a part, and
   * `SP_ERR_NO_DELIMITER` when it had bytes but no delimiter line at all.
   */
  end(): MultipartPart[] {
    if (this.state === DONE) return this.take();
    this.ended = true;
    if (this.pending === undefined) this.run();
    const state = this.state;
    this.state = DONE;
    if (this.pending !== undefined || state === BODY_LENGTH || state === BODY_SCAN || (state === HEADERS && this.start < this.tail)) {
      throw new ServerPushError('SP_ERR_INCOMPLETE_PART', `the stream ended inside a part${this.pending ? ` (${this.filled} of ${this.pending.length} bytes)` : ''}`);
    }
    if (state === SEEK && !this.sawDelimiter && this.start < this.tail) {
      throw new ServerPushError('SP_ERR_NO_DELIMITER', `the stream ended without a delimiter line for boundary ${JSON.stringify(this.boundary)}`);
    }
    return this.take();
  }

  private take(): MultipartPart[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  private emit(body: Uint8Array): void {
    this.out.push({ headers: this.fields, body });
  }

  private append(chunk: Uint8Array): void {
    const live = this.tail - this.start;
    if (live === 0) {
      this.rebase(-this.start);
      this.buf = chunk;
      this.start = 0;
      this.tail = chunk.length;
      this.owned = false;
    } else if (this.owned && this.buf.length - this.tail >= chunk.length) {
      this.buf.set(chunk, this.tail);
      this.tail += chunk.length;
    } else {
      // Grow into a new buffer (doubling, so appends are amortized O(1) per byte); never compact
      // in place, since earlier bodies may be views into the old one.
      const next = new Uint8Array(Math.max(2 * (live + chunk.length), 65536));
      next.set(this.buf.subarray(this.start, this.tail));
      next.set(chunk, live);
      this.rebase(-this.start);
      this.buf = next;
      this.start = 0;
      this.tail = live + chunk.length;
      this.owned = true;
    }
  }

  private rebase(delta: number): void {
    this.scanFrom += delta;
    this.bodyStart += delta;
  }

  /** Marks `buf[start, to)` consumed; lets go of the buffer once it is all consumed. */
  private consume(to: number): void {
    this.start = to;
    this.scanFrom = to;
    if (to === this.tail) {
      this.buf = EMPTY;
      this.start = this.tail = this.scanFrom = this.bodyStart = 0;
      this.owned = false;
    }
  }

  private run(): void {
    for (;;) {
      const state = this.state;
      const progressed =
        state === SEEK ? this.seek()
        : state === HEADERS ? this.readHeaders()
        : state === BODY_LENGTH ? this.readBodyByLength()
        : state === BODY_SCAN ? this.readBodyByDelimiter()
        : state === AFTER_BODY ? this.checkAfterBody()
        : false;
      if (!progressed) return;
    }
  }

  /** The first match of the boundary at or after `from` that lies wholly within the data, or -1. */
  private findCore(from: number): number {
    const i = this.find(this.buf, from);
    return i === -1 || i + this.core.length > this.tail ? -1 : i;
  }

  /**
   * Matches the rest of a delimiter line after the boundary at `p`: an optional `--` (closing),
   * spaces or tabs, and CRLF or LF (or the end of the input, after {@link end}). Returns the
   * index after the line, NEED_MORE or NO_MATCH; sets `closing`.
   */
  private matchLineEnd(p: number): number {
    const { buf, tail: end } = this;
    this.closing = false;
    if (p < end && buf[p] === DASH) {
      if (p + 1 >= end) return this.ended ? NO_MATCH : NEED_MORE;
      if (buf[p + 1] !== DASH) return NO_MATCH;
      this.closing = true;
      p += 2;
    }
    while (p < end && (buf[p] === SPACE || buf[p] === TAB)) p++;
    if (p >= end) return this.ended ? end : NEED_MORE;
    if (buf[p] === LF) return p + 1;
    if (buf[p] !== CR) return NO_MATCH;
    if (p + 1 >= end) return this.ended ? end : NEED_MORE;
    return buf[p + 1] === LF ? p + 2 : NO_MATCH;
  }

  /** After a delimiter line ending at `next`: the next part's headers, or the end. */
  private afterDelimiter(next: number): true {
    this.sawDelimiter = true;
    this.state = this.closing ? DONE : HEADERS;
    this.consume(next);
    return true;
  }

  private seek(): boolean {
    const { buf, core } = this;
    for (;;) {
      const i = this.findCore(this.scanFrom);
      if (i === -1) {
        this.scanFrom = Math.max(this.scanFrom, this.tail - core.length + 1);
        break;
      }
      let j = i;
      while (j > this.start && buf[j - 1] === DASH) j--;
      if (j === this.start ? this.seekAtLineStart : buf[j - 1] === LF) {
        const next = this.matchLineEnd(i + core.length);
        if (next === NEED_MORE) {
          this.scanFrom = i;
          break;
        }
        if (next !== NO_MATCH) return this.afterDelimiter(next);
      }
      this.scanFrom = i + 1;
    }
    if (this.tail - this.start > this.seekLimit) {
      const what = this.sawDelimiter ? 'after a part whose Content-Length was wrong' : 'at the start of the stream (maxPreambleBytes)';
      throw new LimitExceededError(this.sawDelimiter ? 'SP_ERR_PART_TOO_LARGE' : 'SP_ERR_NO_DELIMITER', `no delimiter line for boundary ${JSON.stringify(this.boundary)} in ${this.seekLimit} bytes ${what}`, this.seekLimit);
    }
    return false;
  }

  private readHeaders(): boolean {
    const { buf, tail: end } = this;
    let s = this.start;
    while (s < end && (buf[s] === CR || buf[s] === LF)) s++;
    if (s === end) {
      this.consume(end);
      return false;
    }
    this.start = s;
    const max = this.limits.maxHeaderBytes;
    let p = Math.max(this.scanFrom, s);
    for (;;) {
      const lf = buf.indexOf(LF, p);
      // The block ends at an empty line: LF LF or LF CR LF.
      if (lf === -1 || lf >= end || lf + 1 >= end || (buf[lf + 1] === CR && lf + 2 >= end)) {
        this.scanFrom = lf === -1 || lf >= end ? end : lf;
        if (this.scanFrom - s > max) break;
        return false;
      }
      const after = buf[lf + 1] === LF ? lf + 2 : buf[lf + 1] === CR && buf[lf + 2] === LF ? lf + 3 : -1;
      if (after === -1) {
        p = lf + 1;
        continue;
      }
      if (after - s > max) break;
      this.fields = parseHeaderBlock(buf, s, lf);
      const length = contentLengthOf(this.fields);
      if (length !== undefined && length > this.limits.maxPartBytes) throw this.partTooLarge(`Content-Length ${length}`);
      this.consume(after);
      this.bodyStart = this.start;
      this.length = length ?? 0;
      this.state = length !== undefined && this.trustLength ? BODY_LENGTH : BODY_SCAN;
      return true;
    }
    throw new LimitExceededError('SP_ERR_HEADERS_TOO_LARGE', `a part's header block is over ${max} bytes (maxHeaderBytes)`, max);
  }

  private partTooLarge(what: string): LimitExceededError {
    const max = this.limits.maxPartBytes;
    return new LimitExceededError('SP_ERR_PART_TOO_LARGE', `a part is larger than ${max} bytes (maxPartBytes): ${what}`, max);
  }

  private readBodyByLength(): boolean {
    const available = this.tail - this.start;
    if (available >= this.length) {
      this.emit(this.buf.subarray(this.start, this.start + this.length));
      this.consume(this.start + this.length);
      this.state = AFTER_BODY;
      return true;
    }
    if (this.ended) return false;
    // Copy what is here into a body of the announced size; later chunks are copied in directly.
    this.pending = new Uint8Array(this.length);
    this.pending.set(this.buf.subarray(this.start, this.tail));
    this.filled = available;
    this.consume(this.tail);
    return false;
  }

  private readBodyByDelimiter(): boolean {
    const { buf, core, bodyStart } = this;
    for (;;) {
      const i = this.findCore(this.scanFrom);
      if (i === -1) {
        this.scanFrom = Math.max(this.scanFrom, this.tail - core.length + 1);
        break;
      }
      let j = i;
      while (j > bodyStart && buf[j - 1] === DASH) j--;
      // The line break before the delimiter belongs to the delimiter (RFC 2046 §5.1.1).
      let bodyEnd = j === bodyStart ? bodyStart : buf[j - 1] === LF ? j - 1 : -1;
      if (bodyEnd > bodyStart && buf[bodyEnd - 1] === CR) bodyEnd--;
      if (bodyEnd !== -1) {
        const next = this.matchLineEnd(i + core.length);
        if (next === NEED_MORE) {
          this.scanFrom = i;
          break;
        }
        if (next !== NO_MATCH) {
          if (bodyEnd - bodyStart > this.limits.maxPartBytes) throw this.partTooLarge(`${bodyEnd - bodyStart} bytes`);
          this.emit(buf.subarray(bodyStart, bodyEnd));
          return this.afterDelimiter(next);
        }
      }
      this.scanFrom = i + 1;
    }
    // Room for the line end and a delimiter line that has begun to arrive.
    if (this.tail - bodyStart > this.limits.maxPartBytes + core.length + 64) throw this.partTooLarge('no delimiter yet');
    return false;
  }

  /** After a body framed by Content-Length: whitespace, then a delimiter line, or else the length was wrong. */
  private checkAfterBody(): boolean {
    const { buf, tail: end, core } = this;
    let p = this.start;
    while (p < end && isWhitespace(buf[p])) p++;
    if (p === end) {
      this.consume(end);
      return false;
    }
    this.consume(p);
    while (p < end && buf[p] === DASH) p++;
    let next = NEED_MORE;
    for (let k = 0; k < core.length; k++) {
      if (p + k >= end) break;
      if (buf[p + k] !== core[k]) {
        next = NO_MATCH;
        break;
      }
      if (k === core.length - 1) next = this.matchLineEnd(p + core.length);
    }
    if (next >= 0) return this.afterDelimiter(next);
    // A delimiter that has begun to arrive (or was cut short by the end of the input).
    if (next === NEED_MORE && (this.ended || end - this.start <= core.length + this.limits.maxHeaderBytes)) return false;
    this.contentLengthMismatches++;
    this.trustLength = false;
    this.state = SEEK;
    this.seekAtLineStart = false;
    this.seekLimit = this.limits.maxPartBytes;
    return !this.ended;
  }
}
