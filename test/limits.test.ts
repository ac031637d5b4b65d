/**
 * Limits (issue 13): viewers in all, per stream and per client address (503 / 429 with
 * Retry-After and a code), the maximum session duration, the request head's size and timeout
 * (slowloris) — and that a request timeout never cuts a stream being served.
 */
import { needs } from './helpers/tools.ts';
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { request } from 'node:http';
import { makeJpegFrames } from './helpers/frames.ts';
import { startServer, openStream, fetchText, eventually, sleep, EXAMPLES } from './helpers/server.ts';
import { createServer } from '../src/server/server.ts';
import { isServerPushError } from '../src/errors.ts';
import { runCli } from './helpers/cli.ts';
import { metricValue, parseMetrics } from './helpers/metrics.ts';

let frame: { contentType: string; body: Buffer };
before(async () => { frame = { contentType: 'image/jpeg', body: (await makeJpegFrames(1))[0]! }; });

/** A GET from a given local address; resolves the status, headers and body (the stream is left open). */
function getFrom(url: URL, localAddress: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress, agent: false }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('error', () => {});
      const done = () => resolve({ status: res.statusCode!, headers: res.headers, body, close: () => req.destroy() });
      if (res.statusCode === 200) res.once('data', done);
      else res.on('end', done);
    });
    req.on('error', reject);
    req.end();
  });
}

test('maxViewers: one viewer too many in all is answered 503 SP_ERR_TOO_MANY_VIEWERS with Retry-After; a place freed is taken again', needs('ffmpeg'), async (t) => {
  const { server, url } = await startServer({ limits: { maxViewers: 2 }, streams: { a: { type: 'push' }, b: { type: 'push' } } });
  t.after(() => server.close());
  server.live('a').push(frame);
  server.live('b').push(frame);
  const first = await openStream(new URL('stream/a', url));
  const second = await openStream(new URL('stream/b', url));
  const refused = await fetchText(new URL('stream/a', url));
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get('retry-after'), '5');
  const body = JSON.parse(refused.body);
  assert.equal(body.error, 'SP_ERR_TOO_MANY_VIEWERS');
  assert.match(body.message, /maxViewers 2/);
  // HEAD is answered without taking a place; a snapshot is not a viewer.
  assert.equal((await fetch(new URL('snapshot/a', url))).status, 200);
  first.close();
  await eventually(() => server.status.clients === 1);
  const third = await openStream(new URL('stream/a', url));
  assert.equal(third.response.statusCode, 200);
  const metrics = parseMetrics((await fetchText(new URL('metrics', url))).body);
  assert.equal(metricValue(metrics, 'serverpush_viewers_refused_total', { stream: 'a', code: 'SP_ERR_TOO_MANY_VIEWERS' }), 1);
  second.close();
  third.close();
});

test('maxViewersPerStream: 503 for that stream only; maxViewersPerClient: 429 SP_ERR_TOO_MANY_FROM_CLIENT for that address only', needs('ffmpeg'), async (t) => {
  const { server, url } = await startServer({ limits: { maxViewersPerStream: 2, maxViewersPerClient: 1 }, streams: { a: { type: 'push' }, b: { type: 'push' } } });
  t.after(() => server.close());
  server.live('a').push(frame);
  server.live('b').push(frame);
  const open: Array<{ close(): void }> = [];
  t.after(() => { for (const each of open) each.close(); });
  const one = await getFrom(new URL('stream/a', url), '127.0.0.1');
  open.push(one);
  assert.equal(one.status, 200);
  // The same address again: 429, whatever the stream.
  const again = await getFrom(new URL('stream/b', url), '127.0.0.1');
  assert.equal(again.status, 429);
  assert.equal(again.headers['retry-after'], '5');
  assert.equal(JSON.parse(again.body).error, 'SP_ERR_TOO_MANY_FROM_CLIENT');
  // Another address: let in, until the stream has its two.
  const two = await getFrom(new URL('stream/a', url), '127.0.0.2');
  open.push(two);
  assert.equal(two.status, 200);
  const full = await getFrom(new URL('stream/a', url), '127.0.0.3');
  assert.equal(full.status, 503);
  assert.equal(JSON.parse(full.body).error, 'SP_ERR_TOO_MANY_VIEWERS');
  assert.match(JSON.parse(full.body).message, /stream a has 2 viewer\(s\)/);
  const other = await getFrom(new URL('stream/b', url), '127.0.0.3');
  open.push(other);
  assert.equal(other.status, 200, 'the other stream has room');
});

