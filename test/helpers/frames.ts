import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile, readdir, rm, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareFileNames } from '../../src/sources/folder-catalog.ts';

const run = promisify(execFile);

/**
 * Real JPEG frames made by ffmpeg (testsrc, a moving pattern), `count` of them at `size`;
 * with `sizes`, frame i has size sizes[i % sizes.length] so a browser can tell them apart.
 */
export async function makeJpegFrames(count: number, size = '160x120', sizes?: string[]): Promise<Buffer[]> {
  const dir = await mkdtemp(join(tmpdir(), 'serverpush-frames-'));
  try {
    if (!sizes) {
      await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc=size=${size}:rate=30`, '-frames:v', String(count), '-q:v', '5', join(dir, 'f%04d.jpg')]);
    } else {
      for (let i = 0; i < count; i++) {
        await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc=size=${sizes[i % sizes.length]}:rate=30`, '-frames:v', '1', '-q:v', '5', join(dir, `f${String(i).padStart(4, '0')}.jpg`)]);
      }
    }
    const names = (await readdir(dir)).sort(compareFileNames);
    return await Promise.all(names.map((name) => readFile(join(dir, name))));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Colours of {@link makeColourFrames}, far apart so that JPEG's small errors never confuse them. */
export const PALETTE: Record<string, [number, number, number]> = {
  red: [255, 0, 0], lime: [0, 255, 0], blue: [0, 0, 255], yellow: [255, 255, 0],
  magenta: [255, 0, 255], cyan: [0, 255, 255], white: [255, 255, 255], black: [0, 0, 0],
};

/**
 * JPEG frames of one colour each (made by ffmpeg), frame i of `colours[i]` and `sizes[i]`, so
 * that a page can tell which frame an `<img>` holds from its size and one pixel (see RECORD_DRAWS).
 */
export async function makeColourFrames(colours: string[], sizes: string[]): Promise<Buffer[]> {
  const dir = await mkdtemp(join(tmpdir(), 'serverpush-frames-'));
  try {
    return await Promise.all(colours.map(async (colour, i) => {
      const file = join(dir, `f${i}.jpg`);
      await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `color=c=${colour}:s=${sizes[i]}`, '-frames:v', '1', '-q:v', '3', file]);
      return readFile(file);
    }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A function body for a page (arguments: the `<img>`'s id, PALETTE): records in `window.draws`
 * each new picture the `<img>` shows, as `['WIDTHxHEIGHT colour', Date.now()]`, checked at each
 * animation frame and every 10 ms. The picture is drawn into a canvas and its bottom-right pixel
 * read: the last pixel to be decoded, so a frame counts only once it is whole, as the page would
 * paint it. The `<img>` must be of the page's origin (a canvas tainted by another cannot be read).
 */
export const RECORD_DRAWS = `
  const [id, palette] = arguments;
  const canvas = document.createElement('canvas');
  const context = canvas.getContext('2d', { willReadFrequently: true });
  const nearest = (r, g, b) => {
    let best = 'other', bestDistance = 120 * 120;
    for (const [name, [pr, pg, pb]] of Object.entries(palette)) {
      const distance = (r - pr) ** 2 + (g - pg) ** 2 + (b - pb) ** 2;
      if (distance < bestDistance) { best = name; bestDistance = distance; }
    }
    return best;
  };
  window.draws = [];
  let last = '';
  const check = () => {
    const img = document.getElementById(id);
    if (!img || img.naturalWidth === 0) return;
    const w = img.naturalWidth, h = img.naturalHeight;
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    context.clearRect(0, 0, w, h);
    context.drawImage(img, 0, 0);
    const [r, g, b, a] = context.getImageData(w - 2, h - 2, 1, 1).data;
    const label = w + 'x' + h + ' ' + (a < 255 ? 'incomplete' : nearest(r, g, b));
    if (label !== last) {
      last = label;
      window.draws.push([label, Date.now()]);
    }
  };
  const frame = () => { check(); requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
  setInterval(check, 10);
`;
