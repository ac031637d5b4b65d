import { connect } from 'node:net';
import { BenchConnection, type ConnectionResult } from './bench-connection.ts';
import { ResponseHead, statusCode, statusLine } from './http-head.ts';
import { MARKER, readStamp, STAMP_BYTES, STAMP_OFFSET } from './live-frames.ts';

/** One viewer of a live stream as seen by the load generator. */
export interface LiveClientResult extends ConnectionResult {
  id: number;
  /** A stalled viewer: never reads after the response head, or (stallLater) after `stall()`. */
  paused: boolean;
  /** Its local port (the server's socket for it has this peer port), 0 before it connected. */
  localPort: number;
  status: number;
  /** `chunked` or `close-delimited` (or `content-length`). */
  framing: string;
  /** Raw bytes received, response head included. */
  bytes: number;
  /** Frames whose push time is in the measured window. */
  frames: number;
  /** Frames that arrived out of order or twice (by sequence number), in the window. */
  outOfOrder: number;
  /** Frames whose last two bytes were not a JPEG end marker (damaged or misframed), at any time. */
  badFrames: number;
  /** Stamps that could not be read. */
  badStamps: number;
}

const DIGITS_AT = MARKER.length;

/** One read buffer for every socket of the process: each read is handled before the next one. */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);

/**
 * A raw `GET` over TCP that reads a multipart stream of stamped JPEGs (live-frames.ts) without
 * parsing the multipart framing: after de-chunking (when the response is chunked) it looks for
 * each frame's stamp, reads the frame's length from it and skips the rest of the frame's bytes;
 * a frame counts as received when its last byte has arrived, at the time of that read. So it
 * works the same for every server's framing (delimiter before or after a part, headers or not)
 * and costs a few hundred bytes of scanning per frame, not a pass over every byte.
 */
export class LiveClient extends BenchConnection<LiveClientResult> {
  /** Push time (µs) and receipt time (µs) of every whole frame received, in order. */
  readonly pushUs: number[] = [];
  readonly recvUs: number[] = [];
  readonly seqs: number[] = [];
  private head: ResponseHead | undefined = new ResponseHead();
  // De-chunking.
  private chunked = false;
  private chunkState: 'size' | 'data' | 'crlf' | 'done' = 'size';
  private chunkLeft = 0;
  private sizeLine = '';
  // Frame scanning.
  private frameLeft = 0;
  private carry: Buffer = Buffer.alloc(0);
  private last1 = 0;
  private last2 = 0;
  private current = { pushUs: 0, seq: 0 };
  private at = 0;

  /** A paused viewer that still reads, until `stall()`. */
  private reading: boolean;

  /** `stallLater`: a paused viewer reads like the others until `stall()` (a phone entering a tunnel). */
  constructor(id: number, paused: boolean, stallLater = false) {
    super({ id, paused, localPort: 0, status: 0, framing: '', closedEarly: false, bytes: 0, frames: 0, outOfOrder: 0, badFrames: 0, badStamps: 0 });
    this.reading = !paused || stallLater;
  }

  /** A paused viewer stops reading now: the kernel's buffers toward it fill from here on. */
  stall(): void {
    if (!this.result.paused || !this.reading) return;
    this.reading = false;
    this.socket?.pause();
  }

