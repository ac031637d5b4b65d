import { test, before, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { makeJpegFrames } from './helpers/frames.ts';
import { startServer, openStream, fetchText, eventually, sleep, makeFolder, removeFolder } from './helpers/server.ts';
import { LiveStream } from '../src/hub/live-stream.ts';
import { liveResponse } from '../src/adapters/fetch.ts';
import { readParts } from '../src/protocol/read-parts.ts';
import { isServerPushError } from '../src/errors.ts';
import { Subscriber, type LiveSink } from '../src/hub/subscriber.ts';
import { encodePart } from '../src/hub/encoded-part.ts';
import { MultipartFraming } from '../src/protocol/encoder.ts';
import { HAVE_SS, serverSockets } from './helpers/sockets.ts';

let frames: Buffer[] = [];
before(async () => { frames = await makeJpegFrames(40); });
const jpeg = (i: number) => ({ contentType: 'image/jpeg', body: frames[i % frames.length]! });

async function pushServer(options: { dropDuplicates?: boolean; serveLastWhenDown?: boolean; stallTimeoutMs?: number } = {}) {
  return startServer({ streams: { default: { type: 'push', ...options }, cam: { type: 'push' } } });
}

test('a live stream answers 503 SP_ERR_NO_FRAME until its first frame, then a new viewer gets the latest frame at once', async (t) => {
  const { server, url } = await pushServer();
  t.after(() => server.close());
  const empty = await fetchText(new URL('stream', url));
  assert.equal(empty.status, 503);
  assert.equal(JSON.parse(empty.body).error, 'SP_ERR_NO_FRAME');
  assert.equal((await fetchText(new URL('snapshot', url))).status, 503);
  server.live().push(jpeg(0));
  server.live().push(jpeg(1));
  const viewer = await openStream(new URL('stream', url));
  const [first] = await viewer.reader.waitFor(1, 1000);
  assert.ok(first!.receivedAt - viewer.connectedAt < 200);
  assert.ok(first!.body.equals(frames[1]!), 'the latest frame, not the first');
  server.live().push(jpeg(2));
  const parts = await viewer.reader.waitFor(2);
  assert.ok(parts[1]!.body.equals(frames[2]!));
  viewer.close();
});

test('every viewer gets every frame, encoded once: the same bytes to each', async (t) => {
  const { server, url } = await pushServer();
  t.after(() => server.close());
  server.live().push(jpeg(0));
  const viewers = await Promise.all(Array.from({ length: 10 }, () => openStream(new URL('stream', url))));
  await Promise.all(viewers.map((v) => v.reader.waitFor(1)));
  for (let i = 1; i < 20; i++) {
    server.live().push(jpeg(i));
    await sleep(15);
  }
  for (const viewer of viewers) {
    const parts = await viewer.reader.waitFor(20);
    parts.forEach((part, i) => assert.ok(part.body.equals(frames[i]!), `frame ${i}`));
    assert.equal(viewer.response.headers['connection'], 'close');
    viewer.close();
  }
});

test('GET /snapshot answers the latest frame at once as an ordinary response; the mjpg-streamer URLs are aliases', async (t) => {
  const { server, url } = await pushServer();
  t.after(() => server.close());
  server.live().push(jpeg(3));
  server.live('cam').push(jpeg(4));
  for (const [path, frame] of [['snapshot', 3], ['?action=snapshot', 3], ['snapshot/cam', 4]] as const) {
    const response = await fetch(new URL(path, url));
    assert.equal(response.status, 200, path);
    assert.equal(response.headers.get('content-type'), 'image/jpeg');
    assert.equal(response.headers.get('content-length'), String(frames[frame]!.length));
    assert.match(response.headers.get('x-timestamp')!, /^\d+\.\d{6}$/);
    assert.ok(Buffer.from(await response.arrayBuffer()).equals(frames[frame]!), path);
  }
  const alias = await openStream(new URL('?action=stream', url));
  assert.ok((await alias.reader.waitFor(1))[0]!.body.equals(frames[3]!));
  alias.close();
  const named = await openStream(new URL('stream/cam', url));
  assert.ok((await named.reader.waitFor(1))[0]!.body.equals(frames[4]!));
  named.close();
  const unknown = await fetchText(new URL('stream/nope', url));
  assert.equal(unknown.status, 404);
  assert.equal(JSON.parse(unknown.body).error, 'SP_ERR_UNKNOWN_STREAM');
});

test('?fps=N caps a viewer at N frames per second and keeps the newest', async (t) => {
  const { server, url } = await pushServer();
  t.after(() => server.close());
  server.live().push(jpeg(0));
  const capped = await openStream(new URL('stream?fps=5', url));
  const full = await openStream(new URL('stream', url));
  const started = Date.now();
  let i = 1;
  while (Date.now() - started < 2000) {
    server.live().push(jpeg(i++));
    await sleep(33);
  }
  await sleep(300);
  const last = i - 1;
  assert.ok(full.reader.parts.length >= last - 1, `uncapped viewer got ${full.reader.parts.length} of ${last + 1}`);
  const n = capped.reader.parts.length;
  assert.ok(n >= 8 && n <= 13, `capped viewer got ${n} frames in ~2.3 s at fps=5`);
  assert.ok(capped.reader.parts.at(-1)!.body.equals(frames[last % frames.length]!), 'the newest frame is kept');
  const bad = await fetchText(new URL('stream?fps=abc', url));
  assert.equal(bad.status, 400);
  capped.close();
  full.close();
});

test('dropDuplicates drops a frame identical to the previous one', async (t) => {
  const { server, url } = await pushServer({ dropDuplicates: true });
  t.after(() => server.close());
  assert.equal(server.live().push(jpeg(0)), true);
  const viewer = await openStream(new URL('stream', url));
  await viewer.reader.waitFor(1);
  assert.equal(server.live().push(jpeg(0)), false);
  assert.equal(server.live().push(jpeg(1)), true);
  await viewer.reader.waitFor(2);
  await sleep(100);
  assert.equal(viewer.reader.parts.length, 2);
  assert.equal(server.live().counters.duplicatesDropped, 1);
  viewer.close();
});

test('push() refuses a corrupt frame with a coded error and viewers never see it', async (t) => {
  const { server, url } = await pushServer();
  t.after(() => server.close());
  server.live().push(jpeg(0));
  const viewer = await openStream(new URL('stream', url));
  await viewer.reader.waitFor(1);
  const truncated = frames[1]!.subarray(0, 1000);
  assert.throws(() => server.live().push({ contentType: 'image/jpeg', body: truncated }), (e) => isServerPushError(e, 'SP_ERR_INVALID_FRAME'));
  assert.throws(() => server.live().push({ contentType: 'image/jpeg', body: Buffer.from('<html>not an image</html>') }), (e) => isServerPushError(e, 'SP_ERR_INVALID_FRAME'));
  assert.throws(() => server.live().push({ contentType: 'image/png', body: frames[1]! }), (e) => isServerPushError(e, 'SP_ERR_INVALID_FRAME'));
  assert.throws(() => server.live().push({ contentType: 'text/plain', body: Buffer.from(`x--${server.live().framing.boundary}`) }), (e) => isServerPushError(e, 'SP_ERR_BOUNDARY_IN_BODY'));
  server.live().push({ contentType: 'text/plain; charset=utf-8', body: Buffer.from('plain text is fine') });
  server.live().push(jpeg(2));
  const parts = await viewer.reader.waitFor(3);
  assert.equal(parts[1]!.body.toString(), 'plain text is fine');
  assert.ok(parts[2]!.body.equals(frames[2]!));
  assert.equal(server.live().counters.partsRefused, 4);
  viewer.close();
});

test('an <img> request (Accept: image/*) gets eager framing: the next headers right after each frame', async (t) => {
  const { server, url } = await pushServer();
  t.after(() => server.close());
  server.live().push(jpeg(0));
  // Raw socket: eager headers carry no Content-Length, which the strict reader rightly refuses.
  const socket = connect(Number(url.port), url.hostname);
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => { text += chunk; });
  socket.write('GET /stream HTTP/1.1\r\nHost: x\r\nAccept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8\r\n\r\n');
  await eventually(() => text.includes('\xff\xd9'), 2000);
  await sleep(50);
  const boundary = server.live().framing.boundary;
  // After the first frame: the delimiter and the next part's header block are already there.
  assert.ok(text.endsWith(`\xff\xd9\r\n--${boundary}\r\nContent-Type: image/jpeg\r\n\r\n`), JSON.stringify(text.slice(-120)));
  server.live().push(jpeg(1));
  await eventually(() => text.split('\xff\xd9').length === 3, 2000);
  assert.ok(text.endsWith(`\xff\xd9\r\n--${boundary}\r\nContent-Type: image/jpeg\r\n\r\n`));
  assert.ok(text.includes(`Content-Type: image/jpeg\r\n\r\n${frames[1]!.toString('latin1')}\r\n--${boundary}\r\n`));
  socket.destroy();
});

