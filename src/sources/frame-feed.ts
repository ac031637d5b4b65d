import { JpegSplitter } from '../protocol/jpeg-splitter.ts';
import { MultipartParser } from '../protocol/parser.ts';
import { isServerPushError, ServerPushError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { LiveStream } from '../hub/live-stream.ts';
import { DEFAULT_MAX_PART_BYTES } from '../defaults.ts';

/** What a byte pipe carries. `auto` looks at the first bytes: `FF D8` is JPEG, `--` is multipart. */
export type PipeFormat = 'auto' | 'mjpeg' | 'multipart';

/** At most one warning per this many ms per stream; the others are counted into the next one. */
const WARN_EVERY_MS = 1000;
/** How far into a pipe's input its format is looked for. */
const DETECT_LIMIT = 64 * 1024;

/** Logs refused frames and junk without flooding the log when a source goes bad at 30 fps. */
export class WarningThrottle {
  private last = -Infinity;
  private suppressed = 0;
  constructor(private readonly logger: Logger, private readonly prefix: string) {}

  warn(code: Parameters<Logger['warn']>[0], message: string): void {
    const now = performance.now();
    if (now - this.last < WARN_EVERY_MS) {
      this.suppressed++;
      return;
    }
    const more = this.suppressed > 0 ? ` (and ${this.suppressed} more since the last warning)` : '';
    this.last = now;
    this.suppressed = 0;
    this.logger.warn(code, `${this.prefix}${message}${more}`);
  }
}

/**
 * Turns a byte stream from a pipe into parts pushed to a stream: concatenated JPEGs or a
 * multipart stream (whose boundary is read from its first delimiter line). Frames the stream
 * refuses (truncated, not an image, too large) are dropped with a throttled warning.
 *
 * Latest wins at the source (DESIGN.md, Delivery): the frames found in the input are not pushed
 * one by one as they are found. The newest whole frame is kept, and pushed once the reads of the
 * current event-loop turn are done (`setImmediate`), so everything the pipe held by then has been
 * read and split, and only its newest frame goes to the viewers. A frame overtaken that way is
 * counted in the stream's `framesSuperseded`, unchecked. When pushing a frame to every viewer takes
 * longer than the camera's frame interval (many viewers, some of them stalled), the pipe no
 * longer builds a queue of old frames that every viewer then gets, late: measured (issue 10,
 * docs/decisions/0011), a 30 fps pipe fed through `--exec` lagged 300–800 ms behind the camera
 * while 200 of 1,000 viewers stalled, the frames coming out of the pipe's buffer one by one.
 */
export class FrameFeed {
  private format: PipeFormat;
  private jpeg: JpegSplitter | undefined;
  private multipart: MultipartParser | undefined;
  private head: Uint8Array = new Uint8Array(0);
  private readonly warnings: WarningThrottle;
  private readonly maxPartBytes: number;
  /** The newest whole frame not pushed yet. */
  private newest: { contentType: string; body: Uint8Array } | undefined;
  private flushing: ReturnType<typeof setImmediate> | undefined;

  constructor(private readonly stream: LiveStream, options: { format?: PipeFormat; maxPartBytes?: number; logger: Logger; label: string }) {
    this.format = options.format ?? 'auto';
    this.warnings = new WarningThrottle(options.logger, `stream ${stream.name} (${options.label}): `);
    this.maxPartBytes = options.maxPartBytes ?? DEFAULT_MAX_PART_BYTES;
  }

  /**
   * Feeds bytes. The newest whole frame among them (and any fed before in this event-loop turn)
   * is pushed at the end of the turn, or by `flush()`. Throws `SP_ERR_SOURCE_FAILED` when the
   * input is neither JPEG nor multipart.
   */
  push(chunk: Uint8Array): void {
    if (this.format === 'auto') {
      chunk = this.detect(chunk);
      if (this.format === 'auto') return;
    }
    if (this.format === 'mjpeg') {
      this.jpeg ??= new JpegSplitter({
        maxImageBytes: this.maxPartBytes,
        onJunk: (bytes, reason) => this.warnings.warn('SP_ERR_INVALID_FRAME', `dropped ${bytes} ${reason}`),
      });
      for (const image of this.jpeg.push(chunk)) this.publish('image/jpeg', image);
      return;
    }
    if (!this.multipart) {
      chunk = this.detectBoundary(chunk);
      if (!this.multipart) return;
    }
    try {
      for (const part of this.multipart.push(chunk)) this.publish(part.headers['content-type'] ?? 'image/jpeg', part.body);
    } catch (error) {
      // A limit was exceeded or the framing broke: start over at the next delimiter line.
      this.warnings.warn(isServerPushError(error) ? error.code : 'SP_ERR_INVALID_FRAME', `multipart input: ${(error as Error).message}`);
      this.multipart = new MultipartParser(this.multipart.boundary, { maxPartBytes: this.maxPartBytes });
    }
  }

  /** Pushes the newest frame now, if one is waiting (at the end of the input, say). */
  flush(): void {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    const frame = this.newest;
    if (!frame) return;
    this.newest = undefined;
    try {
      this.stream.push(frame);
    } catch (error) {
      this.warnings.warn(isServerPushError(error) ? error.code : 'SP_ERR_INVALID_FRAME', `dropped a frame: ${(error as Error).message}`);
    }
  }

  /** Drops the frame waiting, if any (the source stops). */
  discard(): void {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    this.newest = undefined;
  }

  private publish(contentType: string, body: Uint8Array): void {
    if (this.newest) this.stream.counters.framesSuperseded++;
    this.newest = { contentType, body };
    this.flushing ??= setImmediate(() => this.flush());
  }

  private gather(chunk: Uint8Array): Uint8Array {
    const all = new Uint8Array(this.head.length + chunk.length);
    all.set(this.head);
    all.set(chunk, this.head.length);
    return all;
  }

  /**
   * Finds what the input is: the first JPEG start (FF D8 FF) or multipart delimiter line (`--`
   * at a line start) within the first 64 KiB. Bytes before it are junk, dropped with a warning.
   */
  private detect(chunk: Uint8Array): Uint8Array {
    const all = this.gather(chunk);
    for (let i = 0; i + 2 < all.length; i++) {
      const jpeg = all[i] === 0xff && all[i + 1] === 0xd8 && all[i + 2] === 0xff;
      const multipart = all[i] === 0x2d && all[i + 1] === 0x2d && (i === 0 || all[i - 1] === 0x0a);
      if (!jpeg && !multipart) continue;
      this.format = jpeg ? 'mjpeg' : 'multipart';
      if (i > 0) this.warnings.warn('SP_ERR_INVALID_FRAME', `dropped ${i} bytes before the first ${jpeg ? 'image' : 'delimiter'}`);
      this.head = new Uint8Array(0);
      return all.subarray(i);
    }
    if (all.length > DETECT_LIMIT) {
      throw new ServerPushError('SP_ERR_SOURCE_FAILED', `input is neither JPEG (FF D8 FF) nor multipart (--boundary) in its first ${DETECT_LIMIT} bytes`);
    }
    this.head = all;
    return all;
  }

  private detectBoundary(chunk: Uint8Array): Uint8Array {
    const all = this.gather(chunk);
    const text = new TextDecoder('latin1').decode(all.subarray(0, Math.min(all.length, 200)));
    const match = /^\s*--([^\r\n]{1,70})\r?\n/.exec(text);
    if (!match) {
      if (all.length > 200) throw new ServerPushError('SP_ERR_SOURCE_FAILED', 'multipart input without a boundary line at its start');
      this.head = all;
      return all;
    }
    this.head = new Uint8Array(0);
    this.multipart = new MultipartParser(match[1]!.trimEnd(), { maxPartBytes: this.maxPartBytes });
    return all;
  }
}
