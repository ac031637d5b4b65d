/**
 * Benchmark for issue 12: does a password-guessing flood slow the streams? A live stream pushed at
 * 30 fps with one viewer (a public stream), quiet and then while 8 clients send wrong passwords as
 * fast as they are answered (bcrypt cost 10). Prints the gaps between the viewer's receipts.
 *
 *   node --import tsx bench/access-flood.ts
 */
import { get, request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from '../src/server/server.ts';
import { updateHtpasswd } from '../src/server/access/htpasswd.ts';
import { machineDescription } from './lib/report.ts';

const dir = await mkdtemp(join(tmpdir(), 'serverpush-bench-flood-'));
await updateHtpasswd(join(dir, 'users'), 'alice', 'correct horse battery staple', 10);
const framesDir = new URL('../test/fixtures/frames/', import.meta.url);
const frames = readdirSync(framesDir).sort().map((name) => readFileSync(new URL(name, framesDir)));
const server = await createServer({ port: 0, streams: { cam: { type: 'push' } }, access: { htpasswd: join(dir, 'users'), streams: { cam: { read: ['public'] } }, failures: { limit: 1e9 } } });
const url = await server.listen();
let i = 0;
server.live('cam').push({ contentType: 'image/jpeg', body: frames[0]! });
const feed = setInterval(() => server.live('cam').push({ contentType: 'image/jpeg', body: frames[i++ % frames.length]! }), 33);
const gaps: number[] = [];
let last = 0;
const viewer = get(new URL('stream/cam', url), (res) => res.on('data', () => {
  const now = performance.now();
  if (last) gaps.push(now - last);
  last = now;
}));

async function phase(name: string, attackers: number): Promise<void> {
  let stop = false;
  let answered = 0;
  const running = Array.from({ length: attackers }, async (_, k) => {
    for (let n = 0; !stop; n++) {
      await new Promise<void>((resolve) => request(new URL('status', url), { headers: { Authorization: `Basic ${Buffer.from(`alice:guess ${k} ${n}`).toString('base64')}` } }, (res) => { res.resume(); res.on('end', () => { answered++; resolve(); }); }).end());
    }
  });
  gaps.length = 0;
  await new Promise((resolve) => setTimeout(resolve, 4000));
  stop = true;
  await Promise.all(running);
  const sorted = [...gaps].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(1);
  console.log(`${name.padEnd(32)} ${String(sorted.length).padStart(4)} writes in 4 s   gap p50 ${at(0.5)} ms   p99 ${at(0.99)} ms   max ${at(1)} ms   (${answered} wrong passwords answered)`);
}

console.log(`# a 30 fps viewer while wrong passwords are checked; ${machineDescription()}`);
await new Promise((resolve) => setTimeout(resolve, 1000));
await phase('quiet', 0);
await phase('8 clients guessing passwords', 8);
clearInterval(feed);
viewer.destroy();
await server.close(100);
await rm(dir, { recursive: true, force: true });
