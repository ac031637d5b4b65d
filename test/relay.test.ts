import { test, before } from 'node:test';
import { missing, needs } from './helpers/tools.ts';
import assert from 'node:assert/strict';
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { makeJpegFrames } from './helpers/frames.ts';
import { startServer, openStream, fetchText, eventually, sleep } from './helpers/server.ts';

let frames: Buffer[] = [];
before(async () => { if (!missing('ffmpeg')) frames = await makeJpegFrames(10); });

/** An upstream serverpush with a push stream, fed every 30 ms while `feeding`. */
async function upstream(port = 0) {
  const { server, url } = await startServer({ port, streams: { default: { type: 'push' } } });
  let i = 0;
  server.live().push({ contentType: 'image/jpeg', body: frames[i++]! });
  const timer = setInterval(() => server.live().push({ contentType: 'image/jpeg', body: frames[i++ % frames.length]! }), 30);
  return { server, url, stop: async () => { clearInterval(timer); await server.close(100); } };
}

function relayOf(url: URL, extra: Record<string, unknown> = {}) {
  return startServer({ streams: { default: { type: 'relay', url: new URL('stream', url).href, retryDelayMs: 100, upstreamStallMs: 1000, ...extra } } });
}

test('a relay re-serves an upstream stream to many viewers over one upstream connection', needs('ffmpeg'), async (t) => {
  const up = await upstream();
  t.after(() => up.stop());
  const { server, url } = await relayOf(up.url);
  t.after(() => server.close());
  assert.ok(await eventually(() => server.live().latest !== undefined, 3000));
  const viewers = await Promise.all(Array.from({ length: 5 }, () => openStream(new URL('stream', url))));
  for (const viewer of viewers) {
    const parts = await viewer.reader.waitFor(10, 3000);
    assert.ok(parts.every((p) => frames.some((f) => f.equals(p.body))), 'frames arrive intact');
  }
  assert.equal(up.server.status.clients, 1, 'one upstream connection for five viewers');
  for (const viewer of viewers) viewer.close();
});

test('when the upstream dies the relay retries; new viewers get 503 SP_ERR_SOURCE_DOWN; when it comes back frames flow again', needs('ffmpeg'), async (t) => {
  let up = await upstream();
  const port = Number(up.url.port);
  const { server, url, logger } = await relayOf(up.url);
  t.after(() => server.close());
  assert.ok(await eventually(() => server.live().latest !== undefined, 3000), `no frame: ${logger.lines.join('; ')}`);
  const viewer = await openStream(new URL('stream', url));
  await viewer.reader.waitFor(5, 3000);
  await up.stop();
  assert.ok(await eventually(() => !server.live().source.up, 3000), 'source marked down');
  const refused = await fetchText(new URL('stream', url));
  assert.equal(refused.status, 503);
  assert.equal(JSON.parse(refused.body).error, 'SP_ERR_SOURCE_DOWN');
  assert.match(logger.lines.join('\n'), /warn SP_ERR_SOURCE_FAILED stream default: relay http:\/\/127\.0\.0\.1:\d+\/stream: .*; retrying in \d+ ms/);
  const before = viewer.reader.parts.length;
  up = await upstream(port);
  t.after(() => up.stop());
  await viewer.reader.waitFor(before + 5, 5000);
  assert.ok(server.live().source.up);
  assert.equal((await fetch(new URL('snapshot', url))).status, 200);
  viewer.close();
});

test('serveLastWhenDown: while the source is down new viewers get the last frame', needs('ffmpeg'), async (t) => {
  const up = await upstream();
  const { server, url } = await relayOf(up.url, { serveLastWhenDown: true });
  t.after(() => server.close());
  assert.ok(await eventually(() => server.live().latest !== undefined, 3000));
  await up.stop();
  assert.ok(await eventually(() => !server.live().source.up, 3000));
  const viewer = await openStream(new URL('stream', url));
  const [part] = await viewer.reader.waitFor(1, 1000);
  assert.ok(part!.body.equals(server.live().latest!.body as Buffer));
  viewer.close();
});

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function badUpstream(handler: Handler): Promise<{ server: Server; url: URL }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}/`) };
}

const BAD: Array<[string, Handler, RegExp]> = [
  ['answers an error status', (_req, res) => { res.writeHead(404); res.end('nope'); }, /SP_ERR_SOURCE_FAILED .*404/],
  ['answers HTML', (_req, res) => { res.writeHead(200, { 'Content-Type': 'text/html' }); res.end('<html>login</html>'); }, /SP_ERR_SOURCE_FAILED .*(not multipart|text\/html)/i],
  ['answers multipart without a boundary', (_req, res) => { res.writeHead(200, { 'Content-Type': 'multipart/x-mixed-replace' }); res.end(); }, /SP_ERR_SOURCE_FAILED .*boundary/i],
  ['stalls', (_req, res) => { res.writeHead(200, { 'Content-Type': 'multipart/x-mixed-replace; boundary=b' }); res.write('--b\r\n'); }, /SP_ERR_TIMEOUT .*upstream sent nothing for 1000 ms/],
];
for (const [name, handler, pattern] of BAD) {
  test(`an upstream that ${name} gets a clear logged error and a retry; viewers get a clear 503`, async (t) => {
    let requests = 0;
    const bad = await badUpstream((req, res) => { requests++; handler(req, res); });
    t.after(() => { bad.server.closeAllConnections(); bad.server.close(); });
    // idleTimeoutMs 0: keep retrying although nobody watches.
    const { server, url, logger } = await relayOf(bad.url, { idleTimeoutMs: 0 });
    t.after(() => server.close());
    assert.ok(await eventually(() => requests >= 2, 5000), `retried (${requests} requests)`);
    assert.match(logger.lines.join('\n'), pattern);
    const response = await fetchText(new URL('stream', url));
    assert.equal(response.status, 503);
    assert.match(JSON.parse(response.body).error, /SP_ERR_(SOURCE_DOWN|NO_FRAME)/);
  });
}

test('the relay stops pulling when nobody watches and reconnects for the next viewer', needs('ffmpeg'), async (t) => {
  const up = await upstream();
  t.after(() => up.stop());
  const { server, url } = await relayOf(up.url, { idleTimeoutMs: 300 });
  t.after(() => server.close());
  assert.ok(await eventually(() => server.live().latest !== undefined, 3000));
  const viewer = await openStream(new URL('stream', url));
  await viewer.reader.waitFor(3, 3000);
  viewer.close();
  assert.ok(await eventually(() => up.server.status.clients === 0, 3000), 'upstream released after the idle timeout');
  await sleep(200);
  assert.equal(up.server.status.clients, 0);
  const next = await openStream(new URL('stream', url));
  await next.reader.waitFor(4, 3000);
  assert.equal(up.server.status.clients, 1);
  next.close();
});

test('an idle relay whose upstream fails stops retrying, and a request for the stream wakes it', needs('ffmpeg'), async (t) => {
  let requests = 0;
  const bad = await badUpstream((_req, res) => { requests++; res.writeHead(502); res.end(); });
  t.after(() => { bad.server.closeAllConnections(); bad.server.close(); });
  const { server, url } = await relayOf(bad.url, { idleTimeoutMs: 300 });
  t.after(() => server.close());
  assert.ok(await eventually(() => requests === 1, 2000));
  await sleep(600);
  assert.equal(requests, 1, 'no retries while nobody asks');
  assert.equal((await fetchText(new URL('snapshot', url))).status, 503);
  assert.ok(await eventually(() => requests === 2, 2000), 'the request woke the relay');
});
