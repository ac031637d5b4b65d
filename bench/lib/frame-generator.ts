/**
 * A camera on a pipe, for the live fan-out bench's stress rows: writes the prepared JPEGs to
 * standard output as concatenated JPEGs (what `ffmpeg -f mjpeg -` writes), each stamped with its
 * sequence number and the time it was written (live-frames.ts), on a fixed clock, with blocking
 * writes as ffmpeg's: when the reader falls behind, the pipe fills and the writer waits, so a
 * frame's latency includes the time it spent in the pipe. The same generator feeds serverpush
 * (`serve --exec`) and the C reference server (`generator | reference`).
 *
 *   node --import tsx bench/lib/frame-generator.ts --frames A.jpg,B.jpg --fps 30 --log FILE
 *
 * The log gets one line per frame as it is written: `p <write start µs> <write ms>`, and `m <µs>`
 * for a clock slot skipped because the previous write blocked past it (a camera keeps only its
 * latest frame). Times are CLOCK_MONOTONIC µs, the clock of the viewers' receipt times.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FrameTemplate, monoUs } from './live-frames.ts';

const { values } = parseArgs({ options: { frames: { type: 'string' }, fps: { type: 'string', default: '30' }, log: { type: 'string' } }, strict: true });
if (!values.frames || !values.log) throw new Error('--frames and --log are required');
const templates = values.frames.split(',').map((file) => new FrameTemplate(readFileSync(file)));
const periodMs = 1000 / Number(values.fps);
const log = openSync(values.log, 'a');
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Writes all of `bytes` to stdout, waiting while the pipe is full (stdout may be non-blocking). */
function writeAll(bytes: Buffer): boolean {
  let at = 0;
  while (at < bytes.length) {
    try {
      at += writeSync(1, bytes, at, bytes.length - at);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        Atomics.wait(sleeper, 0, 0, 1);
        continue;
      }
      return false; // EPIPE: the reader has gone.
    }
  }
  return true;
}

const origin = performance.now();
for (let seq = 1, slot = 0; ; slot++) {
  const wait = origin + slot * periodMs - performance.now();
  if (wait < -periodMs) {
    // Blocked past the next slot: skip to the newest, as a camera does.
    const skip = Math.floor(-wait / periodMs);
    const at = monoUs();
    writeSync(log, `m ${at}\n`.repeat(skip));
    slot += skip;
  } else if (wait > 0) {
    Atomics.wait(sleeper, 0, 0, wait);
  }
  const at = monoUs();
  const frame = templates[seq % templates.length]!.stamp(seq, at);
  seq++;
  const ok = writeAll(frame);
  writeSync(log, `p ${at} ${((monoUs() - at) / 1000).toFixed(3)}\n`);
  if (!ok) break;
}
closeSync(log);
