/**
 * The exact bytes of every kind of stream answer — status line, headers, chunk framing (one chunk
 * per write, so eager framing's "next headers in the same write" is pinned too) and bodies — compared
 * with recordings in test/fixtures/wire/. Only the Date header is dropped and X-Timestamp values are
 * masked (same length, so chunk sizes still match). A change to the serving code that changes what
 * goes on the wire fails here; a deliberate one is recorded again with `UPDATE_WIRE=1 npm test`.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { EXAMPLES, makeFolder, removeFolder, startServer } from './helpers/server.ts';
import { LiveStream } from '../src/hub/live-stream.ts';
import { liveHandler } from '../src/adapters/node-http.ts';

const WIRE = new URL('./fixtures/wire/', import.meta.url);
const UPDATE = process.env['UPDATE_WIRE'] === '1';
const BOUNDARY = 'wireTestBoundary0123456789';
/** Fixed part timestamps (ms) of the live frames, so their X-Timestamp is known. */
const STAMP = 1_700_000_000_123;

let frames: Buffer[] = [];
before(async () => {
  frames = await Promise.all([1, 2, 3].map((i) => readFile(new URL(`./fixtures/frames/frame-${i}.jpg`, import.meta.url))));
});

/** Masks what varies from run to run: the Date header, and X-Timestamp digits (kept the same length). */
function normalize(bytes: Buffer): Buffer {
  const text = bytes.toString('latin1')
    .replace(/\r\nDate: [^\r]*/gi, '')
    .replace(/(X-Timestamp: )(\d+)\.(\d+)/g, (_all, name: string, s: string, us: string) => `${name}${'S'.repeat(s.length)}.${'U'.repeat(us.length)}`);
  return Buffer.from(text, 'latin1');
}

/** Sends `request` on a fresh TCP connection and collects every byte until the server closes it. */
function capture(port: number, request: string, onData?: (all: Buffer) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      onData?.(Buffer.concat(chunks));
    });
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => reject(new Error(`no end: ${Buffer.concat(chunks).toString('latin1').slice(0, 300)}`)));
  });
}

/** Resolves once `count` occurrences of the delimiter line are in what `capture` got so far. */
function delimiters(all: Buffer): number {
  return all.toString('latin1').split(`--${BOUNDARY}\r\n`).length - 1;
}

async function check(name: string, bytes: Buffer): Promise<void> {
  const file = new URL(`${name}.http`, WIRE);
  const actual = normalize(bytes);
  if (UPDATE) {
    await mkdir(WIRE, { recursive: true });
    await writeFile(file, actual);
    return;
  }
  const expected = await readFile(file);
  assert.equal(actual.toString('latin1'), expected.toString('latin1'), `${name}: the wire bytes changed (UPDATE_WIRE=1 records them again if that was meant)`);
}

const get = (path: string, headers: Record<string, string> = {}, method = 'GET', version = '1.1') =>
  `${method} ${path} HTTP/${version}\r\nHost: test\r\n${Object.entries({ Connection: 'close', ...headers }).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;

test('slideshow answers: GET over HTTP/1.1 and 1.0, raw, ?only=, HEAD, and 503 for an empty folder', async (t) => {
  const empty = await makeFolder();
  t.after(() => removeFolder(empty));
  const { server, url } = await startServer({ streams: {
    default: { type: 'slideshow', dir: EXAMPLES, intervalMs: 20, boundary: BOUNDARY },
    none: { type: 'slideshow', dir: empty, intervalMs: 3000, boundary: BOUNDARY },
  } });
  t.after(() => server.close());
  const port = Number(url.port);
  await check('slideshow-get', await capture(port, get('/stream')));
  await check('slideshow-get-http10', await capture(port, get('/stream', {}, 'GET', '1.0')));
  await check('slideshow-raw', await capture(port, get('/stream?raw=1')));
  await check('slideshow-only-text', await capture(port, get('/stream?only=text')));
  await check('slideshow-head', await capture(port, get('/stream', {}, 'HEAD')));
  await check('slideshow-empty-503', await capture(port, get('/stream/none')));
});

/** Pushes frame i once the viewer has i delimiter lines (it took the previous frame), then closes the server. */
function liveCapture(port: number, request: string, stream: LiveStream, close: () => Promise<void>): Promise<Buffer> {
  let pushed = 1;
  return capture(port, request, (all) => {
    if (pushed < frames.length && delimiters(all) > pushed) {
      stream.push({ contentType: 'image/jpeg', body: frames[pushed]!, timestamp: STAMP + pushed });
      pushed++;
    } else if (pushed === frames.length && delimiters(all) > pushed) {
      pushed++;
      void close();
    }
  });
}

for (const [name, headers, path] of [
  ['live-standard', {}, '/stream'],
  ['live-eager-img', { Accept: 'image/avif,image/webp,*/*' }, '/stream'],
  ['live-raw', {}, '/stream?raw=1'],
  ['live-fps', {}, '/stream?fps=1000&eager=1'],
] as const) {
  test(`live answer ${name}: frames as pushed, then the clean end on shutdown`, async () => {
    const { server, url } = await startServer({ streams: { default: { type: 'push', boundary: BOUNDARY } } });
    server.live().push({ contentType: 'image/jpeg', body: frames[0]!, timestamp: STAMP });
    const bytes = await liveCapture(Number(url.port), get(path, headers), server.live(), () => server.close());
    await check(name, bytes);
  });
}

test('live refusals and HEAD: 503 before the first frame, 400 for a bad ?fps, HEAD headers alone', async (t) => {
  const { server, url } = await startServer({ streams: { default: { type: 'push', boundary: BOUNDARY } } });
  t.after(() => server.close());
  const port = Number(url.port);
  await check('live-no-frame-503', await capture(port, get('/stream')));
  server.live().push({ contentType: 'image/jpeg', body: frames[0]!, timestamp: STAMP });
  await check('live-bad-fps-400', await capture(port, get('/stream?fps=abc')));
  await check('live-head', await capture(port, get('/stream', {}, 'HEAD')));
});

test('synced slideshow: the first documents as one show, eager for an <img>', async (t) => {
  const { server, url } = await startServer({ streams: { default: { type: 'slideshow', dir: EXAMPLES, intervalMs: 100_000, sync: true, boundary: BOUNDARY } } });
  const port = Number(url.port);
  // The synced show's first document is pushed by its source right after listen().
  while (!server.live().latest) await new Promise((resolve) => setTimeout(resolve, 5));
  let closing: Promise<void> | undefined;
  const bytes = await capture(port, get('/stream', { Accept: 'image/png,image/*' }), (all) => {
    if (delimiters(all) >= 1 && !closing) closing = server.close();
  });
  await closing;
  t.after(() => server.close());
  await check('synced-eager', bytes);
});

test('liveHandler(stream) on a plain Node http server', async (t) => {
  const stream = new LiveStream({ boundary: BOUNDARY });
  stream.push({ contentType: 'image/jpeg', body: frames[0]!, timestamp: STAMP });
  const http = createHttpServer(liveHandler(stream));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => { http.closeAllConnections(); http.close(() => resolve()); }));
  const port = (http.address() as { port: number }).port;
  const bytes = await liveCapture(port, get('/cam'), stream, async () => { stream.closeViewers(); });
  await check('live-handler', bytes);
});
