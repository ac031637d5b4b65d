/**
 * The viewer, `<img>` streams and streams opened directly in WebKitGTK (Safari's engine, with
 * libsoup as its network stack), driven over W3C WebDriver by WebKitWebDriver (see
 * helpers/webkit.ts). Skipped, with the reason, when the driver, MiniBrowser or Xvfb is missing.
 *
 * WebDriver classic has no preload script, so the viewer's shows are recorded from the moment
 * the test hooks the page (RECORD_SHOWS run through execute-script), and matched with what the
 * server sent by sequence number; a live stream's frames are pushed only once the hook is in.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EXAMPLES, sleep, startServer } from './helpers/server.ts';
import { makeColourFrames, PALETTE, RECORD_DRAWS } from './helpers/frames.ts';
import { RECORD_SHOWS, type Shown } from './helpers/viewer-page.ts';
import { assertProbeBlocked, sandboxProbeServer, slideshowServer, SLIDESHOW_IMAGE_WIDTHS, SLIDESHOW_KINDS } from './helpers/viewer-scenes.ts';
import { WebKit, webkitSkipReason } from './helpers/webkit.ts';
import { compareFileNames } from '../src/sources/folder-catalog.ts';
import type { EncodedPart } from '../src/hub/encoded-part.ts';
import type { PartEvent } from '../src/server/server.ts';

const skip = webkitSkipReason();

let webkit: WebKit | undefined;
before(async () => {
  if (!skip) webkit = await WebKit.launch();
});
after(() => webkit?.close());

/** Six frames, each of its own colour and size. */
const COLOURS = ['red', 'lime', 'blue', 'yellow', 'magenta', 'cyan'];
const SIZES = ['160x120', '200x150', '240x180', '280x210', '320x240', '360x270'];
const LABELS = COLOURS.map((colour, i) => `${SIZES[i]} ${colour}`);

/** A slideshow's document is on show in the viewer this long after it was sent at most (as in Chromium and Firefox). */
const ON_TIME_MS = 100;
/** Live frames are pushed this far apart, and each is drawn within FRAME_ON_TIME_MS of its push: a frame drawn one frame late would be FRAME_GAP_MS late. */
const FRAME_GAP_MS = 700;
const FRAME_ON_TIME_MS = 250;
/** The same, seen by polling over WebDriver (a stream opened directly): the polls add their own delay. */
const POLLED_ON_TIME_MS = 400;
/** How often a test polls a page it is timing (each poll runs a script in the page). */
const SLOW_POLL = { everyMs: 250, timeoutMs: 20_000 };

/** Hooks the viewer page (once): each show and state from now on is recorded. */
async function hookViewer(wk: WebKit): Promise<void> {
  await wk.run(`if (!window.shows) { ${RECORD_SHOWS} }`);
}

const shows = (wk: WebKit) => wk.evaluate<Shown[]>('window.shows');

async function waitForShows(wk: WebKit, n: number, timeoutMs = 20_000): Promise<Shown[]> {
  await wk.waitFor(`window.shows.length >= ${n}`, { ...SLOW_POLL, timeoutMs });
  return shows(wk);
}

const viewerState = (wk: WebKit) => wk.evaluate<string | undefined>(`document.getElementById('viewer').dataset.state`);
const text = (wk: WebKit, role: string) => wk.evaluate<string>(`document.querySelector('[data-role=${role}]').textContent`);