test('a viewer that reads nothing costs bounded memory, is dropped after the stall timeout, and never delays the others', async (t) => {
  const big = (await makeJpegFrames(4, '1280x720')).map((body) => ({ contentType: 'image/jpeg', body }));
  const { server, url, logger } = await pushServer({ stallTimeoutMs: 1500 });
  t.after(() => server.close());
  server.live().push(big[0]!);
  const stuck = connect(Number(url.port), url.hostname);
  stuck.on('error', () => {});
  stuck.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
  stuck.pause();
  await eventually(() => server.live().viewers === 1);
  const reader = await openStream(new URL('stream', url));
  // Push until the stuck viewer's kernel buffers are full and the stall timeout has passed.
  let pushed = 1;
  const started = Date.now();
  while (server.live().counters.viewersDropped === 0 && Date.now() - started < 15_000) {
    server.live().push(big[pushed % 4]!);
    pushed++;
    await sleep(10);
  }
  assert.equal(server.live().counters.viewersDropped, 1, 'the stuck viewer was dropped');
  await eventually(() => reader.reader.parts.length >= pushed * 0.95, 3000);
  assert.ok(reader.reader.parts.length >= pushed * 0.95, `the reading viewer got ${reader.reader.parts.length} of ${pushed}`);
  assert.match(logger.lines.join('\n'), /SP_ERR_SLOW_CLIENT stream default: dropped a viewer that took no data for 1500 ms/);
  reader.close();
  stuck.destroy();
});

