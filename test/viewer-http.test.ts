import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { EXAMPLES, startServer, fetchText, makeFolder, removeFolder } from './helpers/server.ts';
import { prefersHtml } from '../src/adapters/negotiation.ts';
import { createServer } from '../src/server/server.ts';
import { isServerPushError } from '../src/errors.ts';
import { runCli, startCli } from './helpers/cli.ts';

/** Accept headers as browsers and programs send them (Chromium 156, Firefox ESR, Safari 17, curl, ffmpeg 5.1). */
const ACCEPT = {
  chromiumNavigation: 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7',
  firefoxNavigation: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  safariNavigation: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  chromiumImage: 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8',
  firefoxImage: 'image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5',
  anything: '*/*',
};

/**
 * GETs `url` with `headers` and reads until `max` bytes, the end, or `waitMs` after the headers
 * (streams never end by themselves).
 */
function peek(url: URL, headers: Record<string, string> = {}, max = 200_000, method = 'GET', waitMs = 5000): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const timer = setTimeout(() => done(), waitMs);
      const done = () => {
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) });
      };
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= max) done();
      });
      res.on('end', done);
      res.on('error', done);
    });
    req.on('error', reject);
    req.end();
  });
}

test('prefersHtml: browser navigations prefer text/html; <img> loads, fetch, curl and ffmpeg do not', () => {
  assert.equal(prefersHtml(ACCEPT.chromiumNavigation), true);
  assert.equal(prefersHtml(ACCEPT.firefoxNavigation), true);
  assert.equal(prefersHtml(ACCEPT.safariNavigation), true);
  assert.equal(prefersHtml('text/html'), true);
  assert.equal(prefersHtml(ACCEPT.chromiumImage), false);
  assert.equal(prefersHtml(ACCEPT.firefoxImage), false);
  assert.equal(prefersHtml('*/*'), false);
  assert.equal(prefersHtml(undefined), false);
  assert.equal(prefersHtml(''), false);
  assert.equal(prefersHtml('image/jpeg, text/html;q=0.5'), false);
  assert.equal(prefersHtml('text/html;q=0'), false);
  assert.equal(prefersHtml('multipart/x-mixed-replace, text/html;q=0.9'), false);
});

test('a browser opening a stream with html/text parts gets the viewer page; <img>, curl, ffmpeg and ?raw=1 get the stream (Vary: Accept)', async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 60_000 });
  t.after(() => server.close());
  const stream = new URL('stream', url);
  for (const accept of [ACCEPT.chromiumNavigation, ACCEPT.firefoxNavigation]) {
    const page = await fetchText(stream, { headers: { accept } });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /^text\/html; charset=utf-8$/);
    assert.equal(page.headers.get('vary'), 'Accept');
    assert.match(page.body, /<script src="\.\/viewer\/player\.js" data-stream="\.\/stream" data-target="viewer"/);
    assert.match(page.headers.get('content-security-policy')!, /script-src 'self'/);
  }
  for (const accept of [ACCEPT.chromiumImage, ACCEPT.firefoxImage, ACCEPT.anything]) {
    const answer = await peek(stream, { accept }, 10);
    assert.equal(answer.status, 200);
    assert.match(String(answer.headers['content-type']), /^multipart\/x-mixed-replace; boundary=/);
    assert.equal(answer.headers['vary'], 'Accept');
  }
  // No Accept header at all (some camera clients): the stream.
  assert.match(String((await peek(stream, {}, 10)).headers['content-type']), /^multipart\/x-mixed-replace/);
  // A navigation to the raw variant or to the images only gets bytes, not the page.
  const raw = await peek(new URL('stream?raw=1', url), { accept: ACCEPT.chromiumNavigation }, 10);
  assert.equal(raw.headers['content-type'], 'application/octet-stream');
  const images = await peek(new URL('stream?only=image', url), { accept: ACCEPT.chromiumNavigation }, 10);
  assert.match(String(images.headers['content-type']), /^multipart\/x-mixed-replace/);
  // The mjpg-streamer alias negotiates too; HEAD gets the page's headers.
  const alias = await fetchText(new URL('?action=stream', url), { headers: { accept: ACCEPT.chromiumNavigation } });
  assert.match(alias.body, /data-stream="\.\/stream"/);
  const head = await peek(stream, { accept: ACCEPT.chromiumNavigation }, 10, 'HEAD');
  assert.match(String(head.headers['content-type']), /^text\/html/);
  assert.equal(head.body.length, 0);
});

