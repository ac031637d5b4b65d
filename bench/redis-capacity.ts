/**
 * What one redis-server costs per stream and per subscribed serverpush process (issue 14,
 * docs/scaling.md): a publisher puts frames on the bus exactly as a source's process does (the
 * RedisBus publish script: SET latest + PUBLISH, one copy of the frame sent), and N subscriber
 * connections, each standing for one serverpush process with viewers, take every frame. Redis's
 * CPU (from /proc) and the bytes it sends, for each frame size and N.
 *
 *   npm run build && node --import tsx bench/redis-capacity.ts [--subscribers 1,8,32] [--sizes 20000,150000] [--fps 30] [--seconds 6]
 */
import { spawn } from 'node:child_process';
import { createServer as createNetServer } from 'node:net';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@redis/client';
import { RedisBus } from '../src/bus/redis-bus.ts';
import { encodeBusFrame, newEpoch } from '../src/bus/frame-codec.ts';
import { sampleProcess } from './lib/server-process.ts';
import { machineDescription } from './lib/report.ts';
import { waitForQuiet } from './lib/machine.ts';

const { values } = parseArgs({ options: { subscribers: { type: 'string', default: '1,8,32' }, sizes: { type: 'string', default: '20000,150000' }, fps: { type: 'string', default: '30' }, seconds: { type: 'string', default: '6' } } });
const fps = Number(values.fps);
const seconds = Number(values.seconds);

const port = await new Promise<number>((resolve) => {
  const server = createNetServer().listen(0, '127.0.0.1', () => {
    const { port: free } = server.address() as { port: number };
    server.close(() => resolve(free));
  });
});
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
process.on('exit', () => redis.kill('SIGKILL'));
await sleep(500);
const url = `redis://127.0.0.1:${port}/0`;
const bus = await RedisBus.connect({ url });
const rows: string[] = [];
for (const size of values.sizes.split(',').map(Number)) {
  for (const count of values.subscribers.split(',').map(Number)) {
    await waitForQuiet(15_000);
    const subscribers = await Promise.all(Array.from({ length: count }, async () => {
      const client = createClient({ url });
      client.on('error', () => {});
      await client.connect();
      let frames = 0;
      await client.subscribe('serverpush:{bench}:frames', () => { frames++; }, true);
      return { client, frames: () => frames };
    }));
    const body = new Uint8Array(size).fill(7);
    const epoch = newEpoch();
    let seq = 0;
    const before = sampleProcess(redis.pid!)!.cpuSeconds;
    const started = performance.now();
    const timer = setInterval(() => {
      void bus.publish('bench', encodeBusFrame({ epoch, seq: ++seq, contentType: 'image/jpeg', timestamp: Date.now(), publishedAt: Date.now(), body }), '');
    }, 1000 / fps);
    await sleep(seconds * 1000);
    clearInterval(timer);
    const elapsed = (performance.now() - started) / 1000;
    const cpu = ((sampleProcess(redis.pid!)!.cpuSeconds - before) / elapsed) * 100;
    await sleep(200);
    const delivered = subscribers.reduce((sum, s) => sum + s.frames(), 0);
    const outMBps = (delivered * size) / elapsed / 1e6;
    rows.push(`| ${(size / 1000).toFixed(0)} KB | ${count} | ${(seq / elapsed).toFixed(1)} | ${(delivered / count / elapsed).toFixed(1)} | ${outMBps.toFixed(1)} | ${cpu.toFixed(1)} | ${(cpu / Math.max(outMBps, 0.001)).toFixed(2)} |`);
    process.stderr.write(`${rows.at(-1)}\n`);
    await Promise.all(subscribers.map((s) => s.client.close()));
  }
}
await bus.close();
process.stdout.write(`\nMachine: ${machineDescription()}\n\n| frame | subscribed processes | frames/s published | frames/s per subscriber | MB/s out of Redis | Redis CPU % | CPU % per MB/s out |\n|---|--:|--:|--:|--:|--:|--:|\n${rows.join('\n')}\n`);
redis.kill('SIGKILL');
process.exit(0);
