/** The adapters: liveHandler on Node http/https/http2, liveResponse as a web Response, NodeMultipartResponse. */
import { missing, needs } from './helpers/tools.ts';
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { makeJpegFrames } from './helpers/frames.ts';
import { eventually, fetchText, openStream, sleep, startServer } from './helpers/server.ts';
import { streamHeaders } from '../src/adapters/serve.ts';
import { LiveStream } from '../src/hub/live-stream.ts';
import { liveResponse } from '../src/adapters/fetch.ts';
import { liveHandler } from '../src/adapters/node-http.ts';
import { readParts } from '../src/protocol/read-parts.ts';

let frames: Buffer[] = [];
before(async () => { if (!missing('ffmpeg')) frames = await makeJpegFrames(40); });
const jpeg = (i: number) => ({ contentType: 'image/jpeg', body: frames[i % frames.length]! });

test('a stream request pipelined behind a slower response on one connection is answered after it, in order', needs('ffmpeg'), async (t) => {
  const { createServer } = await import('node:http');
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

test('liveResponse() serves a stream as a web Response, read back with readParts', needs('ffmpeg'), async () => {
  const stream = new LiveStream({ name: 'web' });
  assert.equal((await liveResponse(stream)).status, 503);
  stream.push(jpeg(5));
  const controller = new AbortController();
  const request = new Request('http://example/stream', { signal: controller.signal });
  const response = await liveResponse(stream, request);
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

test('liveResponse() answers like the Node server: same headers, ?raw=1, eager framing for an <img>, HEAD, 400 for a bad ?fps', needs('ffmpeg'), async () => {
  const stream = new LiveStream({ name: 'web-negotiation', boundary: 'b0undary' });
  stream.push(jpeg(1));
  const request = (query: string, init: RequestInit = {}) => new Request(`http://example/stream${query}`, init);
  const standard = await liveResponse(stream, request(''));
  const got: Record<string, string> = {};
  standard.headers.forEach((value, name) => { got[name] = value; });
  assert.deepEqual(got, Object.fromEntries(Object.entries(streamHeaders('b0undary', { live: true })).map(([k, v]) => [k.toLowerCase(), v])));
  assert.equal(standard.headers.get('accept-ranges'), 'none');
  const raw = await liveResponse(stream, request('?raw=1'));
  assert.equal(raw.headers.get('content-type'), 'application/octet-stream');
  assert.equal(raw.headers.get('x-multipart-boundary'), 'b0undary');
  const head = await liveResponse(stream, request('', { method: 'HEAD' }));
  assert.equal(head.status, 200);
  assert.equal(head.body, null);
  const bad = await liveResponse(stream, request('?fps=abc'));
  assert.equal(bad.status, 400);
  assert.equal((await bad.json() as { error: string }).error, 'SP_ERR_BAD_REQUEST');
  // An <img> load gets the next part's headers right after each frame (eager framing).
  const img = await liveResponse(stream, request('', { headers: { Accept: 'image/avif,image/webp,*/*' } }));
  const reader = img.body!.getReader();
  let text = '';
  while (!text.includes('\xff\xd9\r\n--b0undary\r\nContent-Type: image/jpeg\r\n\r\n')) {
    const { value, done } = await reader.read();
    assert.ok(!done, 'the stream went on');
    text += Buffer.from(value!).toString("latin1");
  }
  await reader.cancel();
  for (const response of [standard, raw]) await response.body!.cancel();
  assert.ok(await eventually(() => stream.viewers === 0, 1000));
});

test('liveHandler(stream) serves a live stream from any Node http server (and so Express)', needs('ffmpeg'), async (t) => {
  const { createServer } = await import('node:http');
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

test('liveHandler also serves an HTTP/2 server (compatibility API), through the response, never the shared socket', needs('ffmpeg'), async (t) => {
  const http2 = await import('node:http2');
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

/** A Node server with `liveHandler(stream)` on every path; `wrap` runs first on each request. */
async function handlerServer(t: { after: (fn: () => void) => void }, stream: LiveStream, wrap: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void = () => {}) {
  const { createServer } = await import('node:http');
  const handler = liveHandler(stream);
  const server = createServer((req, res) => {
    wrap(req, res);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => { server.closeAllConnections(); server.close(); });
  return (server.address() as { port: number }).port;
}

test('live bodies on HTTP/1 bypass ServerResponse.write; a response whose write is wrapped (compression, instrumentation) keeps getting every byte through it', needs('ffmpeg'), async (t) => {
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
  const { server, url } = await startServer({ streams: { default: { type: 'push' } } });
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
  // The plain viewer is still there: two viewers of the stream.
  await eventually(() => stream.viewers === 2 && text.includes('\xff\xd9'), 2000, 'the wrapped viewer and its first frame');
  stream.push(jpeg(4));
  await eventually(() => text.split('\xff\xd9').length === 3 && text.endsWith(`\r\n--${stream.framing.boundary}\r\n`), 2000, 'the second frame and the delimiter after it');
  socket.destroy();
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  assert.ok(body.includes(frames[4]!.toString('latin1')));
  assert.equal(wrappedBytes, body.length, 'every byte of the body went through the wrapped write');
});

test('NodeMultipartResponse sends no body for HEAD, even close-delimited', needs('ffmpeg'), async (t) => {
  const { createServer } = await import('node:http');
  const { NodeMultipartResponse } = await import('../src/adapters/node-http.ts');
  const server = createServer((req, res) => {
    const sink = new NodeMultipartResponse(req, res);
    sink.start(streamHeaders('b0undary', { live: true }), true);
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

test('over HTTPS a stalled viewer is dropped without harm, and the reading one goes on', needs('ffmpeg'), async (t) => {
  const https = await import('node:https');
  const tls = await import('node:tls');
  const { readFileSync } = await import('node:fs');
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

test('over HTTP/2 a stalled viewer is dropped alone: the other stream of the same connection goes on', needs('ffmpeg'), async (t) => {
  const http2 = await import('node:http2');
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

test('closeViewers() ends a liveResponse() body cleanly: readParts sees the last frame and the end', needs('ffmpeg'), async () => {
  const stream = new LiveStream({ name: 'web-end' });
  stream.push(jpeg(3));
  const response = await liveResponse(stream);
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

test('after closeViewers() a push writes nothing more: the body ends with the closing delimiter', needs('ffmpeg'), async (t) => {
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

test('a request refused because the server is stopping gets 503 SP_ERR_SHUTTING_DOWN, on Node and as a web Response', needs('ffmpeg'), async (t) => {
  const { createServer } = await import('node:http');
  const { serveNode } = await import('../src/adapters/node-http.ts');
  const { liveServable } = await import('../src/adapters/serve.ts');
  const stream = new LiveStream({ name: 'stopping' });
  stream.push(jpeg(0));
  const stop = new AbortController();
  stop.abort();
  const server = createServer((req, res) => void serveNode(liveServable(stream), req, res, new URLSearchParams(), { stop: stop.signal }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => { server.closeAllConnections(); server.close(); });
  const answer = await fetchText(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
  assert.equal(answer.status, 503);
  assert.equal(JSON.parse(answer.body).error, 'SP_ERR_SHUTTING_DOWN');
  const web = await liveResponse(stream, undefined, { stop: stop.signal });
  assert.equal(web.status, 503);
  assert.equal((await web.json() as { error: string }).error, 'SP_ERR_SHUTTING_DOWN');
  assert.equal(stream.viewers, 0);
});
