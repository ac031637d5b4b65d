/** Node's own HTTP/2 client, for tests of serverpush over HTTPS: sessions and strictly read streams. */
import { connect, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { StrictMultipartReader } from './multipart-reader.ts';

/** An HTTP/2 session to `origin`, trusting `ca`; its connection-level window is 10 MiB (as browsers make theirs). */
export async function h2Session(origin: URL | string, ca: Buffer): Promise<ClientHttp2Session> {
  const session = connect(origin, { ca, servername: 'localhost' });
  session.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  session.setLocalWindowSize(10 * 1024 * 1024);
  return session;
}

export interface H2Stream {
  stream: ClientHttp2Stream;
  headers: IncomingHttpHeaders;
  reader: StrictMultipartReader;
  /** Resolves when the server ended the stream cleanly (END_STREAM), rejects on a reset or a framing error. */
  ended: Promise<void>;
}

/** GETs `path` on `session`; with `read: false` the stream is never read (its window closes: a stalled viewer). */
export function h2Get(session: ClientHttp2Session, path: string, { read = true }: { read?: boolean } = {}): Promise<H2Stream> {
  const stream = session.request({ ':path': path });
  if (!read) stream.pause();
  return new Promise((resolve, reject) => {
    stream.once('error', reject);
    stream.once('response', (headers) => {
      const match = /boundary=(.+)$/.exec(String(headers['content-type'] ?? ''));
      if (!match) return reject(new Error(`not a multipart stream: ${headers[':status']} ${headers['content-type']}`));
      const reader = new StrictMultipartReader(match[1]!);
      const ended = new Promise<void>((done, fail) => {
        if (read) stream.on('data', (chunk: Buffer) => reader.push(chunk));
        stream.once('end', () => {
          try {
            reader.end();
            done();
          } catch (error) {
            fail(error);
          }
        });
        stream.once('close', () => { if (stream.rstCode !== 0) fail(new Error(`stream reset with code ${stream.rstCode}`)); });
        stream.on('error', fail);
      });
      ended.catch(() => {});
      resolve({ stream, headers, reader, ended });
    });
  });
}
