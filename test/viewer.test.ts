import { test, before, after } from 'node:test';
import { missing, needs } from './helpers/tools.ts';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Frame, Page } from 'playwright-core';
import { launchChromium } from './helpers/chromium.ts';
import { EXAMPLES, sleep, startServer } from './helpers/server.ts';
import { makeJpegFrames } from './helpers/frames.ts';
import { RECORD_SHOWS, shows, states, viewerState, waitForShows, waitForState } from './helpers/viewer-page.ts';
import { assertProbeBlocked, assertShownOnTime, sandboxProbeServer, slideshowServer, SLIDESHOW_IMAGE_WIDTHS, SLIDESHOW_KINDS, SLIDESHOW_SEQS } from './helpers/viewer-scenes.ts';
import { compareFileNames } from '../src/sources/folder-catalog.ts';
import type { EncodedPart } from '../src/hub/encoded-part.ts';

let browser: Browser;
before(async () => { if (!missing('chromium')) browser = await launchChromium(); });
after(() => browser?.close());

/** A page that records what the viewer shows, and notes a renderer crash. */
async function newPage(crashes: string[] = [], name = 'page'): Promise<Page> {
  const page = await browser.newPage();
  page.on('crash', () => crashes.push(name));
  await page.addInitScript(RECORD_SHOWS);
  return page;
}

const SIZES = ['160x120', '176x144', '192x144', '208x160', '224x168', '240x180', '256x192', '272x204'];

test('Chromium: every document of examples/slideshow appears in the viewer in order, each within 100 ms of being sent', needs('chromium', 'ffmpeg'), async (t) => {
  const { url, sent } = await slideshowServer(t, 400);
  const crashes: string[] = [];
  const page = await newPage(crashes);
  t.after(() => page.close());
  await page.goto(new URL('view', url).href);
  const seen = await waitForShows(page, 10);
  const names = (await readdir(EXAMPLES)).sort(compareFileNames);
  assert.deepEqual(sent.map((e) => e.name), names);
  assert.equal(new Set(sent.map((e) => e.client)).size, 1, 'one client: the viewer');
  assert.deepEqual(seen.map((s) => s.seq), SLIDESHOW_SEQS, 'each part shown, in order');
  assert.deepEqual(seen.map((s) => s.kind), SLIDESHOW_KINDS);
  assert.deepEqual(seen.map((s) => s.contentType), sent.map((e) => e.contentType));
  // What was on show: each image at its own size, each text's first line.
  assert.deepEqual(seen.filter((s) => s.kind === 'image').map((s) => Number(s.seen.split('x')[0])), SLIDESHOW_IMAGE_WIDTHS);
  const texts = await Promise.all(names.filter((n) => n.endsWith('.txt')).map(async (n) => (await readFile(join(EXAMPLES, n), 'utf8')).split('\n')[0]));
  assert.deepEqual(seen.filter((s) => s.kind === 'text').map((s) => s.seen), texts);
  assertShownOnTime(t, seen, sent);
  t.diagnostic(`X-Timestamp to receipt (ms): ${seen.map((s) => s.receivedAt - s.timestamp!).join(', ')}`);
  await waitForState(page, 'ended');
  assert.match((await page.textContent('[data-role=state]'))!, /^ended$/);
  assert.equal((await page.textContent('[data-role=parts]'))!, '10 parts');
  // The show is over; the button offers to connect again, and the show starts again.
  assert.equal(await page.textContent('[data-role=pause]'), 'Reconnect');
  await page.click('[data-role=pause]');
  const [again] = (await waitForShows(page, 11)).slice(10);
  assert.deepEqual([again!.seq, again!.kind], [11, 'html']);
  assert.deepEqual(crashes, []);
});

