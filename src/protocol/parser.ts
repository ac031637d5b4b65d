import { LimitExceededError, ServerPushError } from '../errors.ts';
import { createSearch, utf8, type ByteSearch } from './bytes.ts';
import { contentLengthOf, parseHeaderBlock, type PartHeaderFields } from './headers.ts';
import { ReceivedPart, type MultipartPart } from './part.ts';
import { DEFAULT_MAX_PART_BYTES } from '../defaults.ts';

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

export const DEFAULT_LIMITS: Readonly<Required<MultipartLimits>> = Object.freeze({ maxHeaderBytes: 8192, maxPartBytes: DEFAULT_MAX_PART_BYTES, maxPreambleBytes: 65536 });

const LF = 0x0a, CR = 0x0d, DASH = 0x2d, SPACE = 0x20, TAB = 0x09;
const NEED_MORE = -1, NO_MATCH = -2;
// States. SEEK: looking for a delimiter line (the preamble, or junk after a wrong Content-Length).
const SEEK = 0, HEADERS = 1, BODY_LENGTH = 2, BODY_SCAN = 3, AFTER_BODY = 4, DONE = 5;
const EMPTY = new Uint8Array(0);
/** Body bytes are set aside as views once this many are at hand, so tiny chunks make few views. */
const MIN_PIECE = 1024;

