/**
 * Frames for the live fan-out bench (bench/live-fanout.ts): real JPEGs made once with ffmpeg, and
 * a push-time stamp written into each frame as a JPEG comment (COM segment) right after SOI, so
 * that every server passes it through untouched and the load generator reads the frame's sequence
 * number, its push time and its length from the bytes it receives, whatever the framing.
 *
 * Stamp: `FF D8 | FF FE 00 2E | sp-ts:<16 digits µs>:<10 digits seq>:<10 digits length>`, then
 * the rest of the original JPEG. Times are CLOCK_MONOTONIC (`process.hrtime`), one clock for
 * every process on the machine, so the server's push time and a client's receipt compare directly
 * without any wall-clock step or slew between processes.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const MARKER = Buffer.from('sp-ts:', 'latin1');
/** Bytes of the COM payload: `sp-ts:` 16 digits `:` 10 digits `:` 10 digits. */
export const STAMP_BYTES = MARKER.length + 16 + 1 + 10 + 1 + 10;
/** SOI (2) + COM marker (2) + COM length (2): where the payload starts in a stamped frame. */
export const STAMP_OFFSET = 6;
/** Bytes the stamp adds to a JPEG. */
export const STAMP_OVERHEAD = 4 + STAMP_BYTES;

/** Microseconds of CLOCK_MONOTONIC (shared by every process on this machine). */
export const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);

export interface FrameSet {
  label: string;
  dir: string;
  files: string[];
  meanBytes: number;
  origin: string;
}

export interface FrameSpec {
  /** `20k` or `150k`. */
  label: string;
  size: string;
  args: string[];
}

/** testsrc2 at 640×480 -q:v 5 is ~20 KB a frame; 1920×1080 at -q:v 1 (qmin 1) is ~150 KB. */
export const FRAME_SPECS: Record<string, FrameSpec> = {
  '20k': { label: '20k', size: '640x480', args: ['-q:v', '5'] },
  '150k': { label: '150k', size: '1920x1080', args: ['-qmin', '1', '-q:v', '1'] },
};

/** Makes `count` JPEGs (ffmpeg testsrc2, moving) in a new temporary folder. */
export async function makeFrames(spec: FrameSpec, count = 30): Promise<FrameSet> {
  const dir = await mkdtemp(join(tmpdir(), `serverpush-live-${spec.label}-`));
  const run = spawnSync('ffmpeg', [
    '-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${spec.size}:rate=30`,
    '-frames:v', String(count), ...spec.args, join(dir, 'frame-%03d.jpg'),
  ], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
  if (run.error || run.status !== 0) {
    throw new Error(`ffmpeg could not make the ${spec.label} frames: ${run.error?.message ?? run.stderr.toString()}`);
  }
  const files = (await readdir(dir)).filter((name) => name.endsWith('.jpg')).sort().map((name) => join(dir, name));
  let total = 0;
  for (const file of files) {
    const body = await readFile(file);
    if (body[0] !== 0xff || body[1] !== 0xd8) throw new Error(`${file} is not a JPEG`);
    total += body.length;
  }
  return { label: spec.label, dir, files, meanBytes: Math.round(total / files.length) + STAMP_OVERHEAD, origin: `ffmpeg testsrc2 ${spec.size.replace('x', '×')} ${spec.args.join(' ')}` };
}

/** A JPEG with room for the stamp after SOI; `stamp()` fills it into a fresh copy. */
export class FrameTemplate {
  readonly bytes: Buffer;

  constructor(jpeg: Buffer) {
    const bytes = Buffer.allocUnsafe(jpeg.length + STAMP_OVERHEAD);
    bytes[0] = 0xff;
    bytes[1] = 0xd8;
    bytes[2] = 0xff;
    bytes[3] = 0xfe;
    bytes.writeUInt16BE(2 + STAMP_BYTES, 4);
    MARKER.copy(bytes, STAMP_OFFSET);
    jpeg.copy(bytes, STAMP_OFFSET + STAMP_BYTES, 2);
    this.bytes = bytes;
  }

  /** A new buffer (servers may keep a frame while the next is made) stamped with `seq` and `pushUs`. */
  stamp(seq: number, pushUs: number): Buffer {
    const out = Buffer.allocUnsafe(this.bytes.length);
    this.bytes.copy(out);
    const text = `${String(pushUs).padStart(16, '0')}:${String(seq).padStart(10, '0')}:${String(out.length).padStart(10, '0')}`;
    out.write(text, STAMP_OFFSET + MARKER.length, 'latin1');
    return out;
  }
}

export interface Stamp {
  pushUs: number;
  seq: number;
  length: number;
}

/** Reads the digits after the marker (`buf[at]` is the first digit); undefined when malformed. */
export function readStamp(buf: Uint8Array, at: number): Stamp | undefined {
  if (at + STAMP_BYTES - MARKER.length > buf.length) return undefined;
  const pushUs = digits(buf, at, 16);
  const seq = digits(buf, at + 17, 10);
  const length = digits(buf, at + 28, 10);
  if (pushUs < 0 || seq < 0 || length < 0 || buf[at + 16] !== 0x3a || buf[at + 27] !== 0x3a) return undefined;
  return { pushUs, seq, length };
}

function digits(buf: Uint8Array, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}
