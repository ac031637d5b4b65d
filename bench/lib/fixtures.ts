import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Fixture {
  dir: string;
  files: number;
  meanBytes: number;
  /** How the files were made: `ffmpeg testsrc2` or `random bytes`. */
  origin: string;
}

/** serverpush refuses a document containing `--B` for its boundary B, which starts `serverpush-`. */
const FORBIDDEN = Buffer.from('--serverpush-', 'latin1');

/**
 * A temporary folder of `count` JPEG documents of about 20 KB: real frames of ffmpeg's testsrc2
 * (640×360, -q:v 3) when ffmpeg is installed, otherwise random bytes between a JPEG's start and
 * end markers (the server never decodes images).
 */
export async function makeSlideFolder(count: number): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'serverpush-bench-'));
  const ffmpeg = spawnSync('ffmpeg', [
    '-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=1',
    '-frames:v', String(count), '-q:v', '3', join(dir, 'slide-%03d.jpg'),
  ], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
  let origin = 'ffmpeg testsrc2 640×360 JPEG';
  if (ffmpeg.error || ffmpeg.status !== 0) {
    origin = 'random bytes named .jpg';
    for (let i = 1; i <= count; i++) {
      const body = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(20 * 1024), Buffer.from([0xff, 0xd9])]);
      await writeFile(join(dir, `slide-${String(i).padStart(3, '0')}.jpg`), body);
    }
  }
  const names = (await readdir(dir)).filter((name) => name.endsWith('.jpg'));
  let total = 0;
  for (const name of names) {
    const body = await readFile(join(dir, name));
    if (body.includes(FORBIDDEN)) throw new Error(`${name} contains ${FORBIDDEN.toString()}; the server would skip it`);
    total += body.length;
  }
  if (names.length !== count) throw new Error(`made ${names.length} documents in ${dir}, wanted ${count}`);
  return { dir, files: names.length, meanBytes: Math.round(total / names.length), origin };
}