test('a viewer that reads in bursts is kept (latest wins), and dropped with a reset once it stops reading', async (t) => {
  const big = (await makeJpegFrames(4, '1280x720')).map((body) => ({ contentType: 'image/jpeg', body }));
  const { server, url } = await pushServer({ stallTimeoutMs: 700 });
  t.after(() => server.close());
  server.live().push(big[0]!);
  const slow = connect({ port: Number(url.port), host: url.hostname });
  let received = 0;
  slow.on('error', () => {});
  slow.on('data', (chunk: Buffer) => { received += chunk.length; });
  slow.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
  await eventually(() => server.live().viewers === 1);
  // 100 frames a second: more than this viewer takes. It reads for 20 ms every 250 ms (well
  // inside the 700 ms timeout), so the kernel's buffers toward it fill and drain by turns.
  const pusher = setInterval(() => { server.live().push(big[server.live().counters.partsIn % 4]!); }, 10);
  t.after(() => clearInterval(pusher));
  const reading = setInterval(() => {
    slow.resume();
    setTimeout(() => slow.pause(), 20);
  }, 250);
  slow.pause();
  await sleep(3000);
  clearInterval(reading);
  assert.equal(server.live().counters.viewersDropped, 0, 'a viewer that keeps reading is not dropped');
  assert.equal(server.live().viewers, 1);
  assert.ok(received > 0);
  slow.pause();
  // Once it stops, the kernel's buffers fill (how long depends on the host's TCP settings), then
  // the timeout runs: the viewer is dropped, and with a TCP reset.
  assert.ok(await eventually(() => server.live().viewers === 0, 20_000), 'dropped once it stopped reading');
  assert.equal(server.live().counters.viewersDropped, 1);
  if (HAVE_SS) {
    // A plain close would leave the server's socket in FIN-WAIT-1, its megabytes still queued
    // toward a peer that takes nothing; a reset frees them at once.
    assert.deepEqual(serverSockets(Number(url.port), 'fin-wait-1'), [], 'reset, not closed with data queued');
  }
  slow.destroy();
});

/**
 * Fake setTimeout and performance.now() for the test `t`, moving together a millisecond at a time;
 * returns `advance(to)`, which moves both to `to` ms.
 */
function fakeClock(t: TestContext): (to: number) => void {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let now = 0;
  t.mock.method(performance, 'now', () => now);
  return (to) => {
    while (now < to) {
      now++;
      t.mock.timers.tick(1);
    }
  };
}

test('the stall timer: a viewer busy less than the timeout at a time is kept; one busy for the timeout is dropped', (t) => {
  const advance = fakeClock(t);
  const controller = new AbortController();
  let drain: () => void = () => {};
  let destroyed: string | undefined;
  let writes = 0;
  const sink: LiveSink = {
    signal: controller.signal,
    write: () => { writes++; return false; }, // every write leaves the viewer busy until drain()
    onDrain: (listener) => { drain = listener; },
    destroy: (reason) => { destroyed = reason ?? 'closed'; controller.abort(); },
  };
  let stalls = 0;
  const framing = new MultipartFraming('b0undary');
  const subscriber = new Subscriber(sink, framing, { eager: false, maxFps: 0, stallTimeoutMs: 700, onStall: () => { stalls++; } });
  let seq = 0;
  const offer = () => subscriber.offer(encodePart(framing, { contentType: 'text/plain', body: new Uint8Array([1]) }, ++seq));
  offer(); // busy from 0
  advance(500);
  drain(); // took it after 500 ms
  offer(); // busy again from 500
  advance(700); // the first timer fires: busy for 200 ms only, so it re-arms
  assert.equal(stalls, 0);
  advance(1000);
  drain();
  offer(); // busy from 1000, and never drained again
  offer(); // latest wins: replaces the pending part, no write
  assert.equal(writes, 3);
  assert.equal(subscriber.partsSkipped, 0);
  advance(1699);
  assert.equal(stalls, 0, 'busy for 699 ms: kept');
  assert.equal(destroyed, undefined);
  advance(1701);
  assert.equal(stalls, 1, 'busy for 701 ms: dropped');
  assert.equal(destroyed, 'stalled');
});

