import { test } from 'node:test';
import { needs } from './helpers/tools.ts';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compareFileNames } from '../src/sources/folder-catalog.ts';
import { StrictMultipartReader } from './helpers/multipart-reader.ts';
import { EXAMPLES, makeFolder, removeFolder, startServer } from './helpers/server.ts';
import type { PartEvent } from '../src/server/server.ts';
import { launchChromium } from './helpers/chromium.ts';

const run = promisify(execFile);

async function exampleBodies(filter: (name: string) => boolean = () => true) {
  const names = (await readdir(EXAMPLES)).filter(filter).sort(compareFileNames);
  return Promise.all(names.map((name) => readFile(join(EXAMPLES, name))));
}

function readStrictly(bytes: Buffer, headers: string): StrictMultipartReader {
  const boundary = /content-type: multipart\/x-mixed-replace; boundary=(\S+)/i.exec(headers)?.[1];
  assert.ok(boundary, `no boundary in ${headers}`);
  const reader = new StrictMultipartReader(boundary);
  reader.push(bytes);
  reader.end();
  return reader;
}

for (const version of ['--http1.1', '--http1.0'] as const) {
  test(`curl ${version} receives the whole stream, byte for byte`, async (t) => {
    const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 20 });
    t.after(() => server.close());
    const dir = await makeFolder();
    t.after(() => removeFolder(dir));
    const out = join(dir, 'body');
    const { stdout: headers } = await run('curl', ['-sS', '--no-buffer', version, '-D', '-', '-o', out, new URL('stream', url).href]);
    assert.match(headers, version === '--http1.0' ? /^HTTP\/1\.1 200 OK\r\n/ : /^HTTP\/1\.1 200 OK\r\n/);
    if (version === '--http1.0') {
      // An HTTP/1.0 client gets a close-delimited body, never chunked.
      assert.doesNotMatch(headers, /transfer-encoding/i);
      assert.match(headers, /connection: close/i);
    } else {
      assert.match(headers, /transfer-encoding: chunked/i);
    }
    const reader = readStrictly(await readFile(out), headers);
    const expected = await exampleBodies();
    assert.equal(reader.parts.length, expected.length);
    reader.parts.forEach((part, i) => assert.ok(part.body.equals(expected[i]!), `part ${i}`));
  });
}

test('curl -I (HEAD /stream) gets the headers at once and no body', needs('curl'), async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 60_000, loop: true });
  t.after(() => server.close());
  const started = Date.now();
  const { stdout } = await run('curl', ['-sS', '-I', '--max-time', '5', new URL('stream', url).href]);
  assert.ok(Date.now() - started < 2000);
  assert.match(stdout, /^HTTP\/1\.1 200 OK/);
  assert.match(stdout, /content-type: multipart\/x-mixed-replace; boundary=serverpush-/i);
  assert.equal(server.status.partsSent, 0);
});

test('ffmpeg reads the stream of a folder of JPEGs: every frame, byte for byte', needs('ffmpeg'), async (t) => {
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  const frames = join(dir, 'frames');
  const out = join(dir, 'out');
  await run('mkdir', ['-p', frames, out]);
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10', '-frames:v', '8', '-q:v', '5', join(frames, 'frame-%02d.jpg')]);
  const { server, url } = await startServer({ dir: frames, intervalMs: 50 });
  t.after(() => server.close());
  // -c copy keeps each part's bytes as they came, so they can be compared with the files.
  const result = await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', new URL('stream', url).href, '-c', 'copy', '-f', 'image2', join(out, '%03d.jpg')]);
  // ffmpeg 5.1's mpjpeg demuxer does not know the closing delimiter: it reports the end of the
  // stream as invalid data after the last frame, and exits 0. Anything else is an error.
  assert.equal(result.stderr.replace(/^.*: Invalid data found when processing input\n$/, ''), '');
  const sent = (await readdir(frames)).sort(compareFileNames);
  const received = (await readdir(out)).sort(compareFileNames);
  assert.equal(received.length, 8);
  for (let i = 0; i < 8; i++) {
    assert.ok((await readFile(join(out, received[i]!))).equals(await readFile(join(frames, sent[i]!))), `frame ${i}`);
  }
});