test('WebKitGTK: every document of a looping examples/slideshow appears in the viewer in order, each within 100 ms of being sent', { skip }, async (t) => {
  const wk = webkit!;
  t.diagnostic(`WebKitGTK ${wk.version}`);
  const { server, url, sent } = await startLoopingSlideshow(t);
  await wk.goto(new URL('view', url).href);
  await wk.waitFor(`document.getElementById('viewer').dataset.state === 'open'`);
  await hookViewer(wk);
  // One whole round of the show, from the part after the first one recorded: that one may be on
  // its way while WebDriver runs the hook in the page, which delays it by tens of ms (hooked
  // before it starts, the player shows a fresh page's first part in 8–43 ms).
  const seen = (await waitForShows(wk, 11)).slice(1, 11);
  const names = (await readdir(EXAMPLES)).sort(compareFileNames);
  assert.equal(new Set(sent.map((e) => e.client)).size, 1, 'one client: the viewer');
  seen.forEach((s, i) => { if (i > 0) assert.equal(s.seq, seen[i - 1]!.seq + 1, `no part passed over: ${seen.map((x) => x.seq)}`); });
  const parts = seen.map((s) => sent[s.seq - 1]!);
  assert.deepEqual(new Set(parts.map((p) => p.name)), new Set(names), 'every document');
  parts.forEach((part, i) => assert.equal(part.name, names[(seen[i]!.seq - 1) % names.length], 'in file-name order'));
  assert.deepEqual(seen.map((s) => s.contentType), parts.map((p) => p.contentType));
  // What was on show: each image at its own size, each text's first line.
  const imageNames = names.filter((n) => /\.(jpe?g|gif|png)$/.test(n));
  for (const [i, s] of seen.entries()) {
    const name = parts[i]!.name;
    if (s.kind === 'image') assert.equal(Number(s.seen.split('x')[0]), SLIDESHOW_IMAGE_WIDTHS[imageNames.indexOf(name)], name);
    else if (s.kind === 'text') assert.equal(s.seen, (await readFile(join(EXAMPLES, name), 'utf8')).split('\n')[0], name);
    else assert.equal(s.kind, 'html', name);
  }
  const delays = seen.map((s, i) => s.shownAt - parts[i]!.sentAt);
  t.diagnostic(`shown after sending (ms): ${seen.map((s, i) => `${s.seq}:${s.kind} ${delays[i]}`).join(', ')}`);
  delays.forEach((delay, i) => assert.ok(delay >= -5 && delay < ON_TIME_MS, `${parts[i]!.name} shown ${delay} ms after it was sent`));
  t.diagnostic(`X-Timestamp to receipt (ms): ${seen.map((s) => s.receivedAt - s.timestamp!).join(', ')}`);
});

async function startLoopingSlideshow(t: Parameters<typeof slideshowServer>[0]): Promise<{ server: Awaited<ReturnType<typeof startServer>>['server']; url: URL; sent: PartEvent[] }> {
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 400, loop: true });
  t.after(() => server.close());
  const sent: PartEvent[] = [];
  server.on('part', (event: PartEvent) => sent.push(event));
  return { server, url, sent };
}

/** A server with a live `push` stream `cam` holding the first of `frames`; `pushed` fills as frames are pushed. */
async function camServer(t: Parameters<typeof slideshowServer>[0], frames: Buffer[]) {
  const { server, url } = await startServer({ streams: { cam: { type: 'push' } } });
  t.after(() => server.close());
  const live = server.live('cam');
  const pushed: EncodedPart[] = [];
  live.on('part', (part: EncodedPart) => pushed.push(part));
  live.push({ contentType: 'image/jpeg', body: frames[0]! });
  return { server, url, live, pushed };
}

test('WebKitGTK: a live stream in the viewer shows each frame on arrival, the last one before a pause too', { skip }, async (t) => {
  const wk = webkit!;
  const frames = await makeColourFrames(COLOURS, SIZES);
  const { url, live, pushed } = await camServer(t, frames);
  await wk.goto(new URL('view/cam', url).href);
  await wk.waitFor(`document.querySelector('[data-role=image] img') && document.querySelector('[data-role=image] img').naturalWidth === 160`, { message: 'the latest frame on show at once' });
  await hookViewer(wk);
  for (let i = 1; i < frames.length; i++) {
    await sleep(FRAME_GAP_MS);
    live.push({ contentType: 'image/jpeg', body: frames[i]! });
  }
  // The last frame is followed by nothing: a camera that pauses, a source that stopped.
  await sleep(FRAME_GAP_MS);
  const seen = await shows(wk);
  assert.deepEqual(seen.map((s) => s.seen), SIZES.slice(1), 'every frame, in order, the last one included');
  const delays = seen.map((s, i) => s.shownAt - pushed[i + 1]!.timestamp);
  t.diagnostic(`frames shown after push (ms): ${delays.join(', ')}`);
  delays.forEach((delay, i) => assert.ok(delay >= -5 && delay < FRAME_ON_TIME_MS, `frame ${i + 1} shown ${delay} ms after push`));
  assert.equal(await text(wk, 'state'), 'live');
  assert.equal(await text(wk, 'parts'), `${frames.length} parts`);
  assert.equal(await text(wk, 'type'), 'image/jpeg');
  const latency = Number(/^latency (-?\d+) ms$/.exec(await text(wk, 'latency'))?.[1]);
  assert.ok(latency >= 0 && latency < FRAME_ON_TIME_MS, `latency ${latency} ms`);
});