  open(port: number, path: string): void {
    const socket = connect({
      host: '127.0.0.1',
      port,
      onread: {
        buffer: READ_BUFFER,
        callback: (bytes: number, buffer: Uint8Array): boolean => this.onRead(Buffer.from(buffer.buffer, buffer.byteOffset, bytes)),
      },
    });
    socket.once('connect', () => { this.result.localPort = socket.localPort ?? 0; });
    // Like ffmpeg: `Accept: */*` (a program, not a browser's <img>), HTTP/1.1 with Host.
    this.attach(socket, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: serverpush-live-bench\r\nAccept: */*\r\nConnection: close\r\n\r\n`);
  }

  /** Returns false to stop reading (a paused viewer, once it has the response head). */
  private onRead(chunk: Buffer): boolean {
    this.at = monoUs();
    this.result.bytes += chunk.length;
    let body = chunk;
    if (this.head) {
      // The read buffer is shared: ResponseHead copies what it keeps.
      const read = this.head.add(chunk);
      if (read === 'too large') this.fail('response head too large');
      if (read === 'more' || read === 'too large') return true;
      this.head = undefined;
      if (!this.readHead(read.head)) return false;
      body = read.body;
    }
    if (!this.reading) return false;
    if (this.chunked) this.dechunk(body);
    else this.scan(body);
    return true;
  }

  private readHead(head: string): boolean {
    this.result.status = statusCode(head);
    if (this.result.status !== 200 || !/\r\ncontent-type:[ \t]*multipart\/x-mixed-replace/i.test(head)) {
      this.fail(`not a stream: ${statusLine(head)}`);
      return false;
    }
    this.chunked = /\r\ntransfer-encoding:[ \t]*chunked/i.test(head);
    this.result.framing = this.chunked ? 'chunked' : /\r\ncontent-length:/i.test(head) ? 'content-length' : 'close-delimited';
    return true;
  }

  /** Chunked transfer coding: hands each chunk's data on without copying. */
  private dechunk(buf: Buffer): void {
    let i = 0;
    while (i < buf.length) {
      switch (this.chunkState) {
        case 'data': {
          const take = Math.min(this.chunkLeft, buf.length - i);
          this.scan(buf.subarray(i, i + take));
          i += take;
          this.chunkLeft -= take;
          if (this.chunkLeft === 0) {
            this.chunkState = 'crlf';
            this.chunkLeft = 2;
          }
          break;
        }
        case 'crlf': {
          const take = Math.min(this.chunkLeft, buf.length - i);
          i += take;
          this.chunkLeft -= take;
          if (this.chunkLeft === 0) this.chunkState = 'size';
          break;
        }
        case 'size': {
          const lf = buf.indexOf(0x0a, i);
          const end = lf === -1 ? buf.length : lf;
          this.sizeLine += buf.toString('latin1', i, end);
          if (this.sizeLine.length > 1024) return this.fail('bad chunk size line');
          i = lf === -1 ? buf.length : lf + 1;
          if (lf === -1) break;
          const size = parseInt(this.sizeLine, 16);
          this.sizeLine = '';
          if (!Number.isFinite(size) || size < 0) return this.fail('bad chunk size');
          if (size === 0) {
            this.chunkState = 'done';
            return;
          }
          this.chunkState = 'data';
          this.chunkLeft = size;
          break;
        }
        case 'done':
          return;
      }
    }
  }

  /** Body bytes: skip the rest of the current frame, or look for the next stamp. */
  private scan(seg: Buffer): void {
    let i = 0;
    while (i < seg.length) {
      if (this.frameLeft > 0) {
        const take = Math.min(this.frameLeft, seg.length - i);
        i += take;
        this.frameLeft -= take;
        if (take >= 2) {
          this.last2 = seg[i - 2]!;
          this.last1 = seg[i - 1]!;
        } else {
          this.last2 = this.last1;
          this.last1 = seg[i - 1]!;
        }
        if (this.frameLeft === 0) this.frameDone();
        continue;
      }
      i = this.seek(seg, i);
    }
  }

  /** Finds the next stamp from `seg[i]`; returns where scanning goes on. */
  private seek(seg: Buffer, i: number): number {
    if (this.carry.length > 0) {
      // A marker that started in the previous segment: look at it with the first bytes of this one.
      const carried = this.carry.length;
      const window = Buffer.concat([this.carry, seg.subarray(i, i + STAMP_BYTES)]);
      const j = window.indexOf(MARKER);
      if (j !== -1 && j < carried) {
        if (j + STAMP_BYTES > window.length) {
          this.carry = Buffer.from(window.subarray(j));
          return seg.length;
        }
        this.carry = Buffer.alloc(0);
        this.startFrame(window, j);
        return i + j + STAMP_BYTES - carried;
      }
      this.carry = Buffer.alloc(0);
    }
    const j = seg.indexOf(MARKER, i);
    if (j === -1) {
      // Keep what could be the start of a marker cut by the end of this segment.
      this.carry = Buffer.from(seg.subarray(Math.max(i, seg.length - (MARKER.length - 1))));
      return seg.length;
    }
    if (j + STAMP_BYTES > seg.length) {
      this.carry = Buffer.from(seg.subarray(j));
      return seg.length;
    }
    this.startFrame(seg, j);
    return j + STAMP_BYTES;
  }

  private startFrame(buf: Buffer, markerAt: number): void {
    const stamp = readStamp(buf, markerAt + DIGITS_AT);
    if (!stamp || stamp.length < STAMP_OFFSET + STAMP_BYTES + 2) {
      this.result.badStamps++;
      return;
    }
    this.current = { pushUs: stamp.pushUs, seq: stamp.seq };
    this.frameLeft = stamp.length - STAMP_OFFSET - STAMP_BYTES;
  }

  private frameDone(): void {
    if (this.last2 !== 0xff || this.last1 !== 0xd9) {
      this.result.badFrames++;
      return;
    }
    this.pushUs.push(this.current.pushUs);
    this.recvUs.push(this.at);
    this.seqs.push(this.current.seq);
  }

  /**
   * Counts the frames pushed in [fromUs, toUs) and returns their latencies (ms). Frames that
   * arrived after the bench stopped listening are not there.
   */
  measure(fromUs: number, toUs: number, latenciesMs: number[]): void {
    let frames = 0;
    let outOfOrder = 0;
    let lastSeq = -1;
    for (let k = 0; k < this.pushUs.length; k++) {
      const push = this.pushUs[k]!;
      if (push < fromUs || push >= toUs) continue;
      const seq = this.seqs[k]!;
      if (seq <= lastSeq) {
        outOfOrder++;
        continue;
      }
      lastSeq = seq;
      frames++;
      latenciesMs.push((this.recvUs[k]! - push) / 1000);
    }
    this.result.frames = frames;
    this.result.outOfOrder = outOfOrder;
  }
}
