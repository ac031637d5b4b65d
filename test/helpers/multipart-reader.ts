/**
 * A strict reader of serverpush's wire format, for tests: it checks every byte of the framing
 * (opening delimiter, header block, exact Content-Length, the delimiter right after each body)
 * and records when each part was complete. Deliberately not the tolerant client parser.
 */
export interface ReceivedPart {
  headers: Record<string, string>;
  body: Buffer;
  /** `Date.now()` when the body and the delimiter after it had arrived. */
  receivedAt: number;
  /** `Date.now()` when this part's header block had arrived. */
  headersAt: number;
}

export class StrictMultipartReader {
  readonly parts: ReceivedPart[] = [];
  closed = false;
  private buffer = Buffer.alloc(0);
  private state: 'opening' | 'headers' | 'body' | 'delimiter' | 'done' = 'opening';
  private headers: Record<string, string> = {};
  private headersAt = 0;
  /** `Date.now()` when the header block of the part now being received had arrived. */
  get pendingHeadersAt(): number | undefined {
    return this.state === 'body' || this.state === 'delimiter' ? this.headersAt : undefined;
  }
  private length = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(private readonly boundary: string) {}

  push(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    const at = Date.now();
    const before = this.parts.length;
    this.advance(at);
    if (this.parts.length > before) for (const wake of this.waiters.splice(0)) wake();
  }

  end(): void {
    if (this.buffer.length > 0 && this.state !== 'done') {
      throw new Error(`stream ended inside ${this.state} with ${this.buffer.length} bytes pending`);
    }
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Resolves once `count` parts have arrived. */
  async waitFor(count: number, timeoutMs = 10_000): Promise<ReceivedPart[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.parts.length < count) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for part ${count}; have ${this.parts.length}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.parts.slice(0, count);
  }

  private expect(text: string): boolean | undefined {
    const bytes = Buffer.from(text, 'latin1');
    if (this.buffer.length < bytes.length) {
      if (!bytes.subarray(0, this.buffer.length).equals(this.buffer)) throw new Error(`expected ${JSON.stringify(text)}, got ${JSON.stringify(this.buffer.toString('latin1'))}`);
      return undefined;
    }
    if (!this.buffer.subarray(0, bytes.length).equals(bytes)) return false;
    this.buffer = this.buffer.subarray(bytes.length);
    return true;
  }

  private advance(at: number): void {
    for (;;) {
      if (this.state === 'opening') {
        const ok = this.expect(`--${this.boundary}\r\n`);
        if (ok === undefined) return;
        if (!ok) throw new Error(`stream does not start with the opening delimiter: ${JSON.stringify(this.buffer.subarray(0, 80).toString('latin1'))}`);
        this.state = 'headers';
      } else if (this.state === 'headers') {
        const end = this.buffer.indexOf('\r\n\r\n');
        if (end === -1) return;
        this.headers = {};
        for (const line of this.buffer.subarray(0, end).toString('latin1').split('\r\n')) {
          const match = /^([A-Za-z0-9-]+): (.*)$/.exec(line);
          if (!match) throw new Error(`malformed header line ${JSON.stringify(line)}`);
          this.headers[match[1]!.toLowerCase()] = match[2]!;
        }
        const length = this.headers['content-length'];
        if (length === undefined || !/^\d+$/.test(length)) throw new Error(`part without a valid Content-Length: ${JSON.stringify(this.headers)}`);
        this.length = Number(length);
        this.buffer = this.buffer.subarray(end + 4);
        this.headersAt = at;
        this.state = 'body';
      } else if (this.state === 'body') {
        if (this.buffer.length < this.length) return;
        this.state = 'delimiter';
      } else if (this.state === 'delimiter') {
        const body = this.buffer.subarray(0, this.length);
        const rest = this.buffer.subarray(this.length);
        const next = Buffer.from(`\r\n--${this.boundary}\r\n`, 'latin1');
        const close = Buffer.from(`\r\n--${this.boundary}--\r\n`, 'latin1');
        const matches = (d: Buffer) => rest.length >= d.length && rest.subarray(0, d.length).equals(d);
        const prefixOf = (d: Buffer) => rest.length < d.length && d.subarray(0, rest.length).equals(rest);
        if (matches(next) || matches(close)) {
          const isClose = matches(close);
          this.parts.push({ headers: this.headers, body: Buffer.from(body), receivedAt: at, headersAt: this.headersAt });
          this.buffer = rest.subarray(isClose ? close.length : next.length);
          this.state = isClose ? 'done' : 'headers';
          if (isClose && this.buffer.length > 0) throw new Error('bytes after the closing delimiter');
        } else if (prefixOf(next) || prefixOf(close)) {
          return;
        } else {
          throw new Error(`part body not followed by a delimiter: ${JSON.stringify(rest.subarray(0, 60).toString('latin1'))}`);
        }
      } else {
        if (this.buffer.length > 0) throw new Error('bytes after the closing delimiter');
        return;
      }
    }
  }
}