test('Chromium: a live image stream updates frame by frame, with part count, frame rate, latency and pause/resume', needs('chromium', 'ffmpeg'), async (t) => {
  const frames = await makeJpegFrames(SIZES.length, undefined, SIZES);
  const { server, url } = await startServer({ streams: { cam: { type: 'push' } } });
  t.after(() => server.close());
  const live = server.live('cam');
  const pushed: EncodedPart[] = [];
  live.on('part', (part: EncodedPart) => pushed.push(part));
  live.push({ contentType: 'image/jpeg', body: frames[0]! });
  const page = await newPage();
  t.after(() => page.close());
  await page.goto(new URL('view/cam', url).href);
  await waitForShows(page, 1);
  for (let i = 1; i < frames.length; i++) {
    await sleep(150);
    live.push({ contentType: 'image/jpeg', body: frames[i]! });
  }
  const seen = await waitForShows(page, frames.length);
  assert.deepEqual(seen.map((s) => s.seen), SIZES, 'every frame, in order');
  const delays = seen.slice(1).map((s, i) => s.shownAt - pushed[i + 1]!.timestamp);
  t.diagnostic(`frames shown after push (ms): ${delays.join(', ')}`);
  delays.forEach((delay, i) => assert.ok(delay >= -5 && delay < 100, `frame ${i + 1} shown ${delay} ms after push`));
  assert.equal(await page.textContent('[data-role=state]'), 'live');
  assert.equal(await page.textContent('[data-role=parts]'), `${frames.length} parts`);
  assert.equal(await page.textContent('[data-role=type]'), 'image/jpeg');
  const fps = Number(/^([0-9.]+) fps$/.exec((await page.textContent('[data-role=fps]'))!)?.[1]);
  assert.ok(fps >= 3 && fps <= 10, `${fps} fps for a frame every 150 ms`);
  const latency = Number(/^latency (-?\d+) ms$/.exec((await page.textContent('[data-role=latency]'))!)?.[1]);
  assert.ok(latency >= 0 && latency < 100, `latency ${latency} ms`);

  // Pause: parts are still received and counted, the picture stays; resume shows the newest.
  await page.click('[data-role=pause]');
  assert.equal(await page.textContent('[data-role=pause]'), 'Resume');
  live.push({ contentType: 'image/jpeg', body: frames[2]! });
  await sleep(100);
  live.push({ contentType: 'image/jpeg', body: frames[3]! });
  await page.waitForFunction((n) => document.querySelector('[data-role=parts]')?.textContent === `${n} parts`, frames.length + 2, { polling: 50 });
  assert.equal((await shows(page)).length, frames.length, 'nothing new shown while paused');
  assert.match((await page.textContent('[data-role=state]'))!, /^paused/);
  await page.click('[data-role=pause]');
  const [resumed] = (await waitForShows(page, frames.length + 1)).slice(-1);
  assert.equal(resumed!.seen, SIZES[3]);
  assert.equal(resumed!.seq, frames.length + 2);
});

test('Chromium: the html sandbox holds: a pushed document runs, but cannot read or change the viewer page', needs('chromium', 'ffmpeg'), async (t) => {
  const url = await sandboxProbeServer(t, 1500, "try { top.location.href = 'about:blank#pwned'; } catch (e) {}");
  const context = await browser.newContext();
  t.after(() => context.close());
  await context.addCookies([{ name: 'secret', value: 'viewer-cookie', url: url.href }]);
  const page = await context.newPage();
  await page.addInitScript(RECORD_SHOWS);
  await page.goto(new URL('view', url).href);
  await waitForShows(page, 1);
  const title = await page.title();
  let out: string | null = null;
  let probeFrame: Frame | undefined;
  for (const frame of page.frames()) {
    const text = await frame.evaluate(() => document.getElementById('out')?.textContent ?? null).catch(() => null);
    if (text !== null) {
      out = text;
      probeFrame = frame;
    }
  }
  assert.ok(probeFrame, 'the pushed document is in a frame');
  assertProbeBlocked(t, out!);
  assert.equal(await probeFrame!.evaluate(() => window.origin), 'null', 'an opaque origin');
  assert.equal(await page.title(), title, 'the viewer page is unchanged');
  assert.equal(new URL(page.url()).pathname, '/view', 'no navigation of the viewer');
  assert.equal(await page.evaluate(() => document.cookie), 'secret=viewer-cookie');
  // The frame's own answer sandboxes it, even opened on its own.
  const alone = await context.newPage();
  await alone.goto(new URL('viewer/frame', url).href);
  assert.equal(await alone.evaluate(() => window.origin), 'null');
  await assert.rejects(alone.evaluate(() => document.cookie));
});

