/** The blank line that ends an HTTP response head. */
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

/** The longest response head a bench client takes (stream-client.ts bounds its search for the opening delimiter with it too). */
export const MAX_HEAD = 16 * 1024;

/**
 * One read given to a ResponseHead: `more` while the head is not whole, `too large` when
 * MAX_HEAD bytes came without one, else the head and the body bytes that came with it.
 */
export type HeadRead = 'more' | 'too large' | { head: string; body: Buffer };

/**
 * Gathers an HTTP/1.x response head over a socket's reads. What it keeps between reads is
 * copied, so the reads may come from a buffer that is reused; the body it returns is a view of
 * the last read.
 */
export class ResponseHead {
  private kept = Buffer.alloc(0);

  /** Adds one read; once the head is whole, returns its text (latin1, without the blank line) and what follows it. */
  add(chunk: Buffer): HeadRead {
    const all = this.kept.length === 0 ? chunk : Buffer.concat([this.kept, chunk]);
    const end = all.indexOf(HEAD_END);
    if (end === -1) {
      if (all.length > MAX_HEAD) return 'too large';
      this.kept = Buffer.from(all);
      return 'more';
    }
    return { head: all.subarray(0, end).toString('latin1'), body: all.subarray(end + HEAD_END.length) };
  }
}

/** The status code of a response head; 0 when its first line is not an HTTP/1.x status line. */
export function statusCode(head: string): number {
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  return status ? Number(status[1]) : 0;
}

/** The first line of a response head (for messages). */
export function statusLine(head: string): string {
  return head.split('\r\n')[0] ?? '';
}