/**
 * Opens a page of the server's origin holding `<img id="cam" src=src>` and records each picture
 * it draws (RECORD_DRAWS); returns when the first is drawn (with `waitForFirst`).
 */
async function imgPage(wk: WebKit, url: URL, src: string, waitForFirst = true): Promise<void> {
  await wk.goto(new URL('status', url).href);
  await wk.run(`
    document.body.replaceChildren();
    const img = document.createElement('img');
    img.id = 'cam';
    img.src = arguments[0];
    document.body.append(img);
  `, new URL(src, url).href);
  await wk.run(RECORD_DRAWS, 'cam', PALETTE);
  if (waitForFirst) await wk.waitFor('window.draws.length >= 1', { timeoutMs: 10_000, message: 'the latest frame drawn at once' });
}

/** Pushes frames 1… of `frames` FRAME_GAP_MS apart, then waits as long again, twice; returns the draws of the `<img>` and when each frame was pushed. */
async function pushAndRecord(wk: WebKit, live: { push(part: { contentType: string; body: Uint8Array }): void }, frames: Buffer[]): Promise<{ draws: Array<[string, number]>; pushedAt: number[] }> {
  const pushedAt: number[] = [];
  for (let i = 1; i < frames.length; i++) {
    await sleep(FRAME_GAP_MS);
    pushedAt.push(Date.now());
    live.push({ contentType: 'image/jpeg', body: frames[i]! });
  }
  await sleep(2 * FRAME_GAP_MS);
  return { draws: await wk.evaluate<Array<[string, number]>>('window.draws'), pushedAt };
}

test('WebKitGTK: an <img> of a live stream draws each frame on arrival (eager framing), the last one before a pause too; with ?eager=0 each one frame late', { skip }, async (t) => {
  const wk = webkit!;
  const frames = await makeColourFrames(COLOURS, SIZES);
  const { url, live } = await camServer(t, frames);
  await imgPage(wk, url, 'stream/cam');
  const { draws, pushedAt } = await pushAndRecord(wk, live, frames);
  assert.deepEqual(draws.map(([label]) => label), LABELS, 'every frame, whole, in order, the last one included');
  const delays = draws.slice(1).map(([, at], i) => at - pushedAt[i]!);
  t.diagnostic(`drawn after push (ms): ${delays.join(', ')}`);
  delays.forEach((delay, i) => assert.ok(delay >= -5 && delay < FRAME_ON_TIME_MS, `${LABELS[i + 1]} drawn ${delay} ms after push`));

  // The control: without eager framing WebKit draws a frame only when the next one comes, the
  // last one never. The same measurement sees it, so it would see a late frame above.
  const control = await camServer(t, frames);
  await imgPage(wk, control.url, 'stream/cam?eager=0', false);
  await sleep(FRAME_GAP_MS);
  const late = await pushAndRecord(wk, control.live, frames);
  t.diagnostic(`?eager=0: drawn after push (ms): ${late.draws.map(([label, at]) => `${label} ${at - late.pushedAt[0]!}`).join(', ')}`);
  assert.deepEqual(late.draws.map(([label]) => label), LABELS.slice(0, -1), 'the last frame never drawn');
  late.draws.forEach(([label, at], i) => assert.ok(at >= late.pushedAt[i]! - 5, `${label} drawn only once the next frame came`));
});

