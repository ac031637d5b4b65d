/** Live streams as serverpush's own server serves them: routes, snapshots, ?fps, eager framing, stalls, shutdown. */
import { missing, needs } from './helpers/tools.ts';
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { makeJpegFrames } from './helpers/frames.ts';
import { startServer, openStream, fetchText, eventually, sleep, makeFolder, removeFolder } from './helpers/server.ts';
import { isServerPushError } from '../src/errors.ts';
import { serverSockets } from './helpers/sockets.ts';

let frames: Buffer[] = [];
before(async () => { if (!missing('ffmpeg')) frames = await makeJpegFrames(40); });
const jpeg = (i: number) => ({ contentType: 'image/jpeg', body: frames[i % frames.length]! });

async function pushServer(options: { dropDuplicates?: boolean; serveLastWhenDown?: boolean; stallTimeoutMs?: number } = {}) {
  return startServer({ streams: { default: { type: 'push', ...options }, cam: { type: 'push' } } });
}

test('a live stream answers 503 SP_ERR_NO_FRAME until its first frame, then a new viewer gets the latest frame at once', needs('ffmpeg'), async (t) => {
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

test('every viewer gets every frame, encoded once: the same bytes to each', needs('ffmpeg'), async (t) => {
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

test('GET /snapshot answers the latest frame at once as an ordinary response; the mjpg-streamer URLs are aliases', needs('ffmpeg'), async (t) => {
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

test('?fps=N caps a viewer at N frames per second and keeps the newest', needs('ffmpeg'), async (t) => {
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

test('dropDuplicates drops a frame identical to the previous one', needs('ffmpeg'), async (t) => {
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

test('push() refuses a corrupt frame with a coded error and viewers never see it', needs('ffmpeg'), async (t) => {
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

test('an <img> request (Accept: image/*) gets eager framing: the next headers right after each frame', needs('ffmpeg'), async (t) => {
  const { server, url } = await pushServer();
  t.after(() => server.close());
  server.live().push(jpeg(0));
  // Raw socket: eager headers carry no Content-Length, which the strict reader rightly refuses.
  const socket = connect(Number(url.port), url.hostname);
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => { text += chunk; });
  socket.write('GET /stream HTTP/1.1\r\nHost: x\r\nAccept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8\r\n\r\n');
  const boundary = server.live().framing.boundary;
  // After the first frame: the delimiter and the next part's header block, in the same write.
  await eventually(() => text.endsWith(`\xff\xd9\r\n--${boundary}\r\nContent-Type: image/jpeg\r\n\r\n`), 2000, `the next part's headers right after the first frame (have ${JSON.stringify(text.slice(-120))})`);
  server.live().push(jpeg(1));
  await eventually(() => text.split('\xff\xd9').length === 3, 2000);
  assert.ok(text.endsWith(`\xff\xd9\r\n--${boundary}\r\nContent-Type: image/jpeg\r\n\r\n`));
  assert.ok(text.includes(`Content-Type: image/jpeg\r\n\r\n${frames[1]!.toString('latin1')}\r\n--${boundary}\r\n`));
  socket.destroy();
});

test('a viewer that reads nothing costs bounded memory, is dropped after the stall timeout, and never delays the others', needs('ffmpeg'), async (t) => {
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
  assert.match(logger.lines.join('\n'), /SP_ERR_SLOW_CLIENT stream default: dropped a viewer \(127\.0\.0\.1\) that took no data for 1500 ms/);
  reader.close();
  stuck.destroy();
});

test('a viewer that reads in bursts is kept (latest wins), and dropped with a reset once it stops reading', needs('ffmpeg', 'ss'), async (t) => {
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
  // A plain close would leave the server's socket in FIN-WAIT-1, its megabytes still queued
  // toward a peer that takes nothing; a reset frees them at once.
  assert.deepEqual(serverSockets(Number(url.port), 'fin-wait-1'), [], 'reset, not closed with data queued');
  slow.destroy();
});

test('a synced slideshow shows every viewer the same document at the same moment', needs('ffmpeg'), async (t) => {
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

test('server.close() ends each live viewer cleanly: the announced part (the latest frame) and the closing delimiter', needs('ffmpeg'), async () => {
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

test('an unexpected failure inside a request is 500 SP_ERR_INTERNAL, logged once with its stack; the other viewers go on', needs('ffmpeg'), async (t) => {
  const { server, url, logger } = await pushServer();
  t.after(() => server.close());
  server.live().push(jpeg(0));
  const viewer = await openStream(new URL('stream', url));
  await viewer.reader.waitFor(1);
  // A fault in serverpush's own code (injected: the stream's availability check throws).
  const live = server.live('cam');
  live.push(jpeg(1));
  live.unavailable = () => { throw new TypeError('injected fault'); };
  const failed = await fetchText(new URL('stream/cam', url));
  assert.equal(failed.status, 500);
  assert.deepEqual(JSON.parse(failed.body), { error: 'SP_ERR_INTERNAL', message: 'internal error' });
  const lines = logger.lines.filter((line) => line.includes('injected fault'));
  assert.equal(lines.length, 1, 'logged once');
  assert.match(lines[0]!, /^error SP_ERR_INTERNAL request GET \/stream\/cam failed: TypeError: injected fault\n\s+at /);
  server.live().push(jpeg(2));
  assert.ok((await viewer.reader.waitFor(2))[1]!.body.equals(frames[2]!), 'the other viewer got the next frame');
  viewer.close();
});