test('a stream request pipelined behind a slower response on one connection is answered after it, in order', async (t) => {
  const { createServer } = await import('node:http');
  const { liveHandler } = await import('../src/adapters/node-live-handler.ts');
  const stream = new LiveStream({ name: 'pipelined' });
  const live = liveHandler(stream);
  const server = createServer((req, res) => {
    // The first response takes a while, so the stream's response waits in Node's queue.
    if (req.url === '/slow') setTimeout(() => res.end('slow answer'), 150);
    else live(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => { server.closeAllConnections(); server.close(); });
  stream.push(jpeg(0));
  const socket = connect((server.address() as { port: number }).port, '127.0.0.1');
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => { text += chunk; });
  socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /cam HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n');
  await eventually(() => stream.viewers === 1, 2000);
  stream.push(jpeg(1));
  await eventually(() => text.split('\xff\xd9').length === 3, 2000);
  socket.destroy();
  const second = text.indexOf('HTTP/1.1 200', 1);
  assert.ok(text.startsWith('HTTP/1.1 200') && second > 0, text.slice(0, 200));
  assert.ok(text.slice(0, second).endsWith('\r\n\r\nslow answer'), JSON.stringify(text.slice(0, second)));
  const response = text.slice(second);
  const boundary = stream.framing.boundary;
  assert.match(response, new RegExp(`content-type: multipart/x-mixed-replace; ?boundary=${boundary}`, 'i'));
  const body = response.slice(response.indexOf('\r\n\r\n') + 4);
  const head = (i: number) => `Content-Type: image/jpeg\r\nContent-Length: ${frames[i]!.length}\r\n`;
  assert.ok(body.startsWith(`--${boundary}\r\n${head(0)}`), JSON.stringify(body.slice(0, 120)));
  assert.ok(body.includes(`${frames[0]!.toString('latin1')}\r\n--${boundary}\r\n${head(1)}`));
  assert.ok(body.endsWith(`${frames[1]!.toString('latin1')}\r\n--${boundary}\r\n`));
});

test('liveResponse() serves a stream as a web Response, read back with readParts', async () => {
  const stream = new LiveStream({ name: 'web' });
  assert.equal(liveResponse(stream).status, 503);
  stream.push(jpeg(5));
  const controller = new AbortController();
  const request = new Request('http://example/stream', { signal: controller.signal });
  const response = liveResponse(stream, request);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type')!, /^multipart\/x-mixed-replace; boundary=serverpush-/);
  const received: Uint8Array[] = [];
  const reading = (async () => {
    for await (const part of readParts(response)) {
      received.push(part.body);
      if (received.length === 1) stream.push(jpeg(6));
      if (received.length === 2) break;
    }
  })();
  await reading;
  assert.ok(Buffer.from(received[0]!).equals(frames[5]!));
  assert.ok(Buffer.from(received[1]!).equals(frames[6]!));
  assert.ok(await eventually(() => stream.viewers === 0, 1000), 'viewer released when the body is cancelled');
});

test('a synced slideshow shows every viewer the same document at the same moment', async (t) => {
  const dir = await makeFolder({ '1.txt': 'one', '2.txt': 'two', '3.txt': 'three' });
  t.after(() => removeFolder(dir));
  const { server, url } = await startServer({ streams: { default: { type: 'slideshow', dir, intervalMs: 300, sync: true } } });
  t.after(() => server.close());
  await eventually(() => server.live().latest !== undefined);
  const early = await openStream(new URL('stream', url));
  await sleep(450);
  const late = await openStream(new URL('stream', url));
  const [lateFirst] = await late.reader.waitFor(1);
  assert.equal(lateFirst!.body.toString(), early.reader.parts.at(-1)!.body.toString(), 'the newcomer sees the current document at once');
  await sleep(700);
  const earlyTail = early.reader.parts.slice(-2);
  const lateTail = late.reader.parts.slice(-2);
  assert.deepEqual(lateTail.map((p) => p.body.toString()), earlyTail.map((p) => p.body.toString()));
  lateTail.forEach((part, i) => assert.ok(Math.abs(part.receivedAt - earlyTail[i]!.receivedAt) < 50, 'same moment'));
  assert.deepEqual([...new Set(early.reader.parts.map((p) => p.body.toString()))].sort(), ['one', 'three', 'two']);
  early.close();
  late.close();
});

test('liveHandler(stream) serves a live stream from any Node http server (and so Express)', async (t) => {
  const { createServer } = await import('node:http');
  const { liveHandler } = await import('../src/adapters/node-live-handler.ts');
  const stream = new LiveStream({ name: 'plain' });
  const server = createServer(liveHandler(stream));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => { server.closeAllConnections(); server.close(); });
  const url = new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}/cam`);
  const refused = await fetchText(url);
  assert.equal(refused.status, 503);
  assert.equal(JSON.parse(refused.body).error, 'SP_ERR_NO_FRAME');
  stream.push(jpeg(7));
  const viewer = await openStream(url);
  assert.ok((await viewer.reader.waitFor(1))[0]!.body.equals(frames[7]!));
  stream.push(jpeg(8));
  assert.ok((await viewer.reader.waitFor(2))[1]!.body.equals(frames[8]!));
  assert.equal((await fetchText(new URL('?fps=-1', url))).status, 400);
  viewer.close();
  assert.ok(await eventually(() => stream.viewers === 0, 1000));
});

test('liveHandler also serves an HTTP/2 server (compatibility API), through the response, never the shared socket', async (t) => {
  const http2 = await import('node:http2');
  const { liveHandler } = await import('../src/adapters/node-live-handler.ts');
  const stream = new LiveStream({ name: 'h2' });
  stream.push(jpeg(0));
  // The compatibility API's request and response quack like node:http's; the types differ.
  const handler = liveHandler(stream) as unknown as (req: import('node:http2').Http2ServerRequest, res: import('node:http2').Http2ServerResponse) => void;
  const server = http2.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
  t.after(() => { session.destroy(); server.close(); });
  // Two viewers on one session: each response is an HTTP/2 stream of the one shared connection.
  const viewers = await Promise.all([0, 1].map(async () => {
    const request = session.request({ ':path': '/cam' });
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    const headers = await new Promise<import('node:http2').IncomingHttpHeaders>((resolve) => request.once('response', resolve));
    return { request, chunks, headers };
  }));
  await eventually(() => stream.viewers === 2);
  stream.push(jpeg(1));
  for (const { request, chunks, headers } of viewers) {
    assert.equal(headers[':status'], 200);
    assert.equal(headers['content-type'], `multipart/x-mixed-replace; boundary=${stream.framing.boundary}`);
    assert.ok(await eventually(() => Buffer.concat(chunks).includes(frames[1]!), 2000), 'the second frame arrived');
    const parts = [];
    for await (const part of readParts((async function* () { yield Buffer.concat(chunks); })(), { boundary: stream.framing.boundary })) parts.push(part);
    assert.equal(parts.length, 2);
    assert.ok(Buffer.from(parts[0]!.body).equals(frames[0]!) && Buffer.from(parts[1]!.body).equals(frames[1]!));
    request.close();
  }
});

test('a part is encoded to the same bytes whether its body is copied into one buffer (small) or written as it is (large)', async (t) => {
  const { encodePart, CONTIGUOUS_MAX_BODY } = await import('../src/hub/encoded-part.ts');
  const { MultipartFraming } = await import('../src/protocol/encoder.ts');
  const framing = new MultipartFraming('b0undary');
  const join = (chunks: readonly Uint8Array[]) => Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.length)));
  for (const size of [1, CONTIGUOUS_MAX_BODY, CONTIGUOUS_MAX_BODY + 1, 300_000]) {
    const body = Buffer.alloc(size, 0x61);
    const part = encodePart(framing, { contentType: 'text/plain', body, timestamp: 1_700_000_000_000 }, 1);
    const head = `Content-Type: text/plain\r\nContent-Length: ${size}\r\nX-Timestamp: 1700000000.000000\r\n\r\n`;
    assert.equal(join(part.standard).toString('latin1'), `${head}${body.toString('latin1')}\r\n--b0undary\r\n`, `standard, ${size} bytes`);
    assert.equal(join(part.eager).toString('latin1'), `${body.toString('latin1')}\r\n--b0undary\r\nContent-Type: text/plain\r\n\r\n`, `eager, ${size} bytes`);
    assert.equal(part.standard.length, size > CONTIGUOUS_MAX_BODY ? 3 : 1, `one write for ${size} bytes only when small`);
    assert.ok(Buffer.from(part.body).equals(body));
    // A viewer of that part, standard and eager, gets exactly those bytes after the opening.
    const stream = new LiveStream({ boundary: 'b0undary', checkImages: false });
    stream.push({ contentType: 'text/plain', body, timestamp: 1_700_000_000_000 });
    for (const eager of [false, true]) {
      const got: Uint8Array[] = [];
      const closed = new AbortController();
      t.after(() => closed.abort());
      stream.subscribe({ write: (chunks) => { got.push(...chunks); return true; }, onDrain: () => {}, signal: closed.signal, destroy: () => closed.abort() }, { eager });
      const expected = eager ? `--b0undary\r\n${head}${body.toString('latin1')}\r\n--b0undary\r\nContent-Type: text/plain\r\n\r\n` : `--b0undary\r\n${head}${body.toString('latin1')}\r\n--b0undary\r\n`;
      assert.equal(join(got).toString('latin1'), expected, `${eager ? 'eager' : 'standard'} viewer, ${size} bytes`);
    }
  }
});

/** A Node server with `liveHandler(stream)` on every path; `wrap` runs first on each request. */
async function handlerServer(t: { after: (fn: () => void) => void }, stream: LiveStream, wrap: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void = () => {}) {
  const { createServer } = await import('node:http');
  const { liveHandler } = await import('../src/adapters/node-live-handler.ts');
  const handler = liveHandler(stream);
  const server = createServer((req, res) => {
    wrap(req, res);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => { server.closeAllConnections(); server.close(); });
  return (server.address() as { port: number }).port;
}

test('live bodies on HTTP/1 bypass ServerResponse.write; a response whose write is wrapped (compression, instrumentation) keeps getting every byte through it', async (t) => {
  const { ServerResponse } = await import('node:http');
  const stream = new LiveStream({ name: 'direct' });
  stream.push(jpeg(0));
  let prototypeWrites = 0;
  const original = ServerResponse.prototype.write;
  t.mock.method(ServerResponse.prototype, 'write', function (this: InstanceType<typeof ServerResponse>, ...args: Parameters<typeof original>) {
    prototypeWrites++;
    return original.apply(this, args);
  });
  const plainPort = await handlerServer(t, stream);
  let wrappedBytes = 0;
  const wrappedPort = await handlerServer(t, stream, (_req, res) => {
    const write = res.write.bind(res) as (chunk: Uint8Array) => boolean;
    res.write = ((chunk: Uint8Array) => { wrappedBytes += chunk.length; return write(chunk); }) as typeof res.write;
  });
  const plain = await openStream(`http://127.0.0.1:${plainPort}/cam`);
  await plain.reader.waitFor(1);
  for (let i = 1; i <= 3; i++) stream.push(jpeg(i));
  await plain.reader.waitFor(4);
  assert.equal(prototypeWrites, 0, 'a plain HTTP/1 live response writes straight to its socket');
  // serverpush's own server too.
  const { server, url } = await pushServer();
  t.after(() => server.close());
  server.live().push(jpeg(0));
  const own = await openStream(new URL('stream', url));
  server.live().push(jpeg(1));
  await own.reader.waitFor(2);
  own.close();
  assert.equal(prototypeWrites, 0, 'serverpush serve writes live bodies straight to the socket');
  // A raw client of the wrapped server: everything after the head went through the wrapper.
  const socket = connect(wrappedPort, '127.0.0.1');
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => { text += chunk; });
  socket.write('GET /cam HTTP/1.1\r\nHost: x\r\n\r\n');
  await eventually(() => stream.viewers === 1 && text.includes('\xff\xd9'), 2000);
  stream.push(jpeg(4));
  await eventually(() => text.split('\xff\xd9').length === 3, 2000);
  await sleep(50);
  socket.destroy();
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  assert.ok(body.includes(frames[4]!.toString('latin1')));
  assert.equal(wrappedBytes, body.length, 'every byte of the body went through the wrapped write');
});