test('a browser opening a stream of images only gets the stream itself (it plays)', async (t) => {
  const dir = await makeFolder({ 'a.gif': Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64') });
  t.after(() => removeFolder(dir));
  const { server, url } = await startServer({ dir, intervalMs: 60_000 });
  t.after(() => server.close());
  const answer = await peek(new URL('stream', url), { accept: ACCEPT.chromiumNavigation }, 10);
  assert.match(String(answer.headers['content-type']), /^multipart\/x-mixed-replace/);
});

test('a live stream is negotiated by what it has carried: images play, a text part turns navigations to the viewer', async (t) => {
  const { server, url } = await startServer({ streams: { cam: { type: 'push' } } });
  t.after(() => server.close());
  const gif = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
  server.live('cam').push({ contentType: 'image/gif', body: gif });
  const stream = new URL('stream/cam', url);
  const before = await peek(stream, { accept: ACCEPT.chromiumNavigation }, 10);
  assert.match(String(before.headers['content-type']), /^multipart\/x-mixed-replace/);
  server.live('cam').push({ contentType: 'text/plain; charset=utf-8', body: Buffer.from('status: ok') });
  const after = await fetchText(stream, { headers: { accept: ACCEPT.chromiumNavigation } });
  assert.match(after.headers.get('content-type')!, /^text\/html/);
  assert.match(after.body, /data-stream="\.\.\/stream\/cam"/);
  assert.match(after.body, /data-reconnect-on-end="1"/);
  const index = await fetchText(url);
  assert.match(index.body, /<iframe src="view\/cam\?embed=1&amp;controls=0"/, 'previewed in the viewer, not an <img>');
});

test('?raw=1 sends the same bytes as application/octet-stream with the boundary in X-Multipart-Boundary', async (t) => {
  const boundary = 'serverpush-raw-test-0123456789abcdefghijklmnop';
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 5, boundary });
  t.after(() => server.close());
  const plain = await peek(new URL('stream', url), {}, Infinity);
  const raw = await peek(new URL('stream?raw=1', url), {}, Infinity);
  assert.equal(raw.status, 200);
  assert.equal(raw.headers['content-type'], 'application/octet-stream');
  assert.equal(raw.headers['x-multipart-boundary'], boundary);
  assert.equal(raw.headers['x-content-type-options'], 'nosniff');
  assert.equal(raw.headers['cache-control'], 'no-cache, no-store, must-revalidate');
  // Each client's X-Timestamp is its own; everything else is byte for byte the same.
  const normalize = (body: Buffer) => body.toString('latin1').replace(/X-Timestamp: [0-9.]+/g, 'X-Timestamp: T');
  assert.ok(plain.body.length > 50_000);
  assert.equal(normalize(raw.body), normalize(plain.body));
  const head = await peek(new URL('stream?raw=1', url), {}, 10, 'HEAD');
  assert.equal(head.headers['content-type'], 'application/octet-stream');
  assert.equal(head.headers['x-multipart-boundary'], boundary);
});

