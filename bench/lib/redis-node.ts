/**
 * One serverpush process of the Redis fan-out bench (bench/redis-fanout.ts): the built server
 * (dist/) with one `push` stream at /stream, on the Redis bus when `--redis URL` is given. With
 * `--push` it is the stream's source: it makes stamped frames at `--fps` and pushes them (through
 * live-harness.ts's frame clock), so its frames reach the other processes through Redis. Without
 * it, it only serves what the bus brings.
 *
 * argv: `--frames FILES --fps N [--redis URL] [--push]`; IPC as live-harness.ts.
 */
import { parseArgs } from 'node:util';
import { harnessMain } from './live-harness.ts';
import type { HarnessCommand, HarnessReport } from './live-harness.ts';

const { values } = parseArgs({ options: { frames: { type: 'string' }, fps: { type: 'string' }, redis: { type: 'string' }, push: { type: 'boolean' } }, strict: true });
// live-harness.ts reads --frames and --fps itself.
process.argv = [process.argv[0]!, process.argv[1]!, '--frames', values.frames ?? '', '--fps', values.fps ?? '30'];

async function start() {
  const dist = new URL('../../dist/index.js', import.meta.url).href;
  const { createServer } = await import(dist) as typeof import('../../src/index.ts');
  const server = await createServer({ port: 0, host: '127.0.0.1', streams: { default: { type: 'push' } }, ...(values.redis ? { redis: { url: values.redis } } : {}) });
  const url = await server.listen();
  const live = server.live();
  return { port: Number(url.port), path: '/stream', push: (frame: Buffer) => { live.push({ contentType: 'image/jpeg', body: frame }); } };
}

if (values.push) {
  harnessMain(start);
} else {
  start().then(({ port, path }) => {
    const send = (message: HarnessReport) => process.send?.(message);
    process.on('message', (message: HarnessCommand) => {
      if (message.type === 'report') send({ type: 'pushes', pushUs: [], pushCallMs: [], tickLateMs: [], missedSlotsUs: [] });
      else if (message.type === 'exit') process.exit(0);
    });
    process.on('disconnect', () => process.exit(0));
    send({ type: 'ready', port, path });
  }, (error: unknown) => {
    process.stderr.write(`redis node: ${(error as Error).stack ?? String(error)}\n`);
    process.send?.({ type: 'error', message: String(error) }, undefined, {}, () => process.exit(1));
  });
}
