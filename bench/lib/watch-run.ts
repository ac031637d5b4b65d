/**
 * One row of bench/watch-rate.ts: a camera child (watch-writer.ts) renaming stamped JPEGs over
 * FEED/current.jpg, one server watching it (serverpush's CLI `serve --watch`, or the C reference
 * watch-reference.c), both pinned to one core, and one load process (live-load.ts) holding the
 * viewers, pinned to the other. Every child is killed on every way out.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LiveLoadCommand, LiveLoadReport } from './live-load.ts';
import type { LiveClientResult } from './live-client.ts';
import { monoUs } from './live-frames.ts';
import { machineTicks } from './machine.ts';
import { children, ProcSampler } from './server-process.ts';
import { distribution, type Distribution } from './stats.ts';
import { startWorker } from './worker.ts';
import type { RenameReport, WriterCommand, WriterReport } from './watch-writer.ts';

/** The core of the server and the camera, and the core of the viewers. */
export const SERVER_CORE = 0;
export const LOAD_CORE = 1;

export interface WatchServer {
  /** `serverpush`, `reference`, or the name given to another serverpush build. */
  name: string;
  /** `[command, ...args]` before the feed arguments: a serverpush CLI, or the reference binary. */
  kind: 'serverpush' | 'reference';
  command: string[];
}

export interface WatchRowOptions {
  server: WatchServer;
  /** `file`: `--watch FEED/current.jpg`; `folder`: `--watch FEED`. */
  mode: 'file' | 'folder';
  fps: number;
  viewers: number;
  files: string[];
  /** Where the feed folder is made (tmpfs by default: see watch-rate.ts). */
  feedRoot: string;
  warmupMs: number;
  measureMs: number;
  graceMs: number;
}

export interface WatchRow {
  server: string;
  mode: 'file' | 'folder';
  fps: number;
  viewers: number;
  /** `ok`, or what went wrong (a finding, not a bench failure). */
  outcome: string;
  /** Versions renamed in during the window, and that rate. */
  renames: number;
  writerFps: number;
  writerMissedSlots: number;
  /** From the stamp to the end of rename(), µs, p50 / max over the row. */
  stampToRenameUs: { p50: number; max: number };
  /** Versions a viewer received ÷ versions renamed in the window: worst viewer, mean. */
  delivered: { min: number; mean: number };
  /** Rename → last byte at a viewer, every frame of every viewer, ms. */
  latencyMs: Distribution;
  streaming: number;
  errors: Record<string, number>;
  badFrames: number;
  outOfOrder: number;
  serverCpu: number;
  writerCpu: number;
  loadCpu: number;
  otherCpu: number;
  serverWarnings: string[];
}

const alive = (child: ChildProcess): boolean => child.exitCode === null && child.signalCode === null;

/** Pins every thread of `pid` (and the threads it makes later) to `core`. */
export function pin(pid: number, core: number): void {
  execFileSync('taskset', ['-a', '-cp', String(core), String(pid)], { stdio: 'ignore' });
}

/** Starts the server on the feed, pinned to SERVER_CORE; resolves its port and its log. */
async function startServer(server: WatchServer, watchPath: string, feed: string): Promise<{ child: ChildProcess; port: number; path: string; log: string[] }> {
  const args = server.kind === 'serverpush'
    ? [...server.command, 'serve', '--watch', watchPath, '--port', '0', '--host', '127.0.0.1']
    : [...server.command, feed, 'current.jpg', '0'];
  const child = spawn('taskset', ['-c', String(SERVER_CORE), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const log: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${server.name} did not report its port within 10 s: ${log.join('\n')}`)), 10_000);
    const scan = (text: string): void => {
      for (const line of text.split('\n').filter(Boolean)) {
        log.push(line);
        const match = / serving at http:\/\/127\.0\.0\.1:(\d+)\/|^port (\d+)$/.exec(line);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1] ?? match[2]));
        }
      }
    };
    child.stdout!.setEncoding('utf8').on('data', scan);
    child.stderr!.setEncoding('utf8').on('data', scan);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${server.name} exited (${code ?? signal}) before listening: ${log.join('\n')}`));
    });
  });
  return { child, port, path: server.kind === 'serverpush' ? '/stream' : '/', log };
}

