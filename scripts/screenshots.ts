/**
 * Takes the README's screenshots of the index page and the viewer with headless Chromium:
 * `node --import tsx scripts/screenshots.ts` (after `npm run build`, which bundles the player).
 * Writes docs/screenshots/index.png, viewer.png (an html document of the example slideshow) and
 * viewer-live.png (a live stream of JPEG frames).
 */
import { readFile, mkdir } from 'node:fs/promises';
import { createServer } from '../src/server/server.ts';
import { launchChromium } from '../test/helpers/chromium.ts';

const examples = new URL('../examples/slideshow/', import.meta.url);
const out = new URL('../docs/screenshots/', import.meta.url);
await mkdir(out, { recursive: true });

const server = await createServer({
  port: 0,
  streams: {
    default: { type: 'slideshow', dir: examples.pathname, intervalMs: 5000, loop: true },
    cam: { type: 'push' },
    board: { type: 'push' },
  },
});
const url = await server.listen();
const jpegs = await Promise.all(['02-fish-cam.jpg', '07-pattern.jpeg'].map((name) => readFile(new URL(name, examples))));
let frame = 0;
const cam = setInterval(() => server.live('cam').push({ contentType: 'image/jpeg', body: jpegs[frame++ % jpegs.length]! }), 250);
const board = setInterval(() => {
  const now = new Date();
  const text = `departures ${now.toISOString().slice(11, 19)} UTC\n\n  10:42  Lyon        platform 3   on time\n  10:47  Basel       platform 7   +5 min\n  10:55  Milano      platform 1   on time\n`;
  server.live('board').push({ contentType: 'text/plain; charset=utf-8', body: new TextEncoder().encode(text) });
}, 1000);
server.live('cam').push({ contentType: 'image/jpeg', body: jpegs[0]! });
server.live('board').push({ contentType: 'text/plain; charset=utf-8', body: new TextEncoder().encode('departures') });

const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
  await page.goto(url.href, { waitUntil: 'commit' });
  await page.waitForTimeout(2500);
  await page.screenshot({ path: new URL('index.png', out).pathname, fullPage: true });

  await page.setViewportSize({ width: 900, height: 560 });
  await page.goto(new URL('view', url).href);
  await page.waitForFunction(() => document.getElementById('viewer')?.dataset['state'] === 'open', undefined, { polling: 100 });
  await page.waitForTimeout(1200);
  await page.screenshot({ path: new URL('viewer.png', out).pathname });

  await page.goto(new URL('view/cam', url).href);
  await page.waitForTimeout(3500);
  await page.screenshot({ path: new URL('viewer-live.png', out).pathname });
} finally {
  clearInterval(cam);
  clearInterval(board);
  await browser.close();
  await server.close(200);
}
console.log(`screenshots in ${out.pathname}`);
