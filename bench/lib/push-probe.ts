/**
 * Diagnostic preload for a serverpush server process (`node --import tsx --import
 * ./bench/lib/push-probe.ts dist/cli/main.js …`, with SP_PUSH_PROBE=FILE): wraps
 * `LiveStream.prototype.push` of dist/ and appends, for each stamped frame (live-frames.ts), one
 * line `<stamp µs> <push entry µs> <push µs>` to FILE: how long the frame took from the camera's
 * write to the hub (the source path: pipe, reads, splitting) and how long the synchronous fan-out
 * took. Used by the stress harness with `--arg probe=FILE`.
 */
import { appendFileSync } from 'node:fs';
import { MARKER, readStamp, STAMP_OFFSET } from './live-frames.ts';

const file = process.env['SP_PUSH_PROBE'];
if (file) {
  const { LiveStream } = await import(new URL('../../dist/hub/live-stream.js', import.meta.url).href) as typeof import('../../src/hub/live-stream.ts');
  const push = LiveStream.prototype.push;
  const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);
  let lines = '';
  LiveStream.prototype.push = function (this: InstanceType<typeof LiveStream>, part) {
    const entry = monoUs();
    const result = push.call(this, part);
    const stamp = readStamp(part.body, STAMP_OFFSET + MARKER.length);
    if (stamp) lines += `${stamp.pushUs} ${entry} ${monoUs() - entry}\n`;
    return result;
  };
  setInterval(() => {
    if (lines === '') return;
    appendFileSync(file, lines);
    lines = '';
  }, 250).unref();
}