test('a live stream has a raw variant too, never with eager framing', async (t) => {
  const { server, url } = await startServer({ streams: { default: { type: 'push' } } });
  t.after(() => server.close());
  const gif = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
  server.live().push({ contentType: 'image/gif', body: gif });
  const raw = await peek(new URL('stream?raw=1', url), { accept: ACCEPT.chromiumImage }, Infinity, 'GET', 300);
  assert.equal(raw.headers['content-type'], 'application/octet-stream');
  const boundary = String(raw.headers['x-multipart-boundary']);
  const text = raw.body.toString('latin1');
  assert.ok(text.startsWith(`--${boundary}\r\nContent-Type: image/gif\r\nContent-Length: ${gif.length}\r\n`), text.slice(0, 200));
  // Standard framing: the part ends with the delimiter alone, no next header block after it.
  assert.ok(text.endsWith(`\r\n--${boundary}\r\n`), JSON.stringify(text.slice(-120)));
});

test('/view and /view/NAME answer the viewer page with a strict CSP; unknown streams 404; other methods 405', async (t) => {
  const { server, url } = await startServer({ streams: { default: { type: 'push' }, 'cam.1': { type: 'push' } } });
  t.after(() => server.close());
  const page = await fetchText(new URL('view', url));
  assert.equal(page.status, 200);
  const csp = page.headers.get('content-security-policy')!;
  for (const directive of ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-src 'self'", "img-src 'self' blob: data:", "frame-ancestors 'self'", "base-uri 'none'"]) {
    assert.ok(csp.includes(directive), `${directive} in ${csp}`);
  }
  assert.match(csp, /style-src 'sha256-[A-Za-z0-9+/=]+'/);
  assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  assert.match(page.body, /<script src="\.\/viewer\/player\.js" data-stream="\.\/stream"/);
  const named = await fetchText(new URL('view/cam.1?embed=1', url));
  assert.match(named.body, /<script src="\.\.\/viewer\/player\.js" data-stream="\.\.\/stream\/cam\.1"/);
  assert.doesNotMatch(named.body, /<header>/, 'embed=1: the player alone');
  const missing = await fetchText(new URL('view/nope', url));
  assert.equal(missing.status, 404);
  assert.equal(JSON.parse(missing.body).error, 'SP_ERR_UNKNOWN_STREAM');
  assert.equal((await fetchText(new URL('view', url), { method: 'POST' })).status, 405);
});

test('the viewer page escapes what it prints: a query cannot inject markup', async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 60_000 });
  t.after(() => server.close());
  const page = await fetchText(new URL(`view?only=text&x="><script>alert(1)</script>'`, url));
  assert.equal(page.status, 200);
  assert.match(page.body, /data-stream="\.\/stream\?only=text&#38;x=%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E%27"/);
  assert.equal(page.body.match(/<script/g)?.length, 1, 'the player script only');
});

test('/viewer/player.js is the bundled player (ETag, 304); /viewer/frame is sandboxed by its own CSP', async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 60_000 });
  t.after(() => server.close());
  const player = await fetchText(new URL('viewer/player.js', url));
  assert.equal(player.status, 200, player.body);
  assert.match(player.headers.get('content-type')!, /^text\/javascript/);
  assert.ok(player.body.length > 5_000 && player.body.length < 100_000, `${player.body.length} bytes`);
  assert.doesNotMatch(player.body, /^\s*(import|export)\s/m, 'a classic script, not a module');
  const etag = player.headers.get('etag')!;
  const again = await fetch(new URL('viewer/player.js', url), { headers: { 'if-none-match': etag } });
  assert.equal(again.status, 304);
  const frame = await fetchText(new URL('viewer/frame', url));
  assert.equal(frame.status, 200);
  assert.equal(frame.headers.get('content-security-policy'), 'sandbox allow-scripts');
  assert.match(frame.body, /document\.write\(data\.html\)/);
});

