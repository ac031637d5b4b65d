/**
 * Browsers over HTTPS and HTTP/2 (issue 12 item 6, issue 15's HTTP/2 part): Chromium shows ten
 * live `<img>` streams of one server at once over HTTP/2 (over HTTP/1.1 it opens six connections
 * to a host and the other four never start), and WebKitGTK shows a stream over HTTPS/h2 in an
 * `<img>` and in the viewer. The certificate is made here by a CA of the test's own: Chromium
 * trusts its key by `--ignore-certificate-errors-spki-list`, WebKit by `acceptInsecureCerts`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Http2Session, ServerHttp2Stream } from 'node:http2';
import { missing } from './helpers/tools.ts';
import { makeJpegFrames } from './helpers/frames.ts';
import { startServer, eventually, sleep } from './helpers/server.ts';
import { makeCa, makeServerCert, type TestCert } from './helpers/tls.ts';
import { CHROMIUM_PATH } from './helpers/chromium.ts';
import { WebKit, webkitSkipReason } from './helpers/webkit.ts';

const STREAMS = 10;
const FRAME_EVERY_MS = 100;

let dir = '';
let cert: TestCert;
let frames: Buffer[] = [];
const setupSkip = missing('openssl', 'ffmpeg');
before(async () => {
  if (setupSkip) return;
  dir = await mkdtemp(join(tmpdir(), 'serverpush-tls-browser-'));
  cert = await makeServerCert(await makeCa(dir), 'server', '5E5E01');
  // Two sizes in turn: a page tells each new frame by its naturalWidth.
  frames = await makeJpegFrames(2, undefined, ['160x120', '176x144']);
});
after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

/** A TLS server with a live stream fed a frame every FRAME_EVERY_MS, counting HTTP/2 sessions and streams. */
async function tlsServer(t: { after(fn: () => unknown): void }) {
  const started = await startServer({ streams: { default: { type: 'push' } }, tls: { certFile: cert.certFile, keyFile: cert.keyFile } });
  const counts = { sessions: 0, h2Streams: 0 };
  started.server.http.on('session', (_session: Http2Session) => counts.sessions++);
  started.server.http.on('stream', (_stream: ServerHttp2Stream) => counts.h2Streams++);
  let i = 0;
  started.server.live().push({ contentType: 'image/jpeg', body: frames[i++ % 2]! });
  const timer = setInterval(() => started.server.live().push({ contentType: 'image/jpeg', body: frames[i++ % 2]! }), FRAME_EVERY_MS);
  t.after(async () => {
    clearInterval(timer);
    await started.server.close();
  });
  return { ...started, counts };
}

/**
 * A page of the server's origin with STREAMS `<img>` of the live stream (distinct URLs, so the
 * browser cannot share one load), each counting the frames it draws (naturalWidth changes).
 */
const TEN_IMAGES = `
  const [count] = arguments;
  window.drawn = [];
  document.body.replaceChildren();
  for (let i = 0; i < count; i++) {
    const img = document.createElement('img');
    img.src = 'stream?n=' + i;
    document.body.append(img);
    window.drawn.push(0);
    let last = 0;
    setInterval(() => { if (img.naturalWidth !== last) { last = img.naturalWidth; window.drawn[i]++; } }, 10);
  }
`;

async function tenImagesInChromium(url: URL, http2: boolean): Promise<number[]> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // Trust the test's certificate by its key, as a CA would (the page stays a secure context).
      `--ignore-certificate-errors-spki-list=${cert.spkiSha256}`,
      ...(http2 ? [] : ['--disable-http2'])],
  });
  try {
    const page = await browser.newPage();
    await page.goto(new URL('status', url).href);
    await page.evaluate(`(function () { ${TEN_IMAGES} }).apply(this, [${STREAMS}])`);
    // 3 s at 10 frames a second: ~30 frames for each <img> that plays.
    await sleep(3000);
    return await page.evaluate('window.drawn') as number[];
  } finally {
    await browser.close();
  }
}

test('Chromium over HTTP/2: ten live <img> streams of one server play at once on one connection, all ten drawing frames; over HTTP/1.1 only six do', { skip: setupSkip || missing('chromium') }, async (t) => {
  const { url, server, counts } = await tlsServer(t);
  const h2 = await tenImagesInChromium(url, true);
  t.diagnostic(`HTTP/2: frames drawn per <img> in 3 s: ${h2.join(' ')}; sessions ${counts.sessions}, streams ${counts.h2Streams}`);
  assert.equal(h2.length, STREAMS);
  for (const [i, drawn] of h2.entries()) assert.ok(drawn >= 10, `<img> ${i} drew ${drawn} frames in 3 s (10 a second sent): ${h2.join(' ')}`);
  assert.ok(counts.h2Streams >= STREAMS, `${counts.h2Streams} HTTP/2 streams`);
  assert.equal(counts.sessions, 1, 'one HTTP/2 connection carries them all');
  await eventually(() => server.status.clients === 0, 5000, 'the viewers gone with the browser');

  // The contrast: the same page with HTTP/2 turned off. Chromium opens at most six HTTP/1.1
  // connections to a host; each endless stream holds one, so the other four never load.
  // Measured here: 6 of 10 drawing (~30 frames each), 4 with none.
  const h1 = await tenImagesInChromium(url, false);
  t.diagnostic(`HTTP/1.1: frames drawn per <img> in 3 s: ${h1.join(' ')}`);
  assert.equal(h1.filter((drawn) => drawn >= 10).length, 6, `six play over HTTP/1.1: ${h1.join(' ')}`);
  assert.equal(h1.filter((drawn) => drawn === 0).length, 4, `four never start: ${h1.join(' ')}`);
});

test('WebKitGTK over HTTPS and HTTP/2: an <img> of a live stream and the viewer page draw its frames', { skip: setupSkip || webkitSkipReason() }, async (t) => {
  const { url, counts } = await tlsServer(t);
  const wk = await WebKit.launch({ acceptInsecureCerts: true });
  t.after(() => wk.close());
  t.diagnostic(`WebKitGTK ${wk.version}`);
  await wk.goto(new URL('status', url).href);
  await wk.run(TEN_IMAGES, 2);
  await sleep(3000);
  const drawn = await wk.evaluate<number[]>('window.drawn');
  t.diagnostic(`frames drawn per <img> in 3 s: ${drawn.join(' ')}; HTTP/2 sessions ${counts.sessions}, streams ${counts.h2Streams}`);
  for (const n of drawn) assert.ok(n >= 10, `each <img> drew ${n} frames in 3 s: ${drawn.join(' ')}`);
  assert.ok(counts.h2Streams >= 2, `WebKit (libsoup) spoke HTTP/2: ${counts.h2Streams} streams`);

  // The viewer page, whose player reads the raw variant (or falls back to an <img>), over h2 too.
  const before = counts.h2Streams;
  await wk.goto(new URL('view', url).href);
  await wk.waitFor(`document.querySelector('#viewer img') && document.querySelector('#viewer img').naturalWidth > 0`, { message: 'the viewer shows a frame' });
  const widths = new Set<number>();
  const until = Date.now() + 2000;
  while (Date.now() < until) {
    widths.add(await wk.evaluate<number>(`document.querySelector('#viewer img').naturalWidth`));
    await sleep(30);
  }
  assert.deepEqual([...widths].sort(), [160, 176], 'the viewer goes on drawing new frames');
  assert.ok(counts.h2Streams > before, 'the viewer\'s requests went over HTTP/2');
});
