/**
 * A camera that writes JPEGs to a file, for the watch tests: run as its own process
 * (`node --import tsx test/helpers/camera-writer.ts '<json options>'`), as a real camera or
 * `ffmpeg -update 1` is. Each version carries its sequence number in a JPEG comment (COM segment)
 * right after SOI (see {@link stampSeq}), so a viewer can tell the versions apart.
 *
 * Modes:
 * - `rename`: writes each version whole to a temporary name beside the target and renames it over
 *   the target (`ffmpeg -update 1 -atomic_writing 1`, most cameras' FTP/SMB uploads);
 * - `inplace`: truncates the target and writes the version into it in `chunks` pieces (or cut at
 *   `cuts`), `pauseMs` apart.
 *
 * Versions are due `1000 / fps` ms apart; a writer that falls more than a period behind skips the
 * missed slots (a camera does not make frames it had no time for). When done it prints one JSON
 * line to stdout: `{ written, lastSeq }`.
 */
import { closeSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface CameraOptions {
  target: string;
  mode: 'rename' | 'inplace';
  /** JPEG files whose contents are written in turn. */
  frames: string[];
  fps: number;
  /** How long to write, or … */
  seconds?: number;
  /** … how many versions. */
  count?: number;
  /** `rename` only: the temporary name, in the target's folder (default `NAME.tmp`, as ffmpeg). */
  tmpName?: string;
  /** `inplace` only: in how many pieces each version is written (default 1). */
  chunks?: number;
  /** `inplace` only: explicit cut offsets (ascending) instead of `chunks`. */
  cuts?: number[];
  /** `inplace` only: pause between pieces, ms. */
  pauseMs?: number;
  /** Sequence number of the first version (default 1). */
  firstSeq?: number;
}

/** The tag of the comment that carries the sequence number. */
const TAG = 'camera-writer seq=';

/** `jpeg` with a COM segment `camera-writer seq=NNNNNNNN` inserted right after its SOI. */
export function stampSeq(jpeg: Buffer, seq: number): Buffer {
  const text = Buffer.from(`${TAG}${String(seq).padStart(8, '0')}`, 'latin1');
  const com = Buffer.alloc(4 + text.length);
  com[0] = 0xff;
  com[1] = 0xfe;
  com.writeUInt16BE(2 + text.length, 2);
  text.copy(com, 4);
  return Buffer.concat([jpeg.subarray(0, 2), com, jpeg.subarray(2)]);
}

/** The sequence number {@link stampSeq} put into `body`, or undefined. */
export function readSeq(body: Uint8Array): number | undefined {
  const head = Buffer.from(body.buffer, body.byteOffset, Math.min(body.byteLength, 64)).toString('latin1');
  const match = /camera-writer seq=(\d{8})/.exec(head);
  return match ? Number(match[1]) : undefined;
}

async function run(options: CameraOptions): Promise<{ written: number; lastSeq: number }> {
  const frames = options.frames.map((file) => readFileSync(file));
  const periodMs = 1000 / options.fps;
  const tmp = join(dirname(options.target), options.tmpName ?? `${basename(options.target)}.tmp`);
  const origin = performance.now();
  const end = options.seconds === undefined ? Infinity : origin + options.seconds * 1000;
  let seq = (options.firstSeq ?? 1) - 1;
  let written = 0;
  for (let slot = 0; ; slot++) {
    if (options.count !== undefined && written >= options.count) break;
    const due = origin + slot * periodMs;
    if (due >= end) break;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    else if (wait < -periodMs) continue; // missed slot
    seq++;
    const body = stampSeq(frames[seq % frames.length]!, seq);
    if (options.mode === 'rename') {
      writeFileSync(tmp, body);
      renameSync(tmp, options.target);
    } else {
      const cuts = options.cuts ?? Array.from({ length: (options.chunks ?? 1) - 1 }, (_, k) => Math.round(((k + 1) * body.length) / (options.chunks ?? 1)));
      const fd = openSync(options.target, 'w');
      let from = 0;
      for (const cut of [...cuts, body.length]) {
        if (from > 0 && options.pauseMs) await sleep(options.pauseMs);
        writeSync(fd, body, from, cut - from);
        from = cut;
      }
      closeSync(fd);
    }
    written++;
  }
  return { written, lastSeq: seq };
}

if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) {
  run(JSON.parse(process.argv[2]!) as CameraOptions).then(
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
    (error: unknown) => {
      process.stderr.write(`camera-writer: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}
