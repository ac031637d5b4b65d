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