test('NodeMultipartResponse sends no body for HEAD, even close-delimited', async (t) => {
  const { createServer } = await import('node:http');
  const { NodeMultipartResponse } = await import('../src/adapters/node-http.ts');
  const server = createServer((req, res) => {
    const sink = new NodeMultipartResponse(req, res);
    sink.start('b0undary', { closeDelimited: true });
    sink.write([Buffer.from('--b0undary\r\nContent-Type: text/plain\r\n\r\nBODY-ON-HEAD')]);
    setTimeout(() => sink.end(), 50);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const socket = connect((server.address() as { port: number }).port, '127.0.0.1');
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => { text += chunk; });
  socket.write('HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise((resolve) => socket.once('close', resolve));
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.ok(text.endsWith('\r\n\r\n'), JSON.stringify(text.slice(-60)));
  assert.doesNotMatch(text, /BODY-ON-HEAD/);
});

test('over HTTPS a stalled viewer is dropped without harm, and the reading one goes on', async (t) => {
  const https = await import('node:https');
  const tls = await import('node:tls');
  const { readFileSync } = await import('node:fs');
  const { liveHandler } = await import('../src/adapters/node-live-handler.ts');
  const fixture = (name: string) => readFileSync(new URL(`fixtures/tls/${name}`, import.meta.url));
  const stream = new LiveStream({ name: 'tls', checkImages: false, stallTimeoutMs: 700 });
  const body = (i: number) => Buffer.alloc(150_000, 0x61 + (i % 3));
  stream.push({ contentType: 'text/plain', body: body(0) });
  const server = https.createServer({ key: fixture('key.pem'), cert: fixture('cert.pem') }, liveHandler(stream));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => { server.closeAllConnections(); server.close(); });
  const port = (server.address() as { port: number }).port;
  const open = () => {
    const socket = tls.connect({ port, host: '127.0.0.1', ca: fixture('cert.pem'), servername: 'localhost' });
    socket.on('error', () => {});
    socket.write('GET /cam HTTP/1.1\r\nHost: localhost\r\n\r\n');
    return socket;
  };
  const reader = open();
  let read = 0;
  reader.on('data', (chunk: Buffer) => { read += chunk.length; });
  const stalled = open();
  stalled.once('data', () => stalled.pause());
  await eventually(() => stream.viewers === 2, 3000);
  const pusher = setInterval(() => stream.push({ contentType: 'text/plain', body: body(stream.counters.partsIn) }), 10);
  t.after(() => clearInterval(pusher));
  assert.ok(await eventually(() => stream.counters.viewersDropped === 1, 20_000), 'the stalled viewer was dropped');
  await eventually(() => stream.viewers === 1, 2000);
  assert.equal(stream.viewers, 1, 'the reader is still there');
  const before = read;
  await sleep(300);
  assert.ok(read > before, 'and still reading');
  reader.destroy();
  stalled.destroy();
});

test('over HTTP/2 a stalled viewer is dropped alone: the other stream of the same connection goes on', async (t) => {
  const http2 = await import('node:http2');
  const { liveHandler } = await import('../src/adapters/node-live-handler.ts');
  const stream = new LiveStream({ name: 'h2stall', checkImages: false, stallTimeoutMs: 500 });
  const body = (i: number) => Buffer.alloc(50_000, 0x61 + (i % 3));
  stream.push({ contentType: 'text/plain', body: body(0) });
  const handler = liveHandler(stream) as unknown as (req: import('node:http2').Http2ServerRequest, res: import('node:http2').Http2ServerResponse) => void;
  const server = http2.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
  session.on('error', () => {});
  t.after(() => { session.destroy(); server.close(); });
  const reading = session.request({ ':path': '/cam' });
  reading.on('error', () => {});
  let read = 0;
  reading.on('data', (chunk: Buffer) => { read += chunk.length; });
  const stalled = session.request({ ':path': '/cam' });
  stalled.on('error', () => {});
  stalled.pause();
  await eventually(() => stream.viewers === 2, 3000);
  const pusher = setInterval(() => stream.push({ contentType: 'text/plain', body: body(stream.counters.partsIn) }), 20);
  t.after(() => clearInterval(pusher));
  assert.ok(await eventually(() => stream.counters.viewersDropped === 1, 10_000), 'the stalled viewer was dropped');
  const before = read;
  await sleep(300);
  assert.equal(session.destroyed || session.closed, false, 'the connection is still open');
  assert.ok(read > before, 'the other viewer still reads');
  assert.equal(stream.viewers, 1);
});

test('server.close() ends each live viewer cleanly: the announced part (the latest frame) and the closing delimiter', async () => {
  const { server, url } = await pushServer();
  server.live().push(jpeg(0));
  const boundary = server.live().framing.boundary;
  const viewer = (accept: string) => {
    const socket = connect(Number(url.port), url.hostname);
    const got = { text: '', closed: false };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => { got.text += chunk; });
    socket.on('close', () => { got.closed = true; });
    socket.write(`GET /stream HTTP/1.1\r\nHost: x\r\nAccept: ${accept}\r\n\r\n`);
    return got;
  };
  const standard = viewer('*/*');
  const eager = viewer('image/*'); // an <img>: eager framing
  await eventually(() => server.live().viewers === 2 && standard.text.includes('\xff\xd9') && eager.text.includes('\xff\xd9'));
  server.live().push(jpeg(1));
  await eventually(() => standard.text.split('\xff\xd9').length === 3 && eager.text.split('\xff\xd9').length === 3);
  await server.close();
  assert.ok(await eventually(() => standard.closed && eager.closed, 3000));
  const close = `\r\n--${boundary}--\r\n`;
  const last = frames[1]!.toString('latin1');
  // Standard: after frame 1's delimiter, frame 1 again with full headers, then the close.
  assert.ok(standard.text.endsWith(`${last}${close}`), JSON.stringify(standard.text.slice(-80)));
  assert.equal(standard.text.split(last).length, 3, 'frame 1 twice: pushed, then as the announced last part');
  const tail = standard.text.slice(standard.text.lastIndexOf(`${last}\r\n--${boundary}\r\n`) + last.length);
  assert.match(tail, new RegExp(`^\\r\\n--${boundary}\\r\\nContent-Type: image/jpeg\\r\\nContent-Length: ${frames[1]!.length}\\r\\nX-Timestamp: [0-9.]+\\r\\n\\r\\n`));
  // Eager: the announced header block went out after frame 1, so only the body and the close follow.
  assert.ok(eager.text.endsWith(`${last}\r\n--${boundary}\r\nContent-Type: image/jpeg\r\n\r\n${last}${close}`), JSON.stringify(eager.text.slice(-80)));
  // A frame pushed after the end goes nowhere.
  const before = standard.text.length;
  server.live().push(jpeg(2));
  await sleep(50);
  assert.equal(standard.text.length, before);
});