test('requests admitted at the same time cannot exceed a limit together (slideshows open asynchronously)', async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, loop: true, intervalMs: 1000, limits: { maxViewers: 3 } });
  t.after(() => server.close());
  const controllers = Array.from({ length: 12 }, () => new AbortController());
  t.after(() => { for (const controller of controllers) controller.abort(); });
  const answers = await Promise.all(controllers.map((controller) => fetch(new URL('stream', url), { signal: controller.signal }).then((response) => response.status)));
  assert.equal(answers.filter((status) => status === 200).length, 3, `statuses: ${answers.join(' ')}`);
  assert.equal(answers.filter((status) => status === 503).length, 9);
  assert.equal(server.status.clients, 3);
});

test('maxSessionMs: the server ends a session once it lasted that long (reason limit, counted and logged), cleanly', needs('ffmpeg'), async (t) => {
  const { server, url, logger } = await startServer({ limits: { maxSessionMs: 600 }, streams: { cam: { type: 'push' } } });
  t.after(() => server.close());
  server.live('cam').push(frame);
  const viewer = await openStream(new URL('stream/cam', url));
  const pusher = setInterval(() => server.live('cam').push(frame), 50);
  t.after(() => clearInterval(pusher));
  const started = Date.now();
  await viewer.ended; // a clean end: the strict reader throws on a cut part
  const lasted = Date.now() - started;
  assert.ok(lasted >= 500 && lasted < 5000, `lasted ${lasted} ms`);
  assert.ok(viewer.reader.parts.length >= 3, `got ${viewer.reader.parts.length} frames`);
  const metrics = parseMetrics((await fetchText(new URL('metrics', url))).body);
  assert.equal(metricValue(metrics, 'serverpush_viewers_dropped_total', { stream: 'cam', reason: 'limit' }), 1);
  await eventually(() => logger.lines.some((line) => / reason=limit/.test(line)), 2000, 'the session line');
  // It may come back: the limit is per session.
  const back = await openStream(new URL('stream/cam', url));
  await back.reader.waitFor(1, 2000);
  back.close();
});

test('maxSessionMs ends a slideshow client and an eager live viewer cleanly too: the announced part, then the closing delimiter', needs('ffmpeg'), async (t) => {
  const { server, url } = await startServer({ limits: { maxSessionMs: 500 }, streams: { show: { type: 'slideshow', dir: EXAMPLES, intervalMs: 100, loop: true }, cam: { type: 'push' } } });
  t.after(() => server.close());
  const show = await openStream(new URL('stream/show', url));
  await show.ended; // the strict reader refuses a stream cut inside a part or without its close
  assert.ok(show.reader.parts.length >= 3, `got ${show.reader.parts.length} documents`);
  server.live('cam').push(frame);
  const pusher = setInterval(() => server.live('cam').push(frame), 50);
  t.after(() => clearInterval(pusher));
  // A browser's <img>: eager framing, the next part's headers sent right after each part.
  const eager = await rawExchange(url, (socket) => socket.write('GET /stream/cam HTTP/1.1\r\nHost: x\r\nAccept: image/avif,image/webp,*/*\r\n\r\n'));
  const boundary = server.live('cam').framing.boundary;
  assert.ok(eager.text.endsWith(`\xff\xd9\r\n--${boundary}--\r\n`), `ends with a whole frame and the close delimiter: ${JSON.stringify(eager.text.slice(-80))}`);
  assert.ok(eager.closedAfterMs >= 450, `after ${eager.closedAfterMs} ms`);
});