test('WebKitGTK: an <img> of a slideshow\'s images (the index page\'s preview) draws each on arrival, the last one too', { skip }, async (t) => {
  const wk = webkit!;
  const { url, sent } = await slideshowServer(t, FRAME_GAP_MS);
  await imgPage(wk, url, 'stream?only=image');
  await wk.waitFor(`window.draws.length >= ${SLIDESHOW_IMAGE_WIDTHS.length}`, SLOW_POLL);
  await sleep(FRAME_GAP_MS);
  const draws = await wk.evaluate<Array<[string, number]>>('window.draws');
  assert.deepEqual(draws.map(([label]) => Number(label.split('x')[0])), SLIDESHOW_IMAGE_WIDTHS, 'every image, in order');
  assert.equal(sent.length, SLIDESHOW_IMAGE_WIDTHS.length);
  const delays = draws.map(([, at], i) => at - sent[i]!.sentAt);
  t.diagnostic(`drawn after sending (ms): ${delays.join(', ')}`);
  delays.forEach((delay, i) => assert.ok(delay >= -5 && delay < FRAME_ON_TIME_MS, `${sent[i]!.name} drawn ${delay} ms after it was sent`));
});

test('WebKitGTK: an <img> of a mixed stream shows its images, a broken image for html and text parts, and outlives the stream\'s end', { skip }, async (t) => {
  const wk = webkit!;
  const { url, sent } = await slideshowServer(t, 300);
  await wk.goto(new URL('status', url).href);
  // What the <img> holds each time a part has come (naturalWidth, 0 for a broken image).
  await wk.run(`
    document.body.replaceChildren();
    const img = document.createElement('img');
    img.src = arguments[0];
    document.body.append(img);
    window.held = [];
    setInterval(() => window.held.push([img.naturalWidth, Date.now()]), 20);
  `, new URL('stream', url).href);
  await waitFor(() => sent.length === SLIDESHOW_KINDS.length, 'the whole show sent', 10_000);
  await sleep(1000);
  const held = await wk.evaluate<Array<[number, number]>>('window.held');
  // What the <img> held just before each next part was sent (the last: at the end).
  const widths = sent.map((_, i) => {
    const until = i + 1 < sent.length ? sent[i + 1]!.sentAt : Date.now();
    return held.filter(([, at]) => at < until - 20).at(-1)?.[0];
  });
  t.diagnostic(`naturalWidth per part: ${sent.map((e, i) => `${e.name} ${widths[i]}`).join(', ')}`);
  const imageWidths = [...SLIDESHOW_IMAGE_WIDTHS];
  SLIDESHOW_KINDS.forEach((kind, i) => assert.equal(widths[i], kind === 'image' ? imageWidths.shift() : 0, sent[i]!.name));
  assert.equal(await wk.evaluate<number>('1 + 1'), 2, 'the page is alive after the stream ended');
});

test('WebKitGTK: the viewer reconnects after the server restarts', { skip }, async (t) => {
  const wk = webkit!;
  const frames = await makeColourFrames(COLOURS.slice(0, 2), SIZES.slice(0, 2));
  const first = await startServer({ streams: { default: { type: 'push' } } });
  t.after(() => first.server.close());
  const port = Number(first.url.port);
  first.server.live().push({ contentType: 'image/jpeg', body: frames[0]! });
  await wk.goto(new URL('view', first.url).href);
  await wk.waitFor(`document.querySelector('[data-role=image] img') && document.getElementById('viewer').dataset.state === 'open'`);
  await hookViewer(wk);
  const stoppedAt = Date.now();
  await first.server.close();
  await wk.waitFor(`window.states.includes('retrying')`, { timeoutMs: 5000 });
  await sleep(300);
  const second = await startServer({ port, streams: { default: { type: 'push' } } });
  t.after(() => second.server.close());
  const restartedAt = Date.now();
  // The shutdown ended the stream cleanly: its last part was the latest frame again.
  const before = await waitForShows(wk, 1);
  assert.deepEqual([before[0]!.seq, before[0]!.seen], [2, SIZES[0]]);
  second.server.live().push({ contentType: 'image/jpeg', body: frames[1]! });
  const [, again] = await waitForShows(wk, 2, 20_000);
  t.diagnostic(`down for ${restartedAt - stoppedAt} ms; first frame after the restart shown ${again!.shownAt - restartedAt} ms after it`);
  assert.equal(again!.seen, SIZES[1]);
  assert.equal(again!.seq, 3);
  assert.equal(await viewerState(wk), 'open');
  const history = await wk.evaluate<string[]>('window.states');
  assert.ok(history.indexOf('retrying') < history.lastIndexOf('open'), history.join(' '));
});