test('closeViewers() ends a liveResponse() body cleanly: readParts sees the last frame and the end', async () => {
  const stream = new LiveStream({ name: 'web-end' });
  stream.push(jpeg(3));
  const response = liveResponse(stream);
  const parts: Buffer[] = [];
  const reading = (async () => {
    for await (const part of readParts(response)) {
      parts.push(Buffer.from(part.body));
      if (parts.length === 2) stream.closeViewers();
    }
  })();
  await eventually(() => parts.length === 1);
  stream.push(jpeg(4));
  await reading;
  assert.equal(parts.length, 3, 'frame 3, frame 4, then frame 4 again as the last part');
  assert.ok(parts[0]!.equals(frames[3]!) && parts[1]!.equals(frames[4]!) && parts[2]!.equals(frames[4]!));
  await eventually(() => stream.viewers === 0);
  assert.equal(stream.viewers, 0);
});

test('after closeViewers() a push writes nothing more: the body ends with the closing delimiter', async (t) => {
  const stream = new LiveStream({ name: 'after-end' });
  stream.push(jpeg(0));
  const port = await handlerServer(t, stream);
  const socket = connect(port, '127.0.0.1');
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => { text += chunk; });
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.write('GET /cam HTTP/1.1\r\nHost: x\r\n\r\n');
  await eventually(() => stream.viewers === 1 && text.includes('\xff\xd9'));
  stream.closeViewers();
  stream.push(jpeg(1)); // at once, before the response has closed
  await closed;
  assert.ok(text.endsWith(`${frames[0]!.toString('latin1')}\r\n--${stream.framing.boundary}--\r\n`), JSON.stringify(text.slice(-60)));
  assert.ok(!text.includes(frames[1]!.toString('latin1')), 'the frame pushed after the end went nowhere');
});