/** Opens a raw connection; resolves with what the server sent once it closed it, and when. */
function rawExchange(url: URL, write: (socket: Socket) => void): Promise<{ text: string; closedAfterMs: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(Number(url.port), url.hostname);
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => { text += chunk; });
    socket.on('error', () => {});
    socket.on('close', () => resolve({ text, closedAfterMs: Date.now() - started }));
    write(socket);
  });
}

test('a request head over maxHeaderBytes is answered 431; one sent too slowly (slowloris) is cut after headersTimeoutMs', async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, limits: { maxHeaderBytes: 4096, headersTimeoutMs: 1000, requestTimeoutMs: 1500 } });
  t.after(() => server.close());
  const large = await rawExchange(url, (socket) => socket.write(`GET /status HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`));
  assert.match(large.text, /^HTTP\/1\.1 431 /);
  const fits = await fetchText(new URL('status', url), { headers: { 'X-Big': 'a'.repeat(3000) } });
  assert.equal(fits.status, 200);
  // A header line every 300 ms, never the blank line that ends the head.
  let drip: ReturnType<typeof setInterval> | undefined;
  const slow = await rawExchange(url, (socket) => {
    socket.write('GET /status HTTP/1.1\r\nHost: x\r\n');
    let n = 0;
    drip = setInterval(() => { if (!socket.destroyed) socket.write(`X-Drip-${n++}: 1\r\n`); }, 300);
  });
  clearInterval(drip);
  assert.ok(slow.closedAfterMs >= 900 && slow.closedAfterMs < 6000, `cut after ${slow.closedAfterMs} ms`);
  assert.match(slow.text, /^HTTP\/1\.1 408 Request Timeout\r\n[^]*"error":"SP_ERR_TIMEOUT"/, 'answered 408 SP_ERR_TIMEOUT');
});

test('requestTimeoutMs never cuts a stream being served (a live viewer outlives it several times)', needs('ffmpeg'), async (t) => {
  const { server, url } = await startServer({ limits: { headersTimeoutMs: 500, requestTimeoutMs: 600 }, streams: { cam: { type: 'push' } } });
  t.after(() => server.close());
  server.live('cam').push(frame);
  const viewer = await openStream(new URL('stream/cam', url));
  const pusher = setInterval(() => server.live('cam').push(frame), 100);
  t.after(() => clearInterval(pusher));
  await sleep(3000);
  assert.equal(server.live('cam').viewers, 1, 'still watching after 5 request timeouts');
  assert.ok(viewer.reader.parts.length >= 20, `got ${viewer.reader.parts.length} frames`);
  viewer.close();
});

test('bad limits are refused with SP_ERR_CONFIG (library) or exit 2 naming the option (CLI)', async () => {
  await assert.rejects(createServer({ dir: EXAMPLES, limits: { maxViewers: -1 } }), (error) => isServerPushError(error, 'SP_ERR_CONFIG'));
  await assert.rejects(createServer({ dir: EXAMPLES, limits: { headersTimeoutMs: 5000, requestTimeoutMs: 1000 } }), (error) => isServerPushError(error, 'SP_ERR_CONFIG'));
  for (const [args, pattern] of [
    [['--max-viewers', 'many'], /--max-viewers must be a whole number from 0/],
    [['--max-session', '-1'], /--max-session must be a number of seconds/],
    [['--max-header-bytes', '10'], /--max-header-bytes must be from 1024/],
    [['--log-format', 'xml'], /--log-format must be json or text/],
    [['--watch-config'], /--watch-config needs --config FILE/],
  ] as const) {
    const result = await runCli(['serve', EXAMPLES, '--port', '0', ...args]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, pattern);
  }
});