test('WebKitGTK: the html sandbox holds: a pushed document runs, but cannot read or change the viewer page', { skip }, async (t) => {
  const wk = webkit!;
  const url = await sandboxProbeServer(t, 3000, "try { top.location.href = 'about:blank#pwned'; } catch (e) {}");
  await wk.goto(new URL('view', url).href);
  const title = await wk.title();
  let out: string | null = null;
  let origin: string | null = null;
  const deadline = Date.now() + 10_000;
  while (out === null && Date.now() < deadline) {
    await wk.frame(null);
    const count = await wk.evaluate<number>('window.frames.length');
    for (let i = 0; i < count && out === null; i++) {
      await wk.frame(null);
      await wk.frame(i);
      const found = await wk.evaluate<string | null>(`document.getElementById('out') && document.getElementById('out').textContent`).catch(() => null);
      if (found && found.startsWith('ran')) {
        out = found;
        origin = await wk.evaluate<string>('window.origin');
      }
    }
    if (out === null) await sleep(100);
  }
  await wk.frame(null);
  assert.ok(out, 'the pushed document ran, in a frame');
  assertProbeBlocked(t, out);
  assert.equal(origin, 'null', 'an opaque origin');
  assert.equal(await wk.title(), title, 'the viewer page is unchanged');
  assert.equal(new URL(await wk.evaluate<string>('location.href')).pathname, '/view', 'no navigation of the viewer');
});

test('WebKitGTK: opening a stream directly: a mixed stream gets the viewer, an image stream plays itself, each frame on arrival', { skip }, async (t) => {
  const wk = webkit!;
  const frames = await makeColourFrames(COLOURS, SIZES);
  const { server, url } = await startServer({ streams: { default: { type: 'slideshow', dir: EXAMPLES, intervalMs: 400, loop: true }, cam: { type: 'push' } } });
  t.after(() => server.close());
  await wk.goto(new URL('stream', url).href);
  assert.equal(await wk.title(), 'default — serverpush viewer', 'the viewer, at the same URL');
  await wk.waitFor(`document.getElementById('viewer').dataset.state === 'open'`);
  await hookViewer(wk);
  const kinds = (await waitForShows(wk, 10)).map((s) => s.kind);
  for (const kind of ['html', 'image', 'text'] as const) assert.ok(kinds.includes(kind), `${kind} shown: ${kinds}`);

  // An image stream opened directly: WebKit makes a new image document of each part, titled
  // with the picture's size. Its title is polled over WebDriver (some 10–30 ms a poll).
  const live = server.live('cam');
  live.push({ contentType: 'image/jpeg', body: frames[0]! });
  await wk.goto(new URL('stream/cam', url).href, 'commit');
  await wk.waitFor(`document.title.includes('160×120')`, { timeoutMs: 10_000, message: 'the latest frame on show at once' });
  const titles: Array<[string, number]> = [];
  let polling = true;
  const poller = (async () => {
    let last = await wk.title();
    while (polling) {
      const title = await wk.title().catch(() => last);
      if (title !== last) titles.push([last = title, Date.now()]);
    }
  })();
  const pushedAt: number[] = [];
  for (let i = 1; i < frames.length; i++) {
    await sleep(FRAME_GAP_MS);
    pushedAt.push(Date.now());
    live.push({ contentType: 'image/jpeg', body: frames[i]! });
  }
  await sleep(1000);
  polling = false;
  await poller;
  const sizes = titles.map(([title]) => /(\d+)×(\d+)/.exec(title)?.slice(1).join('x'));
  assert.deepEqual(sizes, SIZES.slice(1), `every frame, the last one included: ${titles.map(([title]) => title)}`);
  const delays = titles.map(([, at], i) => at - pushedAt[i]!);
  t.diagnostic(`image document of each frame seen after push (ms, polled): ${delays.join(', ')}`);
  delays.forEach((delay, i) => assert.ok(delay >= -5 && delay < POLLED_ON_TIME_MS, `${SIZES[i + 1]} seen ${delay} ms after push`));
});

