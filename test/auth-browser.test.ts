/**
 * Headless Chromium shows a protected stream on a page of ANOTHER origin through a signed link
 * (`<img src="…?token=…">`, no password anywhere), drawing frame after frame; an expired, a
 * tampered and an unsigned link draw nothing (issue 12).
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import type { Browser } from 'playwright-core';
import { missing, needs } from './helpers/tools.ts';
import { launchChromium } from './helpers/chromium.ts';
import { makeFolder, removeFolder, startServer } from './helpers/server.ts';
import { makeColourFrames } from './helpers/frames.ts';
import { updateHtpasswd } from '../src/server/access/htpasswd.ts';
import { signLink } from '../src/server/access/signed-link.ts';
import { RECORD_SHOWS, waitForShows } from './helpers/viewer-page.ts';
import { EXAMPLES } from './helpers/server.ts';

let browser: Browser | undefined;
before(async () => { if (!missing('chromium', 'ffmpeg')) browser = await launchChromium(); });
after(async () => { await browser?.close(); });

const SIZES = ['160x120', '200x150', '240x180'];

test('Chromium: an <img> with a signed link on a page of another origin draws the protected stream; expired, tampered and unsigned links draw nothing', needs('chromium', 'ffmpeg'), async (t) => {
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  const htpasswd = join(dir, 'users');
  await updateHtpasswd(htpasswd, 'alice', 'not used by the page', 4);
  const secret = 'the link secret of this test, 32+ bytes';
  await writeFile(join(dir, 'link.key'), `${secret}\n`);
  const { server, url, logger } = await startServer({ streams: { cam: { type: 'push' } }, access: { htpasswd, linkSecretFile: join(dir, 'link.key'), streams: { cam: { read: ['alice'] } } } });
  t.after(() => server.close(100));
  const frames = await makeColourFrames(['red', 'lime', 'blue'], SIZES);
  let i = 0;
  server.live('cam').push({ contentType: 'image/jpeg', body: frames[0]! });
  const feed = setInterval(() => server.live('cam').push({ contentType: 'image/jpeg', body: frames[++i % frames.length]! }), 150);
  t.after(() => clearInterval(feed));

  const stream = new URL('stream/cam', url);
  const key = Buffer.from(secret);
  const signed = signLink(stream, { secret: key, expiresInSeconds: 300 });
  const expired = signLink(stream, { secret: key, expiresInSeconds: 60, now: Date.now() - 3_600_000 });
  const tampered = signed.replace(/token=(\d+)/, (_, expires: string) => `token=${Number(expires) + 86_400}`);
  const moved = signLink(new URL('stream/elsewhere', url), { secret: key, expiresInSeconds: 300 }).replace('/stream/elsewhere', '/stream/cam');
  // The page: another origin (127.0.0.2, another port), as a dashboard or a blog would be.
  const html = `<!doctype html><html><body>
<img id="signed" src="${signed}">
<img id="expired" src="${expired}">
<img id="tampered" src="${tampered}">
<img id="moved" src="${moved}">
<img id="unsigned" src="${stream.href}">
<script>
  window.sizes = [];
  window.failed = {};
  for (const img of document.images) img.addEventListener('error', () => { window.failed[img.id] = true; });
  const signed = document.getElementById('signed');
  setInterval(() => {
    const size = signed.naturalWidth + 'x' + signed.naturalHeight;
    if (signed.naturalWidth > 0 && size !== window.sizes[window.sizes.length - 1]) window.sizes.push(size);
  }, 10);
</script></body></html>`;
  const page_server: Server = createHttpServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise<void>((resolve) => page_server.listen(0, '127.0.0.2', resolve));
  t.after(() => new Promise<void>((resolve) => page_server.close(() => resolve())));
  const pageUrl = `http://127.0.0.2:${(page_server.address() as AddressInfo).port}/`;
  assert.notEqual(new URL(pageUrl).origin, url.origin);

  const page = await browser!.newPage();
  t.after(() => page.close());
  await page.goto(pageUrl);
  await page.waitForFunction(() => (window as unknown as { sizes: string[] }).sizes.length >= 3, undefined, { timeout: 30_000 });
  const sizes = await page.evaluate(() => (window as unknown as { sizes: string[] }).sizes);
  assert.ok(sizes.every((size) => SIZES.includes(size)), sizes.join(' '));
  assert.ok(new Set(sizes).size >= 2, `frames change: ${sizes.join(' ')}`);
  await page.waitForFunction(() => Object.keys((window as unknown as { failed: object }).failed).length >= 4, undefined, { timeout: 30_000 });
  const failed = await page.evaluate(() => (window as unknown as { failed: Record<string, boolean> }).failed);
  assert.deepEqual(Object.keys(failed).sort(), ['expired', 'moved', 'tampered', 'unsigned']);
  const drawn = await page.evaluate(() => Array.from(document.images).map((img) => [img.id, img.naturalWidth]));
  const widths = Object.fromEntries(drawn) as Record<string, number>;
  assert.ok(SIZES.map((size) => Number(size.split('x')[0])).includes(widths['signed']!), `the signed <img> shows a frame: ${widths['signed']}`);
  assert.deepEqual({ ...widths, signed: 'a frame' }, { signed: 'a frame', expired: 0, tampered: 0, moved: 0, unsigned: 0 });
  // The signature never reaches the server's log.
  const signature = new URL(signed).searchParams.get('token')!.split('.')[2]!;
  assert.ok(logger.lines.length > 0 && logger.lines.every((line) => !line.includes(signature) && !line.includes(secret)), logger.lines.join('\n'));
});

test('Chromium with a user (HTTP Basic): the index lists only the streams the user may read, and the viewer plays one behind the password', needs('chromium'), async (t) => {
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  const htpasswd = join(dir, 'users');
  await updateHtpasswd(htpasswd, 'alice', 'alice password', 4);
  await updateHtpasswd(htpasswd, 'bob', 'bob password', 4);
  const { server, url } = await startServer({ streams: { show: { type: 'slideshow', dir: EXAMPLES, intervalMs: 200 }, secret: { type: 'slideshow', dir: EXAMPLES } }, access: { htpasswd, streams: { secret: { read: ['bob'] } } } });
  t.after(() => server.close(100));
  const context = await browser!.newContext({ httpCredentials: { username: 'alice', password: 'alice password' } });
  t.after(() => context.close());
  const page = await context.newPage();
  await page.addInitScript(RECORD_SHOWS);
  await page.goto(url.href);
  const links = await page.$$eval('a', (anchors) => anchors.map((a) => a.getAttribute('href')));
  assert.ok(links.some((href) => href?.includes('show')), links.join(' '));
  assert.ok(!links.some((href) => href?.includes('secret')), links.join(' '));
  assert.ok(!(await page.content()).includes('secret'));
  await page.goto(new URL('view/show', url).href);
  const seen = await waitForShows(page, 3);
  assert.deepEqual(seen.map((shown) => shown.seq), [1, 2, 3]);
  const forbidden = await page.goto(new URL('view/secret', url).href);
  assert.equal(forbidden?.status(), 403);
});
