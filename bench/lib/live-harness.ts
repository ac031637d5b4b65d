/**
 * The common part of the server harnesses of the live fan-out bench (bench/lib/live-server-*.ts).
 * Each harness is a child process forked by the bench with `--import tsx` (plus `--cpu-prof` when
 * asked); it starts one server on 127.0.0.1, then makes frames itself at a fixed rate from the
 * prepared JPEGs, stamps each with its push time (see live-frames.ts) and pushes it into the server.
 *
 * argv: `--frames FILE[,FILE...]` (the JPEGs), `--fps N`.
 * IPC: child → `ready {port, path}` once listening with a first frame pushed;
 * parent → `report` → child → `pushes {...}`; parent → `exit` → child exits (writing its CPU
 * profile when run with --cpu-prof). The child also exits when the bench goes away.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FrameTemplate, monoUs } from './live-frames.ts';

export interface HarnessServer {
  port: number;
  /** The stream's path, e.g. `/stream`. */
  path: string;
  /** Hands one frame to the server (which sends it to every viewer). */
  push(frame: Buffer): void;
}

export type HarnessCommand = { type: 'report' } | { type: 'exit' };

export interface PushReport {
  type: 'pushes';
  /** Push time of every frame (µs, CLOCK_MONOTONIC), in order. */
  pushUs: number[];
  /** How long each `push()` call took, ms (the synchronous part of the fan-out). */
  pushCallMs: number[];
  /** How late each tick of the frame clock fired, ms. */
  tickLateMs: number[];
  /** When frame slots were skipped (µs, CLOCK_MONOTONIC), once per slot: the event loop was busier than a whole frame interval. */
  missedSlotsUs: number[];
}

/**
 * `serverPid`: the process serving (to sample), when it is not the harness itself; `serverGroup`:
 * its process group, killed by the bench on every way out.
 */
export type HarnessReport = { type: 'ready'; port: number; path: string; serverPid?: number; serverGroup?: number } | PushReport | { type: 'error'; message: string };

function send(message: HarnessReport, then?: () => void): void {
  if (process.send) process.send(message, undefined, {}, () => then?.());
  else then?.();
}

export async function runHarness(start: () => Promise<HarnessServer>): Promise<void> {
  const { values } = parseArgs({ options: { frames: { type: 'string' }, fps: { type: 'string', default: '30' } }, strict: true });
  if (!values.frames) throw new Error('--frames is required');
  const templates = values.frames.split(',').map((file) => new FrameTemplate(readFileSync(file)));
  const fps = Number(values.fps);
  const periodMs = 1000 / fps;
  const server = await start();
  const pushUs: number[] = [];
  const pushCallMs: number[] = [];
  const tickLateMs: number[] = [];
  const missedSlotsUs: number[] = [];
  let seq = 0;
  const pushOne = (): void => {
    seq++;
    const at = monoUs();
    const frame = templates[seq % templates.length]!.stamp(seq, at);
    pushUs.push(at);
    const called = monoUs();
    server.push(frame);
    pushCallMs.push((monoUs() - called) / 1000);
  };
  pushOne();
  // A fixed frame clock: slot k is due at origin + k × period. A late slot is pushed as soon as
  // the event loop gets to it; slots overtaken by a later one are skipped (a live source does not
  // send a burst of old frames).
  const origin = performance.now();
  let slot = 1;
  const tick = (): void => {
    const late = performance.now() - (origin + slot * periodMs);
    tickLateMs.push(late);
    pushOne();
    slot++;
    let wait = origin + slot * periodMs - performance.now();
    // The next slot is already due: push it at once, late. A slot whose successor is due too is
    // skipped (a camera keeps only its latest frame while nobody reads).
    if (wait < -periodMs) {
      const skip = Math.floor(-wait / periodMs);
      const at = monoUs();
      for (let k = 0; k < skip; k++) missedSlotsUs.push(at);
      slot += skip;
      wait = origin + slot * periodMs - performance.now();
    }
    setTimeout(tick, Math.max(0, wait));
  };
  setTimeout(tick, periodMs);
  process.on('message', (message: HarnessCommand) => {
    if (message.type === 'report') {
      send({ type: 'pushes', pushUs, pushCallMs, tickLateMs, missedSlotsUs });
    } else if (message.type === 'exit') {
      process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', port: server.port, path: server.path });
}

/** Runs a harness's `start`, reporting a failure to the bench instead of hanging. */
export function harnessMain(start: () => Promise<HarnessServer>): void {
  runHarness(start).catch((error: unknown) => {
    process.stderr.write(`harness: ${(error as Error).stack ?? String(error)}\n`);
    send({ type: 'error', message: (error as Error).stack ?? String(error) }, () => process.exit(1));
  });
}