test('CORS as configured: allowed origins get Access-Control-Allow-Origin and the exposed boundary header; others do not', async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 60_000, cors: ['https://example.com'] });
  t.after(() => server.close());
  const allowed = await peek(new URL('stream?raw=1', url), { origin: 'https://example.com' }, 10);
  assert.equal(allowed.headers['access-control-allow-origin'], 'https://example.com');
  assert.match(String(allowed.headers['access-control-expose-headers']), /X-Multipart-Boundary/);
  assert.equal(allowed.headers['vary'], 'Origin, Accept');
  const other = await peek(new URL('stream?raw=1', url), { origin: 'https://evil.example' }, 10);
  assert.equal(other.headers['access-control-allow-origin'], undefined);
  const preflight = await peek(new URL('stream', url), { origin: 'https://example.com', 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-custom' }, 10, 'OPTIONS');
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers['access-control-allow-methods'], 'GET, HEAD');
  assert.equal(preflight.headers['access-control-allow-headers'], 'x-custom');
  const page = await fetchText(new URL('view', url));
  assert.match(page.headers.get('content-security-policy')!, /frame-ancestors 'self' https:\/\/example\.com/);

  const { server: open, url: openUrl } = await startServer({ dir: EXAMPLES, intervalMs: 60_000, cors: '*' });
  t.after(() => open.close());
  const any = await peek(new URL('stream?raw=1', openUrl), { origin: 'https://anyone.example' }, 10);
  assert.equal(any.headers['access-control-allow-origin'], '*');
  assert.match((await fetchText(new URL('view', openUrl))).headers.get('content-security-policy')!, /frame-ancestors \*/);

  // Without the option: no CORS headers, OPTIONS is not allowed.
  const { server: closed, url: closedUrl } = await startServer({ dir: EXAMPLES, intervalMs: 60_000 });
  t.after(() => closed.close());
  const none = await peek(new URL('stream?raw=1', closedUrl), { origin: 'https://example.com' }, 10);
  assert.equal(none.headers['access-control-allow-origin'], undefined);
  assert.equal((await peek(new URL('stream', closedUrl), { origin: 'https://example.com', 'access-control-request-method': 'GET' }, 10, 'OPTIONS')).status, 405);
});

test('createServer refuses a cors value that is not an origin', async () => {
  for (const cors of [['example.com'], ['https://example.com/path'], ['*', 'https://a.example'], ['ftp://example.com']]) {
    await assert.rejects(createServer({ dir: EXAMPLES, port: 0, cors }), (error) => isServerPushError(error) && error.code === 'SP_ERR_CONFIG', JSON.stringify(cors));
  }
});

test('GET / lists every stream with a live preview and a link to its viewer', async (t) => {
  const { server, url } = await startServer({ streams: { default: { type: 'slideshow', dir: EXAMPLES, intervalMs: 60_000 }, cam: { type: 'push' } } });
  t.after(() => server.close());
  const { body } = await fetchText(url);
  assert.match(body, /<a href="view"><img id="stream" src="stream\?only=image" alt="stream default"><\/a>/);
  assert.match(body, /<a class="view" href="view">open the viewer<\/a>/);
  assert.match(body, /<img src="stream\/cam" alt="stream cam">/);
  assert.match(body, /<a class="view" href="view\/cam">open the viewer<\/a>/);
});

test('serverpush serve --cors ORIGIN: the built CLI allows that origin; a bad origin exits 2', async (t) => {
  const server = await startCli(['--port', '0', '--interval', '60', '--cors', 'https://a.example', '--cors', 'http://b.example:8081']);
  t.after(() => server.stop());
  for (const origin of ['https://a.example', 'http://b.example:8081']) {
    const answer = await peek(new URL('stream?raw=1', server.url), { origin }, 10);
    assert.equal(answer.headers['access-control-allow-origin'], origin);
  }
  assert.equal((await peek(new URL('stream?raw=1', server.url), { origin: 'https://c.example' }, 10)).headers['access-control-allow-origin'], undefined);
  // The page and the bundled player come from the built dist/.
  const player = await fetchText(new URL('viewer/player.js', server.url));
  assert.equal(player.status, 200);
  const bad = await runCli(['serve', '--cors', 'example.com/x']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--cors: "example\.com\/x" is not an origin/);
});