/**
 * An incremental, tolerant parser of a multipart body (`multipart/x-mixed-replace` and any other
 * `multipart/*`). Push chunks of any size; each call returns the parts completed by that chunk.
 * Bodies are never copied while parsing: a part's `chunks` are views into the pushed chunks.
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
  /** The boundary without leading dashes: what is searched for. */
  private readonly core: Uint8Array;
  private readonly find: ByteSearch;
  /** Most dashes before the boundary on a delimiter line: the declared ones, two more, and slack. */
  private readonly maxDashes: number;
  /** Unconsumed input is `buf[start, tail)`; `buf` is a pushed chunk, or ours when `owned`. */
  private buf: Uint8Array = EMPTY;
  private start = 0;
  private tail = 0;
  /** True when `buf` is ours and bytes may be appended after `tail` (never before: parts are views). */
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
  /** The body of the part being read: views set aside from earlier chunks, and their length. */
  private pieces: Uint8Array[] = [];
  private piecesLength = 0;
  private junction: Uint8Array | undefined;
  private out: MultipartPart[] = [];

  constructor(boundary: string, limits: MultipartLimits = {}) {
    if (boundary === '' || boundary.length > 256 || /[\r\n]/.test(boundary)) {
      throw new ServerPushError('SP_ERR_INVALID_BOUNDARY', `invalid multipart boundary ${JSON.stringify(boundary)}`);
    }
    this.boundary = boundary;
    this.limits = Object.freeze({ ...DEFAULT_LIMITS, ...limits });
    // Match the boundary without its leading dashes, and accept dashes before it on the line:
    // `--B`, `B` (cameras that omit the dashes), and `----B` for a declared `--B`.
    const core = boundary.replace(/^-+/, '') || boundary;
    this.core = utf8(core);
    this.maxDashes = boundary.length - core.length + 4;
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
    this.append(chunk);
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
    this.run();
    const state = this.state;
    this.state = DONE;
    if (state === BODY_LENGTH || state === BODY_SCAN || (state === HEADERS && this.start < this.tail)) {
      const got = this.piecesLength + this.tail - this.start;
      throw new ServerPushError('SP_ERR_INCOMPLETE_PART', `the stream ended inside a part${state === BODY_LENGTH ? ` (${got} of ${this.length} bytes)` : ''}`);
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

  /** Completes the current part with `last`, the end of its body. */
  private emit(last: Uint8Array): void {
    const { pieces } = this;
    if (pieces.length === 0) {
      this.out.push(new ReceivedPart(this.fields, [last], last.length));
      return;
    }
    if (last.length > 0) pieces.push(last);
    this.out.push(new ReceivedPart(this.fields, pieces, this.piecesLength + last.length));
    this.pieces = [];
    this.piecesLength = 0;
  }

  /** Sets `buf[start, to)` aside as part of the body (a view, no copy). */
  private setAside(to: number): void {
    this.pieces.push(this.buf.subarray(this.start, to));
    this.piecesLength += to - this.start;
    this.start = to;
    if (this.scanFrom < to) this.scanFrom = to;
  }

  private append(chunk: Uint8Array): void {
    const live = this.tail - this.start;
    // A few body bytes held over from the last chunk: set them aside rather than copy the new
    // chunk after them, when they surely are body (no delimiter line can span the two chunks).
    if (live > 0 && live <= MIN_PIECE && chunk.length >= 4 * MIN_PIECE) {
      if ((this.state === BODY_LENGTH && this.piecesLength + live < this.length) || (this.state === BODY_SCAN && this.canSkipJoin(chunk))) this.setAside(this.tail);
    }
    if (this.tail === this.start) {
      this.scanFrom -= this.start;
      this.buf = chunk;
      this.start = 0;
      this.tail = chunk.length;
      this.owned = false;
    } else if (this.owned && this.buf.length - this.tail >= chunk.length) {
      this.buf.set(chunk, this.tail);
      this.tail += chunk.length;
    } else {
      // Grow into a new buffer (doubling, so appends are amortized O(1) per byte); never compact
      // in place, since parts already returned may be views into the old one.
      const next = new Uint8Array(Math.max(2 * (live + chunk.length), 4096));
      next.set(this.buf.subarray(this.start, this.tail));
      next.set(chunk, live);
      this.scanFrom -= this.start;
      this.buf = next;
      this.start = 0;
      this.tail = live + chunk.length;
      this.owned = true;
    }
  }

  /**
   * In a body without Content-Length: true when the few bytes held and the start of `chunk` hold
   * no boundary, so that no delimiter line spans the two and the chunk can be scanned in place.
   */
  private canSkipJoin(chunk: Uint8Array): boolean {
    const live = this.tail - this.start;
    const reach = this.core.length + this.maxDashes + 2;
    this.junction ??= new Uint8Array(MIN_PIECE + reach);
    this.junction.set(this.buf.subarray(this.start, this.tail));
    this.junction.set(chunk.subarray(0, reach), live);
    // A match past live + reach is left over from an earlier junction; the first one decides.
    const i = this.find(this.junction, 0);
    return i === -1 || i + this.core.length > live + reach;
  }

  /** Marks `buf[start, to)` consumed; lets go of the buffer once it is all consumed. */
  private consume(to: number): void {
    this.start = to;
    this.scanFrom = to;
    if (to === this.tail) {
      this.buf = EMPTY;
      this.start = this.tail = this.scanFrom = 0;
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

  /** The start of the line of a boundary found at `i`: before up to `maxDashes` dashes, not before `floor`. */
  private lineStart(i: number, floor: number): number {
    let j = i;
    while (j > floor && this.buf[j - 1] === DASH && i - j < this.maxDashes) j--;
    return j;
  }

  /**
   * Matches the rest of a delimiter line after the boundary at `p`: an optional `--` (closing),
   * spaces or tabs, and CRLF or LF (or the end of the input, after {@link end}). Returns the
   * index after the line, NEED_MORE or NO_MATCH; sets `closing`.
   */
  private matchLineEnd(p: number): number {
    const { buf, tail } = this;
    this.closing = false;
    if (p < tail && buf[p] === DASH) {
      if (p + 1 >= tail) return this.ended ? NO_MATCH : NEED_MORE;
      if (buf[p + 1] !== DASH) return NO_MATCH;
      this.closing = true;
      p += 2;
    }
    while (p < tail && (buf[p] === SPACE || buf[p] === TAB)) p++;
    if (p >= tail) return this.ended ? tail : NEED_MORE;
    if (buf[p] === LF) return p + 1;
    if (buf[p] !== CR) return NO_MATCH;
    if (p + 1 >= tail) return this.ended ? tail : NEED_MORE;
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
    for (;;) {
      const i = this.findCore(this.scanFrom);
      if (i === -1) {
        this.scanFrom = Math.max(this.scanFrom, this.tail - this.core.length + 1);
        break;
      }
      const j = this.lineStart(i, this.start);
      if (j === this.start ? this.seekAtLineStart : this.buf[j - 1] === LF) {
        const next = this.matchLineEnd(i + this.core.length);
        if (next === NEED_MORE) {
          this.scanFrom = i;
          break;
        }
        if (next !== NO_MATCH) return this.afterDelimiter(next);
      }
      this.scanFrom = i + 1;
    }
    if (this.tail - this.start > this.seekLimit) {
      const after = this.sawDelimiter ? 'after a part whose Content-Length was wrong' : 'at the start of the stream (maxPreambleBytes)';
      throw new LimitExceededError(this.sawDelimiter ? 'SP_ERR_PART_TOO_LARGE' : 'SP_ERR_NO_DELIMITER', `no delimiter line for boundary ${JSON.stringify(this.boundary)} in ${this.seekLimit} bytes ${after}`, this.seekLimit);
    }
    return false;
  }

  private readHeaders(): boolean {
    const { buf, tail } = this;
    let s = this.start;
    while (s < tail && (buf[s] === CR || buf[s] === LF)) s++;
    if (s === tail) {
      this.consume(tail);
      return false;
    }
    this.start = s;
    const max = this.limits.maxHeaderBytes;
    // The block ends at an empty line: LF LF or LF CR LF. (A plain loop: header blocks are short.)
    let p = Math.max(this.scanFrom, s);
    let lf = -1;
    let after = -1;
    for (; p < tail; p++) {
      if (buf[p] !== LF) continue;
      if (p + 1 >= tail || (buf[p + 1] === CR && p + 2 >= tail)) break;
      if (buf[p + 1] === LF) after = p + 2;
      else if (buf[p + 1] === CR && buf[p + 2] === LF) after = p + 3;
      if (after !== -1) {
        lf = p;
        break;
      }
    }
    if (after === -1) {
      // Not yet: look again from the last line feed, which may begin the empty line.
      this.scanFrom = p;
      if (p - s > max) throw this.headersTooLarge();
      return false;
    }
    if (after - s > max) throw this.headersTooLarge();
    this.fields = parseHeaderBlock(buf, s, lf);
    const length = contentLengthOf(this.fields);
    if (length !== undefined && length > this.limits.maxPartBytes) throw this.partTooLarge(`Content-Length ${length}`);
    this.consume(after);
    this.length = length ?? 0;
    this.state = length !== undefined && this.trustLength ? BODY_LENGTH : BODY_SCAN;
    return true;
  }

  private headersTooLarge(): LimitExceededError {
    const max = this.limits.maxHeaderBytes;
    return new LimitExceededError('SP_ERR_HEADERS_TOO_LARGE', `a part's header block is over ${max} bytes (maxHeaderBytes)`, max);
  }

  private partTooLarge(what: string): LimitExceededError {
    const max = this.limits.maxPartBytes;
    return new LimitExceededError('SP_ERR_PART_TOO_LARGE', `a part is larger than ${max} bytes (maxPartBytes): ${what}`, max);
  }

  private readBodyByLength(): boolean {
    const available = this.tail - this.start;
    const needed = this.length - this.piecesLength;
    if (available >= needed) {
      this.emit(this.buf.subarray(this.start, this.start + needed));
      this.consume(this.start + needed);
      this.state = AFTER_BODY;
      return true;
    }
    if (available >= MIN_PIECE) this.setAside(this.tail);
    return false;
  }

  private readBodyByDelimiter(): boolean {
    const { buf, core } = this;
    const bodyStart = this.start;
    // Bytes before this are surely body: a delimiter line still to come starts after it.
    let surelyBody = this.tail - (core.length - 1) - this.maxDashes - 2;
    let waiting = false;
    for (;;) {
      const i = this.findCore(this.scanFrom);
      if (i === -1) {
        this.scanFrom = Math.max(this.scanFrom, this.tail - core.length + 1);
        break;
      }
      const j = this.lineStart(i, bodyStart);
      // The line break before the delimiter belongs to the delimiter (RFC 2046 §5.1.1). Right after
      // the header block (nothing set aside yet), the delimiter may follow with no line break.
      let bodyEnd = j === bodyStart && this.pieces.length === 0 ? bodyStart : j > bodyStart && buf[j - 1] === LF ? j - 1 : -1;
      if (bodyEnd > bodyStart && buf[bodyEnd - 1] === CR) bodyEnd--;
      if (bodyEnd !== -1) {
        const next = this.matchLineEnd(i + core.length);
        if (next === NEED_MORE) {
          this.scanFrom = i;
          surelyBody = Math.min(surelyBody, bodyEnd);
          waiting = true;
          break;
        }
        if (next !== NO_MATCH) {
          const size = this.piecesLength + bodyEnd - bodyStart;
          if (size > this.limits.maxPartBytes) throw this.partTooLarge(`${size} bytes`);
          this.emit(buf.subarray(bodyStart, bodyEnd));
          return this.afterDelimiter(next);
        }
      }
      this.scanFrom = i + 1;
    }
    // A delimiter line still to come starts after a line feed: with none among the last bytes
    // (most chunks of a binary body), all the bytes at hand are body.
    if (!waiting) {
      let lf = Math.max(surelyBody, bodyStart);
      while (lf < this.tail && buf[lf] !== LF) lf++;
      // Keep a CR that may come before the LF (the last byte, when the LF is still to come).
      surelyBody = lf > bodyStart && buf[lf - 1] === CR ? lf - 1 : lf;
    }
    if (surelyBody - bodyStart >= MIN_PIECE) this.setAside(surelyBody);
    // Room for the line end and a delimiter line that has begun to arrive.
    if (this.piecesLength + this.tail - this.start > this.limits.maxPartBytes + core.length + this.maxDashes + 64) throw this.partTooLarge('no delimiter yet');
    return false;
  }

  /** After a body framed by Content-Length: whitespace, then a delimiter line, or else the length was wrong. */
  private checkAfterBody(): boolean {
    const { buf, tail, core } = this;
    let p = this.start;
    while (p < tail && (buf[p] === CR || buf[p] === LF || buf[p] === SPACE || buf[p] === TAB)) p++;
    if (p === tail) {
      this.consume(tail);
      return false;
    }
    this.consume(p);
    while (p < tail && buf[p] === DASH && p - this.start < this.maxDashes) p++;
    let next = NEED_MORE;
    for (let k = 0; k < core.length && p + k < tail; k++) {
      if (buf[p + k] !== core[k]) {
        next = NO_MATCH;
        break;
      }
      if (k === core.length - 1) next = this.matchLineEnd(p + core.length);
    }
    if (next >= 0) return this.afterDelimiter(next);
    // A delimiter that has begun to arrive (or was cut short by the end of the input).
    if (next === NEED_MORE && (this.ended || tail - this.start <= core.length + this.maxDashes + 64)) return false;
    this.contentLengthMismatches++;
    this.trustLength = false;
    this.state = SEEK;
    this.seekAtLineStart = false;
    this.seekLimit = this.limits.maxPartBytes;
    return !this.ended;
  }
}
