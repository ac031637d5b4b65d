import { connect } from 'node:net';
import { BenchConnection, type ConnectionResult } from './bench-connection.ts';
import { MAX_HEAD, ResponseHead, statusCode, statusLine } from './http-head.ts';

/** What one client of `/stream` saw, sent from a load process to the bench. */
export interface ClientResult extends ConnectionResult {
  id: number;
  /** A stalled client: it reads the response headers, then never reads again. */
  paused: boolean;
  /** When the TCP connection was opened (ms since the epoch, fractional). */
  openedAt: number;
  /** The response's status code; 0 when no response head arrived. */
  status: number;
  /** When each part was complete, i.e. when the delimiter after its body arrived. */
  arrivals: number[];
  /** Raw bytes received (response head, chunked framing and body). */
  bytes: number;
}

/** Wall-clock milliseconds with sub-millisecond resolution. */
export const now = (): number => performance.timeOrigin + performance.now();

/**
 * One raw `GET /stream` over TCP. It does not parse the multipart body: it only counts the
 * delimiters `CRLF --BOUNDARY CRLF` after the opening `--BOUNDARY CRLF` in the raw bytes.
 * serverpush writes each part's body and the delimiter after it in one batch, so the k-th
 * delimiter arriving is the moment part k is complete for a browser. Chunked transfer-coding
 * lines (`hex CRLF`) never contain the boundary, and a delimiter split across two reads is found
 * through the kept tail of the previous read.
 */
export class StreamClient extends BenchConnection<ClientResult> {
  private head: ResponseHead | undefined = new ResponseHead();
  private opening: Buffer | undefined;
  private beforeOpening: Buffer | undefined = Buffer.alloc(0);
  private delimiter: Buffer | undefined;
  private tail = Buffer.alloc(0);

  constructor(id: number, paused: boolean) {
    super({ id, paused, openedAt: 0, status: 0, arrivals: [], bytes: 0, closedEarly: false });
  }

  open(port: number): void {
    this.result.openedAt = now();
    const socket = connect({ host: '127.0.0.1', port });
    this.attach(socket, 'GET /stream HTTP/1.1\r\nHost: x\r\nUser-Agent: serverpush-bench\r\n\r\n');
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  private onData(chunk: Buffer): void {
    const at = now();
    this.result.bytes += chunk.length;
    let body = chunk;
    if (this.head) {
      const read = this.head.add(chunk);
      if (read === 'too large') this.fail('response head too large');
      if (read === 'more' || read === 'too large') return;
      this.head = undefined;
      if (!this.readHead(read.head)) return;
      body = read.body;
      // A stalled client: stop reading from the kernel. Its receive buffer fills, then the
      // server's send buffer, then the server sees the socket congested.
      if (this.result.paused) this.socket?.pause();
    }
    if (this.beforeOpening) {
      // Skip up to the opening `--B CRLF`. In chunked transfer-coding it follows the first
      // chunk-size line's CRLF, which would otherwise read as one more delimiter.
      const all = this.beforeOpening.length === 0 ? body : Buffer.concat([this.beforeOpening, body]);
      const start = all.indexOf(this.opening!);
      if (start === -1) {
        if (all.length > MAX_HEAD) this.fail('no opening delimiter');
        else this.beforeOpening = Buffer.from(all);
        return;
      }
      this.beforeOpening = undefined;
      body = all.subarray(start + this.opening!.length);
    }
    this.count(body, at);
  }

  private readHead(head: string): boolean {
    this.result.status = statusCode(head);
    const type = /\r\ncontent-type:[ \t]*multipart\/x-mixed-replace;[ \t]*boundary="?([^"\r\n;]+)"?/i.exec(head);
    if (this.result.status !== 200 || !type) {
      this.fail(`not a stream: ${statusLine(head)}`);
      return false;
    }
    this.opening = Buffer.from(`--${type[1]!}\r\n`, 'latin1');
    this.delimiter = Buffer.from(`\r\n--${type[1]!}\r\n`, 'latin1');
    return true;
  }

  private count(chunk: Buffer, at: number): void {
    const delimiter = this.delimiter;
    if (!delimiter || chunk.length === 0) return;
    const keep = delimiter.length - 1;
    // A delimiter that straddles the previous read and this one (the tail is shorter than a
    // delimiter, so any match in the seam straddles).
    if (this.tail.length > 0) {
      const seam = Buffer.concat([this.tail, chunk.subarray(0, keep)]);
      if (seam.indexOf(delimiter) !== -1) this.result.arrivals.push(at);
    }
    for (let i = chunk.indexOf(delimiter); i !== -1; i = chunk.indexOf(delimiter, i + delimiter.length)) {
      this.result.arrivals.push(at);
    }
    // Copy the tail so that no client pins a whole 64 KiB read buffer.
    this.tail = chunk.length >= keep
      ? Buffer.from(chunk.subarray(chunk.length - keep))
      : Buffer.concat([this.tail, chunk]).subarray(-keep);
  }
}