test('headless Chromium: the <img> of GET / changes picture as each part arrives, within 100 ms', needs('chromium'), async (t) => {
  const images = await exampleBodies((name) => /\.(jpe?g|gif|png)$/.test(name));
  assert.equal(images.length, 6);
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 600 });
  t.after(() => server.close());
  const sent: PartEvent[] = [];
  server.on('part', (event: PartEvent) => sent.push(event));
  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.newPage();
  // Before the page's own scripts run: note each new picture the <img> holds, polled every 5 ms
  // (headless Chromium runs no requestAnimationFrame while the page is still loading, and a
  // page with an endless <img> stream is always loading).
  // A string, not a function: tsx would wrap a named inner function in a helper the page lacks.
  await page.addInitScript(`
    window.seen = [];
    let last = '';
    setInterval(() => {
      const img = document.getElementById('stream');
      if (img && img.naturalWidth > 0 && img.naturalWidth + 'x' + img.naturalHeight !== last) {
        last = img.naturalWidth + 'x' + img.naturalHeight;
        window.seen.push([img.naturalWidth, img.naturalHeight, Date.now()]);
      }
    }, 5);
  `);
  await page.goto(url.href);
  await page.waitForFunction(() => (window as unknown as { seen: unknown[] }).seen.length >= 6, undefined, { timeout: 15_000, polling: 100 });
  const seen = await page.evaluate(() => (window as unknown as { seen: Array<[number, number, number]> }).seen);
  const widths = [320, 360, 400, 480, 240, 440];
  assert.deepEqual(seen.map(([w]) => w), widths, 'every image in order');
  const imageParts = sent.filter((e) => e.contentType.startsWith('image/'));
  const client = imageParts[0]!.client;
  const mine = imageParts.filter((e) => e.client === client);
  assert.equal(mine.length, 6);
  const delays = seen.map(([, , drawnAt], i) => drawnAt - mine[i]!.sentAt);
  t.diagnostic(`drawn after sending (ms): ${delays.join(', ')}`);
  seen.forEach(([width], i) => {
    const delay = delays[i]!;
    assert.ok(delay >= -5 && delay < 100, `image ${i} (${width} px) drawn ${delay} ms after it was sent`);
  });
});

test('headless Chromium: an <img> of a live stream draws each frame on arrival (eager framing), within 100 ms', needs('chromium', 'ffmpeg'), async (t) => {
  const { makeJpegFrames } = await import('./helpers/frames.ts');
  const widths = [160, 200, 240, 280, 320, 360];
  const frames = await makeJpegFrames(widths.length, undefined, widths.map((w) => `${w}x${(w * 3) / 4}`));
  const { server, url } = await startServer({ streams: { cam: { type: 'push' } } });
  t.after(() => server.close());
  const live = server.live('cam');
  live.push({ contentType: 'image/jpeg', body: frames[0]! });
  const pushedAt: number[] = [Date.now()];
  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(new URL('status', url).href);
  await page.setContent(`<img id="cam" src="${new URL('stream/cam', url).href}">`);
  await page.evaluate(`
    window.seen = [];
    let last = 0;
    setInterval(() => {
      const img = document.getElementById('cam');
      if (img.naturalWidth > 0 && img.naturalWidth !== last) {
        last = img.naturalWidth;
        window.seen.push([img.naturalWidth, Date.now()]);
      }
    }, 5);
  `);
  await page.waitForFunction('window.seen.length >= 1', undefined, { timeout: 10_000, polling: 50 });
  for (let i = 1; i < frames.length; i++) {
    await new Promise((resolve) => setTimeout(resolve, 400));
    pushedAt.push(Date.now());
    live.push({ contentType: 'image/jpeg', body: frames[i]! });
  }
  await page.waitForFunction(`window.seen.length >= ${frames.length}`, undefined, { timeout: 10_000, polling: 50 });
  const seen = (await page.evaluate('window.seen')) as Array<[number, number]>;
  assert.deepEqual(seen.map(([w]) => w), widths, 'every frame, in order');
  const delays = seen.slice(1).map(([, at], i) => at - pushedAt[i + 1]!);
  t.diagnostic(`live frames drawn after push (ms): ${delays.join(', ')}`);
  for (const delay of delays) assert.ok(delay >= -5 && delay < 100, `drawn ${delay} ms after push`);
});