export async function runWatchRow(o: WatchRowOptions): Promise<WatchRow> {
  const feed = mkdtempSync(join(o.feedRoot, 'serverpush-watch-bench-'));
  const target = join(feed, 'current.jpg');
  const writer = startWorker<WriterReport, WriterCommand>(new URL('./watch-writer.ts', import.meta.url), ['--frames', o.files.join(','), '--target', target, '--fps', String(o.fps)], [], 'the camera');
  const load = startWorker<LiveLoadReport, LiveLoadCommand>(new URL('./live-load.ts', import.meta.url), [], [], 'the load process');
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  const samplers: ProcSampler[] = [];
  let outcome = 'ok';
  try {
    await writer.next('ready', 20_000);
    pin(writer.child.pid!, SERVER_CORE);
    await load.next('ready', 20_000);
    pin(load.child.pid!, LOAD_CORE);
    server = await startServer(o.server, o.mode === 'file' ? target : feed, feed);
    const serverChild = server.child;
    serverChild.once('exit', (code, signal) => { if (outcome === 'ok') outcome = `exited (${code ?? signal})`; });
    const [serverSampler, writerSampler, loadSampler] = [serverChild.pid!, writer.child.pid!, load.child.pid!].map((pid) => new ProcSampler(pid, 500)) as [ProcSampler, ProcSampler, ProcSampler];
    samplers.push(serverSampler, writerSampler, loadSampler);
    load.send({ type: 'start', port: server.port, path: server.path, viewers: Array.from({ length: o.viewers }, (_, id) => ({ id, paused: false })), rampMs: 500 });
    await load.next('opened', 20_000);
    await sleep(o.warmupMs);
    for (const deadline = performance.now() + 10_000; performance.now() < deadline;) {
      const reply = load.next('status', 5000);
      load.send({ type: 'status' });
      const status = await reply;
      if (status.type === 'status' && status.ready >= o.viewers) break;
      await sleep(250);
    }
    const fromUs = monoUs();
    const windowFrom = Date.now();
    const ticksBefore = machineTicks();
    const benchBefore = process.cpuUsage();
    await sleep(o.measureMs);
    const windowTo = Date.now();
    const ticksAfter = machineTicks();
    const benchUsage = process.cpuUsage(benchBefore);
    const toUs = fromUs + o.measureMs * 1000;
    await sleep(o.graceMs);
    const renamesReply = writer.next('renames', 10_000);
    writer.send({ type: 'report' });
    const renames = (await renamesReply) as RenameReport;
    const resultReply = load.next('result', 30_000);
    load.send({ type: 'collect', fromUs, toUs });
    const result = await resultReply;
    for (const sampler of samplers) sampler.stop();
    const clients: LiveClientResult[] = result.type === 'result' ? result.clients : [];
    const latencies = result.type === 'result' ? Array.from(result.latenciesMs) : [];
    const inWindow = renames.renameUs.filter((us) => us >= fromUs && us < toUs).length;
    const shares = clients.map((c) => c.frames / Math.max(1, inWindow));
    const errors: Record<string, number> = {};
    for (const c of clients) if (c.error) errors[c.error] = (errors[c.error] ?? 0) + 1;
    const cpu = (sampler: ProcSampler): number => sampler.cpuPercent(windowFrom, windowTo + 50).mean;
    const machineCpu = ((ticksAfter.busy - ticksBefore.busy) / Math.max(1, ticksAfter.total - ticksBefore.total)) * 100 * cpus().length;
    const benchCpu = ((benchUsage.user + benchUsage.system) / 1000 / (windowTo - windowFrom)) * 100;
    const stampToRename = distribution(renames.stampToRenameUs);
    return {
      server: o.server.name,
      mode: o.mode,
      fps: o.fps,
      viewers: o.viewers,
      outcome,
      renames: inWindow,
      writerFps: inWindow / (o.measureMs / 1000),
      writerMissedSlots: renames.missedSlots,
      stampToRenameUs: { p50: stampToRename.p50, max: stampToRename.max },
      delivered: {
        min: shares.length ? Math.min(...shares) : Number.NaN,
        mean: shares.length ? shares.reduce((a, b) => a + b, 0) / shares.length : Number.NaN,
      },
      latencyMs: distribution(latencies),
      streaming: clients.filter((c) => c.status === 200).length,
      errors,
      badFrames: clients.reduce((sum, c) => sum + c.badFrames + c.badStamps, 0),
      outOfOrder: clients.reduce((sum, c) => sum + c.outOfOrder, 0),
      serverCpu: cpu(serverSampler),
      writerCpu: cpu(writerSampler),
      loadCpu: cpu(loadSampler),
      otherCpu: Math.max(0, machineCpu - cpu(serverSampler) - cpu(writerSampler) - cpu(loadSampler) - benchCpu),
      serverWarnings: server.log.filter((line) => / (warn|error) /.test(line)),
    };
  } finally {
    for (const sampler of samplers) sampler.stop();
    for (const child of [writer.child, load.child, server?.child]) {
      if (!child || !alive(child)) continue;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(feed, { recursive: true, force: true });
  }
}