test('end(): a viewer that does not take its last bytes is dropped after the stall timeout; one that does is not', (t) => {
  const advance = fakeClock(t);
  const framing = new MultipartFraming('b0undary');
  const viewer = () => {
    const controller = new AbortController();
    const seen = { destroyed: undefined as string | undefined, ended: [] as Uint8Array[], stalls: 0 };
    const sink: LiveSink = {
      signal: controller.signal,
      write: () => false, // busy until it drains, which it never does
      onDrain: () => {},
      destroy: (reason) => { seen.destroyed = reason ?? 'closed'; controller.abort(); },
      end: (chunks) => { seen.ended.push(...chunks); },
    };
    const subscriber = new Subscriber(sink, framing, { eager: false, maxFps: 0, stallTimeoutMs: 700, onStall: () => { seen.stalls++; } });
    return { subscriber, seen, controller };
  };
  const part = encodePart(framing, { contentType: 'text/plain', body: new Uint8Array([7]) }, 1);
  const stuck = viewer();
  const taking = viewer();
  stuck.subscriber.offer(part); // busy from 0
  taking.subscriber.offer(part);
  advance(300);
  stuck.subscriber.end(part);
  taking.subscriber.end(part);
  taking.controller.abort(); // this one's response finished and closed
  assert.equal(Buffer.concat(stuck.seen.ended).toString('latin1').endsWith('\r\n--b0undary--\r\n'), true);
  advance(699);
  assert.equal(stuck.seen.destroyed, undefined, 'busy for 699 ms: kept');
  advance(701);
  assert.equal(stuck.seen.destroyed, 'stalled', 'busy for 701 ms, end included: dropped');
  assert.equal(stuck.seen.stalls, 1);
  assert.equal(taking.seen.destroyed, undefined);
  assert.equal(taking.seen.stalls, 0);
});