test('Chromium: the viewer reconnects after the server restarts', needs('chromium', 'ffmpeg'), async (t) => {
  const frames = await makeJpegFrames(2, undefined, SIZES.slice(0, 2));
  const first = await startServer({ streams: { default: { type: 'push' } } });
  const port = Number(first.url.port);
  first.server.live().push({ contentType: 'image/jpeg', body: frames[0]! });
  const page = await newPage();
  t.after(() => page.close());
  await page.goto(new URL('view', first.url).href);
  await waitForShows(page, 1);
  await waitForState(page, 'open');
  const stoppedAt = Date.now();
  await first.server.close();
  await page.waitForFunction(() => (window as unknown as { states: string[] }).states.includes('retrying'), undefined, { polling: 50, timeout: 5000 });
  await sleep(300);
  const second = await startServer({ port, streams: { default: { type: 'push' } } });
  t.after(() => second.server.close());
  const restartedAt = Date.now();
  // The shutdown ended the stream cleanly: its last part was the latest frame again.
  const before = await waitForShows(page, 2);
  assert.deepEqual(before.map((shown) => shown.seen), [SIZES[0], SIZES[0]]);
  second.server.live().push({ contentType: 'image/jpeg', body: frames[1]! });
  const all = await waitForShows(page, 3, 20_000);
  const again = all[2]!;
  t.diagnostic(`down for ${restartedAt - stoppedAt} ms; first frame after the restart shown ${again.shownAt - restartedAt} ms after it`);
  assert.equal(again.seen, SIZES[1]);
  assert.equal(await viewerState(page), 'open');
  const history = await states(page);
  assert.deepEqual(history.slice(0, 2), ['connecting', 'open']);
  assert.ok(history.includes('retrying'), history.join(' '));
});

test('Chromium: no renderer crash when a mixed stream ends, on the index page or in the viewer', needs('chromium', 'ffmpeg'), async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 150 });
  t.after(() => server.close());
  const crashes: string[] = [];
  const index = await newPage(crashes, 'index');
  const viewer = await newPage(crashes, 'viewer');
  t.after(() => index.close());
  t.after(() => viewer.close());
  // The index page holds an endless <img> (it never finishes loading): do not wait for 'load'.
  await index.goto(url.href, { waitUntil: 'commit' });
  await viewer.goto(new URL('view', url).href);
  await waitForState(viewer, 'ended');
  // Let the index page's <img> stream end too, and give a crash time to happen.
  await index.waitForFunction(() => (document.getElementById('stream') as HTMLImageElement | null)?.complete === true, undefined, { polling: 50, timeout: 10_000 });
  await sleep(1000);
  assert.deepEqual(crashes, []);
  assert.equal(await viewer.evaluate(() => 1 + 1), 2);
  assert.equal(await index.evaluate(() => 1 + 1), 2);
  // At one part per 150 ms a part still being prepared may be passed over for a newer one
  // (latest wins); the last document is on show.
  assert.equal((await shows(viewer)).at(-1)?.seq, 10);
});