test('WebKitGTK: fetch() cannot read a multipart body ("Load failed") but reads the raw variant; the viewer of a stream without one (data-raw="0") shows it in a plain <img>, each frame on arrival', { skip }, async (t) => {
  const wk = webkit!;
  const frames = await makeColourFrames(COLOURS, SIZES);
  // What Safari's users report, in WebCore itself: the headers, then the body fails before a byte.
  const probe = await camServer(t, frames);
  await wk.goto(new URL('status', probe.url).href);
  const read = `
    const controller = new AbortController();
    const response = await fetch(arguments[0], { signal: controller.signal });
    const answer = { status: response.status, type: response.headers.get('content-type') };
    try {
      const reader = response.body.getReader();
      const { value } = await reader.read();
      answer.read = value.length + ' bytes';
      await reader.cancel();
    } catch (error) {
      answer.read = error.name + ': ' + error.message;
    }
    controller.abort();
    return answer;
  `;
  const multipart = await wk.runAsync<{ status: number; type: string; read: string }>(read, 'stream/cam');
  t.diagnostic(`fetch() of the multipart stream: ${JSON.stringify(multipart)}`);
  assert.equal(multipart.status, 200);
  assert.match(multipart.type, /^multipart\/x-mixed-replace; boundary=/);
  assert.match(multipart.read, /^TypeError/);
  const raw = await wk.runAsync<{ status: number; type: string; read: string }>(read, 'stream/cam?raw=1');
  assert.deepEqual([raw.status, raw.type], [200, 'application/octet-stream']);
  assert.match(raw.read, /^\d+ bytes$/);
  await sleep(1000);
  // Reported, not asserted: it varies from run to run.
  t.diagnostic(`connections still open 1 s after the refused request (aborted) and the raw one (read, cancelled, aborted): ${probe.live.viewers}`);

  // The player on a page of the server's origin, told the stream has no raw variant.
  const { server, url, live } = await camServer(t, frames);
  await wk.goto(new URL('status', url).href);
  await wk.run(`
    ${RECORD_SHOWS}
    document.body.replaceChildren();
    const target = document.createElement('div');
    target.id = 'viewer';
    target.style.height = '400px';
    const script = document.createElement('script');
    script.src = '/viewer/player.js';
    Object.assign(script.dataset, { stream: 'stream/cam', target: 'viewer', raw: '0' });
    document.body.append(target, script);
  `);
  await wk.waitFor(`document.getElementById('viewer').dataset.state === 'native'`, { timeoutMs: 10_000 });
  const states = await wk.evaluate<string[]>('window.states');
  assert.deepEqual(states, ['connecting', 'open', 'retrying', 'connecting', 'open', 'unreadable', 'native']);
  t.diagnostic(await wk.evaluate<string>(`document.querySelector('[data-role=state]').title`));
  // Two refused requests, then the <img>, and no more attempts (the viewer used to retry for
  // ever, and WebKitGTK may keep each refused request's connection open).
  await sleep(1500);
  assert.equal(server.status.clientsTotal, 3, 'two refused requests, then the <img>');
  t.diagnostic(`connections open: ${live.viewers} (the <img>, and refused requests WebKit kept)`);
  await wk.run(`document.querySelector('#viewer img[data-native]').id = 'cam';`);
  await wk.run(RECORD_DRAWS, 'cam', PALETTE);
  await wk.waitFor('window.draws.length >= 1', { timeoutMs: 10_000, message: 'the latest frame drawn at once' });
  const { draws, pushedAt } = await pushAndRecord(wk, live, frames);
  assert.deepEqual(draws.map(([label]) => label), LABELS, 'every frame, whole, in order, the last one included');
  const delays = draws.slice(1).map(([, at], i) => at - pushedAt[i]!);
  t.diagnostic(`drawn after push (ms): ${delays.join(', ')}`);
  delays.forEach((delay, i) => assert.ok(delay >= -5 && delay < FRAME_ON_TIME_MS, `${LABELS[i + 1]} drawn ${delay} ms after push`));
  assert.equal(server.status.clientsTotal, 3);
});

/** Polls `check` every 50 ms for `timeoutMs`; fails with `message` if it never holds. */
async function waitFor(check: () => boolean, message: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(message);
    await sleep(50);
  }
}
