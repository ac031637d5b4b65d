/**
 * The camera of bench/watch-rate.ts, a child process forked with `--import tsx`: it writes each
 * frame whole to `NAME.tmp` beside the target and renames it over the target (as
 * `ffmpeg -update 1 -atomic_writing 1` and cameras' uploads do), `--fps` times a second.
 *
 * Each frame carries the stamp of live-frames.ts (sequence number, length, and a CLOCK_MONOTONIC
 * time in µs) so that the bench's viewers (live-client.ts) read it from what they receive. The
 * time is taken after the frame's bytes are written, right before the rename: it is written into
 * the temporary file with one `pwrite` of 16 digits, which is closed and renamed at once (a few
 * µs, measured: `stampToRenameUs`).
 *
 * argv: `--frames FILE[,FILE...]` `--target PATH` `--fps N`.
 * IPC: child → `ready` after its first frame; parent → `report` → child → `renames {...}`;
 * parent → `exit`. Slots are on a fixed clock; a slot overtaken by the next one is skipped.
 */
import { closeSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FrameTemplate, MARKER, monoUs, STAMP_OFFSET } from './live-frames.ts';

export type WriterCommand = { type: 'report' } | { type: 'exit' };

export interface RenameReport {
  type: 'renames';
  /** Stamp time of every frame renamed in, µs of CLOCK_MONOTONIC, in order. */
  renameUs: number[];
  /** From the stamp to the end of the rename, µs, per frame. */
  stampToRenameUs: number[];
  /** Slots skipped because the writer was more than a frame late. */
  missedSlots: number;
}

export type WriterReport = { type: 'ready' } | RenameReport | { type: 'error'; message: string };

const send = (message: WriterReport, then?: () => void): void => {
  process.send?.(message, undefined, {}, () => then?.());
};

function main(): void {
  const { values } = parseArgs({ options: { frames: { type: 'string' }, target: { type: 'string' }, fps: { type: 'string', default: '30' } }, strict: true });
  if (!values.frames || !values.target) throw new Error('--frames and --target are required');
  const target = values.target;
  const tmp = `${target}.tmp`;
  const templates = values.frames.split(',').map((file) => new FrameTemplate(readFileSync(file)));
  const periodMs = 1000 / Number(values.fps);
  const renameUs: number[] = [];
  const stampToRenameUs: number[] = [];
  let missedSlots = 0;
  let seq = 0;
  const writeOne = (): void => {
    seq++;
    const frame = templates[seq % templates.length]!.stamp(seq, 0);
    const fd = openSync(tmp, 'w');
    writeSync(fd, frame);
    const at = monoUs();
    writeSync(fd, String(at).padStart(16, '0'), STAMP_OFFSET + MARKER.length, 'latin1');
    closeSync(fd);
    renameSync(tmp, target);
    stampToRenameUs.push(monoUs() - at);
    renameUs.push(at);
  };
  writeOne();
  const origin = performance.now();
  let slot = 1;
  const tick = (): void => {
    writeOne();
    slot++;
    let wait = origin + slot * periodMs - performance.now();
    if (wait < -periodMs) {
      const skip = Math.floor(-wait / periodMs);
      missedSlots += skip;
      slot += skip;
      wait = origin + slot * periodMs - performance.now();
    }
    setTimeout(tick, Math.max(0, wait));
  };
  setTimeout(tick, periodMs);
  process.on('message', (message: WriterCommand) => {
    if (message.type === 'report') send({ type: 'renames', renameUs, stampToRenameUs, missedSlots });
    else if (message.type === 'exit') process.exit(0);
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready' });
}

try {
  main();
} catch (error) {
  send({ type: 'error', message: (error as Error).stack ?? String(error) }, () => process.exit(1));
}