test('Chromium: opening a stream directly does the right thing by type: the viewer for html/text, the stream for images', needs('chromium', 'ffmpeg'), async (t) => {
  const { server, url } = await startServer({ streams: { default: { type: 'slideshow', dir: EXAMPLES, intervalMs: 600 }, cam: { type: 'push' } } });
  t.after(() => server.close());
  const frames = await makeJpegFrames(1, '320x240');
  server.live('cam').push({ contentType: 'image/jpeg', body: frames[0]! });
  const page = await newPage();
  t.after(() => page.close());
  await page.goto(new URL('stream', url).href);
  const seen = await waitForShows(page, 3);
  assert.deepEqual(seen.map((s) => s.kind), ['html', 'image', 'text']);
  assert.equal(new URL(page.url()).pathname, '/stream', 'the same URL');

  const image = await browser.newPage();
  t.after(() => image.close());
  await image.goto(new URL('stream/cam', url).href, { waitUntil: 'commit' });
  await image.waitForFunction(() => (document.querySelector('img')?.naturalWidth ?? 0) > 0, undefined, { polling: 50, timeout: 10_000 });
  assert.equal(await image.evaluate(() => document.querySelector('img')!.naturalWidth), 320);
});

/**
 * A page on another origin, embedding the viewer of the server at `target` (which may be set
 * after the host has started) with a script tag and an iframe.
 */
async function hostPage(target: URL): Promise<{ url: URL; http: Server; target: URL }> {
  const host = { url: new URL('http://127.0.0.1/'), http: undefined as unknown as Server, target };
  host.http = createHttpServer((_req, res) => {
    const server = host.target;
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>host</title>
<div id="embedded" style="height: 300px"></div>
<script src="${new URL('viewer/player.js', server).href}" data-stream="${new URL('stream', server).href}" data-target="embedded"></script>
<iframe id="framed" src="${new URL('view?embed=1', server).href}" width="400" height="300"></iframe>`);
  });
  await new Promise<void>((resolve) => host.http.listen(0, '127.0.0.1', resolve));
  host.url = new URL(`http://127.0.0.1:${(host.http.address() as AddressInfo).port}/`);
  return host;
}

test('Chromium: the viewer embeds in a page of another origin, with a script tag or an iframe, as CORS allows', needs('chromium', 'ffmpeg'), async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 600, loop: true, cors: '*' });
  t.after(() => server.close());
  const { server: closed, url: closedUrl } = await startServer({ dir: EXAMPLES, intervalMs: 600, loop: true });
  t.after(() => closed.close());
  // The host of the third case is started first, so that the second server can name its origin.
  const strictHost = await hostPage(new URL('http://127.0.0.1:1/'));
  t.after(() => strictHost.http.close());
  const { server: strict, url: strictUrl } = await startServer({ dir: EXAMPLES, intervalMs: 600, loop: true, cors: [strictHost.url.origin] });
  t.after(() => strict.close());
  strictHost.target = strictUrl;

  for (const [name, target, allowed] of [['cors *', url, true], ['cors ORIGIN', strictUrl, true], ['no cors', closedUrl, false]] as const) {
    const embedder = target === strictUrl ? strictHost : await hostPage(target);
    t.after(() => embedder.http.close());
    const page = await newPage();
    t.after(() => page.close());
    await page.goto(embedder.url.href);
    if (allowed) {
      // The script-tag player shows html (in its sandbox frame, served by the other origin), an image, text.
      const seen = await waitForShows(page, 3);
      assert.deepEqual(seen.slice(0, 3).map((s) => s.kind), ['html', 'image', 'text'], name);
      const framed = page.frames().find((f) => f.url().startsWith(new URL('view?embed=1', target).href));
      assert.ok(framed, `${name}: the iframe`);
      await waitForShows(framed!, 2);
    } else {
      await waitForState(page, 'retrying', 10_000, '#embedded');
      // Each retry shows why for 200–300 ms at first; read the bar while it says so, not after.
      await page.waitForFunction(() => /cannot connect/.test(document.querySelector('#embedded [data-role=state]')?.textContent ?? ''), undefined, { polling: 20, timeout: 10_000 });
      assert.equal(await page.evaluate(() => (window as unknown as { shows: unknown[] }).shows.length), 0, `${name}: nothing shown`);
      const framed = page.frames().find((f) => f.url().startsWith(new URL('view?embed=1', target).href));
      assert.equal(framed, undefined, `${name}: the iframe is refused (frame-ancestors 'self')`);
    }
  }
});
