/**
 * One row of the live fan-out bench: a server harness child (live-server-*.ts) pushing stamped
 * frames at a fixed rate, load-generating children (live-load.ts) holding the viewers, and the
 * bench sampling CPU and RSS from /proc, killing a server that outgrows `rssCapMiB` and every
 * child on any way out.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HarnessCommand, HarnessReport, PushReport } from './live-harness.ts';
import type { LiveLoadCommand, LiveLoadReport } from './live-load.ts';
import type { LiveClientResult } from './live-client.ts';
import { monoUs } from './live-frames.ts';
import { kernelQueues, ProcSampler } from './server-process.ts';
import { socketMemory, type SocketMemory } from './socket-memory.ts';
import { machineTicks } from './machine.ts';
import { distribution, type Distribution } from './stats.ts';
import { startWorker, type Worker } from './worker.ts';

export const SERVERS = ['serverpush', 'mjpeg-server', 'mjpeg-proxy'] as const;
export type ServerKind = (typeof SERVERS)[number];

export interface RowOptions {
  /** One of SERVERS, or a name given with `script`. */
  server: string;
  /** A harness script to run instead of bench/lib/live-server-SERVER.ts (e.g. a patched build). */
  script?: string;
  viewers: number;
  /** Frame set label (`20k`, `150k`) and its files. */
  size: string;
  files: string[];
  meanFrameBytes: number;
  stalledShare: number;
  fps: number;
  /** Connect every viewer over this long, from the start of the warm-up. */
  rampMs: number;
  warmupMs: number;
  /** The warm-up goes on until every viewer has its stream, up to this long. */
  maxWarmupMs: number;
  measureMs: number;
  /** After the window: time for the window's last frames to arrive. */
  graceMs: number;
  procs: number;
  rssCapMiB: number;
  /** Node options for the server child, e.g. `--cpu-prof`. */
  serverNodeArgs: string[];
  /** More arguments for the harness (external harnesses: `--cpu`, `--arg NAME=VALUE`). */
  harnessArgs?: string[];
  /** Pin the load processes to these CPUs (`taskset -a -p -c`), e.g. `1`. */
  loadCpus?: string;
  /**
   * The stalled viewers read like the others through the warm-up and stop reading when the
   * window starts: the window measures the seconds in which their kernel buffers fill (and
   * until a server drops them), not a steady state after.
   */
  stallAtWindow?: boolean;
  /**
   * Nice value for the server (its whole process group, source included) and the load processes,
   * e.g. -10: on a machine shared with other work, both servers of a comparison then get their
   * CPU first (root only).
   */
  nice?: number;
}

export interface RowResult {
  options: Omit<RowOptions, 'files'>;
  /** `ok`, or what went wrong with the server (a finding, not a bench failure). */
  outcome: string;
  /** Frames the server was given in the window, and that rate. */
  pushed: number;
  pushedFps: number;
  /** Frames per second each reading viewer received (pushed in the window, arrived by its end + grace). */
  viewerFps: { min: number; mean: number };
  /** Received ÷ pushed in the window, per reading viewer. */
  share: { min: number; mean: number };
  /** Received ÷ nominal (fps × window), per reading viewer. */
  nominalShare: { min: number; mean: number };
  latencyMs: Distribution;
  readers: number;
  stalled: number;
  /** Viewers that got a 200 multipart response. */
  streaming: number;
  errors: Record<string, number>;
  readersClosedEarly: number;
  stalledClosedEarly: number;
  stalledKiBEach: number;
  badFrames: number;
  outOfOrder: number;
  framing: string;
  serverCpu: { mean: number; peak: number };
  /** `growthPerMin`: MiB per minute over the measured window. */
  rssMiB: { start: number; peak: number; end: number; growthPerMin: number };
  loadCpu: number;
  /** Highest CPU of one load process, % of one core: near 100 means the generator was the limit. */
  loadCpuMaxProc: number;
  loadLoopDelayMs: { p99: number; max: number };
  machineCpu: number;
  otherCpu: number;
  pushCallMs: Distribution;
  tickLateMs: Distribution;
  missedSlots: number;
  /** Bytes in the kernel's socket queues of the server's port at the end of the window. */
  kernelMiB: { serverSend: number; clientReceive: number };
  /** From the first connection until every viewer had its stream (s); NaN when some never did. */
  allReadyS: number;
  /** From the first connection until the send queues toward the stalled viewers stopped growing (s). */
  stalledFullS: number;
  /** Connections the kernel dropped during the row because the server's accept queue was full (machine-wide counter). */
  listenOverflows: number;
  /** The measured window, µs of CLOCK_MONOTONIC. */
  windowUs: { from: number; to: number };
  /**
   * What the server's kernel held for each stalled viewer at the end of the window, from `ss -tm`
   * (skmem w, the send queue's memory; tb, its limit), KiB: mean and max over the stalled viewers
   * still connected, and how many were; undefined without `ss`.
   */
  stalledSkmem?: { count: number; meanKiB: number; maxKiB: number; sndbufMaxKiB: number };
  /** Stalled viewers the server had dropped by the end of the window. */
  stalledDropped?: number;
  /** Wall time of the row, s. */
  wallS: number;
  /** Runs of this row (it is run again when other work on the machine disturbed it). */
  attempts?: number;
}

const alive = (child: ChildProcess): boolean => child.exitCode === null && child.signalCode === null;

async function endChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (!alive(child)) return;
  const exited = once(child, 'exit');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

const minMean = (values: number[]): { min: number; mean: number } => ({
  min: values.length === 0 ? Number.NaN : values.reduce((a, b) => Math.min(a, b), Infinity),
  mean: values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length,
});

export async function runRow(options: RowOptions): Promise<RowResult> {
  const started = performance.now();
  const script = options.script ? pathToFileURL(resolve(options.script)) : new URL(`./live-server-${options.server}.ts`, import.meta.url);
  const harness = startWorker<HarnessReport, HarnessCommand>(script, ['--frames', options.files.join(','), '--fps', String(options.fps), ...(options.harnessArgs ?? [])], options.serverNodeArgs, 'the child');
  const loads: Array<Worker<LiveLoadReport, LiveLoadCommand>> = [];
  let sampler: ProcSampler | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  let outcome = 'ok';
  let serverGroup: number | undefined;
  try {
    const ready = await harness.next('ready', 20_000);
    if (ready.type !== 'ready') throw new Error('harness did not start');
    serverGroup = ready.serverGroup;
    const pid = ready.serverPid ?? harness.child.pid!;
    const server = ready.serverPid === undefined ? harness.child : undefined;
    sampler = new ProcSampler(pid, 500);
    const capKiB = options.rssCapMiB * 1024;
    const startedAt = Date.now();
    let stopping = false;
    harness.child.once('exit', (code, signal) => {
      if (outcome === 'ok' && !stopping) outcome = `crashed after ${((Date.now() - startedAt) / 1000).toFixed(1)} s (${code ?? signal})`;
    });
    watchdog = setInterval(() => {
      const last = sampler?.samples.at(-1);
      if (last && last.rssKiB > capKiB && alive(harness.child)) {
        outcome = `killed: RSS over ${options.rssCapMiB} MiB after ${((Date.now() - startedAt) / 1000).toFixed(1)} s`;
        if (server) server.kill('SIGKILL');
        else killGroup(serverGroup);
      }
    }, 250);
    for (let p = 0; p < options.procs; p++) loads.push(startWorker<LiveLoadReport, LiveLoadCommand>(new URL('./live-load.ts', import.meta.url), [], [], 'the child'));
    for (const load of loads) await load.next('ready', 20_000);
    if (options.loadCpus !== undefined) for (const load of loads) pin(load.child.pid!, options.loadCpus);
    if (options.nice !== undefined) {
      renice(options.nice, serverGroup !== undefined ? ['-g', String(serverGroup)] : ['-p', String(pid)]);
      for (const load of loads) renice(options.nice, ['-p', String(load.child.pid!)]);
    }
    const loadSamplers = loads.map((load) => new ProcSampler(load.child.pid!, 500));
    await sleep(300);
    const rssStart = sampler.take()?.rssKiB ?? 0;
    // Spread the stalled viewers evenly: viewer i is stalled when the running share crosses an integer.
    const plans: Array<Array<{ id: number; paused: boolean }>> = loads.map(() => []);
    for (let i = 0; i < options.viewers; i++) {
      const paused = Math.floor((i + 1) * options.stalledShare) > Math.floor(i * options.stalledShare);
      plans[i % options.procs]!.push({ id: i, paused });
    }
    const overflowsBefore = listenOverflows();
    const t0 = Date.now();
    const t0Us = monoUs();
    const stallLater = options.stallAtWindow === true && options.stalledShare > 0;
    loads.forEach((load, p) => load.send({ type: 'start', port: ready.port, path: ready.path, viewers: plans[p]!, rampMs: Math.min(options.rampMs, options.warmupMs), stallLater }));
    // Warm-up: at least warmupMs, and until every viewer has its stream (a reader a whole frame,
    // a stalled viewer the response head), for at most maxWarmupMs.
    await sleep(options.warmupMs);
    let allReadyS = Number.NaN;
    for (;;) {
      const replies = loads.map((load) => load.next('status', 5000));
      for (const load of loads) load.send({ type: 'status' });
      let ready = 0;
      for (const reply of await Promise.all(replies)) if (reply.type === 'status') ready += reply.ready;
      if (ready >= options.viewers) {
        allReadyS = (monoUs() - t0Us) / 1e6;
        break;
      }
      if (monoUs() - t0Us > options.maxWarmupMs * 1000) break;
      await sleep(250);
    }
    // With stalled viewers: also until the kernel's send queues toward them stop growing (their
    // socket buffers are full and every server has to hold or drop their frames), so that the
    // window measures the steady state, not the seconds in which those buffers fill.
    let stalledFullS = Number.NaN;
    if (options.stalledShare > 0 && !stallLater) {
      let previous = kernelQueues(ready.port).serverSendQueue;
      for (;;) {
        await sleep(1000);
        const now = kernelQueues(ready.port).serverSendQueue;
        if (now - previous < 2 ** 20) {
          stalledFullS = (monoUs() - t0Us) / 1e6;
          break;
        }
        previous = now;
        if (monoUs() - t0Us > options.maxWarmupMs * 1000) break;
      }
    }
    if (stallLater) {
      // The window starts when every stalled viewer has stopped reading.
      const acks = loads.map((load) => load.next('stalled', 5000));
      for (const load of loads) load.send({ type: 'stall' });
      await Promise.all(acks);
    }
    const fromUs = monoUs();
    const windowFrom = Date.now();
    const ticksBefore = machineTicks();
    const benchBefore = process.cpuUsage();
    await sleep(options.measureMs);
    const windowTo = Date.now();
    const ticksAfter = machineTicks();
    const kernel = kernelQueues(ready.port);
    let sockets: Map<number, SocketMemory> | undefined;
    try {
      if (options.stalledShare > 0) sockets = socketMemory(ready.port);
    } catch {
      // no ss here: the row has no skmem figures
    }
    const overflows = listenOverflows() - overflowsBefore;
    const benchUsage = process.cpuUsage(benchBefore);
    const toUs = fromUs + options.measureMs * 1000;
    await sleep(options.graceMs);
    // What the server pushed (if it still runs and answers).
    let pushes: PushReport | undefined;
    if (alive(harness.child)) {
      harness.send({ type: 'report' });
      try {
        const reply = await harness.next('pushes', 10_000);
        if (reply.type === 'pushes') pushes = reply;
      } catch (error) {
        if (outcome === 'ok') outcome = `hung: ${(error as Error).message}`;
      }
    }
    const replies = loads.map((load) => load.next('result', 30_000));
    for (const load of loads) load.send({ type: 'collect', fromUs, toUs });
    const clients: LiveClientResult[] = [];
    const latencies: number[] = [];
    let loopP99 = 0;
    let loopMax = 0;
    for (const reply of await Promise.all(replies)) {
      if (reply.type !== 'result') continue;
      clients.push(...reply.clients);
      for (const value of reply.latenciesMs) latencies.push(value);
      loopP99 = Math.max(loopP99, reply.loopDelayP99Ms);
      loopMax = Math.max(loopMax, reply.loopDelayMaxMs);
    }
    for (const s of loadSamplers) s.stop();
    const rssEnd = sampler.take()?.rssKiB ?? sampler.samples.at(-1)?.rssKiB ?? 0;
    clearInterval(watchdog);
    stopping = true;
    harness.send({ type: 'exit' });
    // With --cpu-prof the child writes its profile on the way out.
    await endChild(harness.child, 15_000);
    sampler.stop();

    const windowS = options.measureMs / 1000;
    const pushed = pushes ? pushes.pushUs.filter((us) => us >= fromUs && us < toUs).length : Number.NaN;
    const nominal = options.fps * windowS;
    const readers = clients.filter((c) => !c.paused);
    const stalled = clients.filter((c) => c.paused);
    const errors: Record<string, number> = {};
    for (const c of clients) if (c.error) errors[c.error] = (errors[c.error] ?? 0) + 1;
    const serverCpu = sampler.cpuPercent(windowFrom, windowTo + 50);
    const loadCpus = loadSamplers.map((s) => s.cpuPercent(windowFrom, windowTo + 50).mean);
    const loadCpu = loadCpus.reduce((a, b) => a + b, 0);
    const machineCpu = ((ticksAfter.busy - ticksBefore.busy) / Math.max(1, ticksAfter.total - ticksBefore.total)) * 100;
    const benchCpu = ((benchUsage.user + benchUsage.system) / 1000 / (windowTo - windowFrom)) * 100;
    const rss = sampler.samples.filter((s) => s.at >= t0 - 1000).map((s) => s.rssKiB);
    // RSS growth over the window: a server that queues for viewers that do not read grows here.
    const inWindow = sampler.samples.filter((s) => s.at >= windowFrom && s.at <= windowTo + 50);
    const firstIn = inWindow[0];
    const lastIn = inWindow.at(-1);
    const rssGrowth = firstIn && lastIn && lastIn.at > firstIn.at ? ((lastIn.rssKiB - firstIn.rssKiB) / 1024) / ((lastIn.at - firstIn.at) / 60_000) : Number.NaN;
    const framings = [...new Set(readers.map((c) => c.framing).filter(Boolean))];
    let stalledSkmem: RowResult['stalledSkmem'];
    if (sockets) {
      const held = stalled.map((c) => sockets.get(c.localPort)).filter((m): m is SocketMemory => m !== undefined);
      stalledSkmem = {
        count: held.length,
        meanKiB: held.length === 0 ? 0 : held.reduce((sum, m) => sum + m.wmemQueued, 0) / held.length / 1024,
        maxKiB: held.reduce((max, m) => Math.max(max, m.wmemQueued), 0) / 1024,
        sndbufMaxKiB: held.reduce((max, m) => Math.max(max, m.sndbuf), 0) / 1024,
      };
    }
    return {
      options: { ...options, files: undefined } as unknown as Omit<RowOptions, 'files'>,
      outcome,
      pushed,
      pushedFps: pushed / windowS,
      viewerFps: minMean(readers.map((c) => c.frames / windowS)),
      share: minMean(readers.map((c) => c.frames / (Number.isNaN(pushed) ? nominal : Math.max(1, pushed)))),
      nominalShare: minMean(readers.map((c) => c.frames / nominal)),
      latencyMs: distribution(latencies),
      readers: readers.length,
      stalled: stalled.length,
      streaming: clients.filter((c) => c.status === 200).length,
      errors,
      readersClosedEarly: readers.filter((c) => c.closedEarly).length,
      stalledClosedEarly: stalled.filter((c) => c.closedEarly).length,
      stalledKiBEach: stalled.length === 0 ? 0 : stalled.reduce((sum, c) => sum + c.bytes, 0) / stalled.length / 1024,
      badFrames: clients.reduce((sum, c) => sum + c.badFrames + c.badStamps, 0),
      outOfOrder: clients.reduce((sum, c) => sum + c.outOfOrder, 0),
      framing: framings.join('+'),
      serverCpu,
      rssMiB: { start: rssStart / 1024, peak: rss.reduce((a, b) => Math.max(a, b), 0) / 1024, end: rssEnd / 1024, growthPerMin: rssGrowth },
      loadCpu,
      loadCpuMaxProc: loadCpus.reduce((a, b) => Math.max(a, b), 0),
      loadLoopDelayMs: { p99: loopP99, max: loopMax },
      machineCpu,
      otherCpu: Math.max(0, (machineCpu * cpus().length) - serverCpu.mean - loadCpu - benchCpu),
      pushCallMs: distribution(pushes ? pushes.pushCallMs.slice(-Math.round(options.fps * (windowS + options.graceMs / 1000))) : []),
      tickLateMs: distribution(pushes ? pushes.tickLateMs.slice(-Math.round(options.fps * (windowS + options.graceMs / 1000))) : []),
      kernelMiB: { serverSend: kernel.serverSendQueue / 2 ** 20, clientReceive: kernel.clientReceiveQueue / 2 ** 20 },
      missedSlots: pushes ? pushes.missedSlotsUs.filter((us) => us >= fromUs && us < toUs).length : 0,
      allReadyS,
      stalledFullS,
      listenOverflows: overflows,
      windowUs: { from: fromUs, to: toUs },
      ...(stalledSkmem ? { stalledSkmem } : {}),
      stalledDropped: stalled.filter((c) => c.closedEarly).length,
      wallS: (performance.now() - started) / 1000,
    };
  } finally {
    clearInterval(watchdog);
    sampler?.stop();
    for (const load of loads) if (alive(load.child)) load.child.kill('SIGKILL');
    if (alive(harness.child)) {
      harness.send({ type: 'exit' });
      await endChild(harness.child, 5000);
    }
    killGroup(serverGroup);
  }
}

/** Kills an external server's process group (it may have outlived its harness). */
function killGroup(group: number | undefined): void {
  if (group === undefined) return;
  try {
    process.kill(-group, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** `renice -n NICE` a process (`-p PID`) or a process group (`-g PGID`). */
function renice(nice: number, target: string[]): void {
  const run = spawnSync('renice', ['-n', String(nice), ...target], { encoding: 'utf8' });
  if (run.error || run.status !== 0) throw new Error(`renice ${nice} ${target.join(' ')} failed: ${run.error?.message ?? run.stderr}`);
}

/** Moves a process (all its threads) to `cpus` (`taskset -a -p -c`). */
export function pin(pid: number, cpus: string): void {
  const run = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' });
  if (run.error || run.status !== 0) throw new Error(`taskset could not pin process ${pid} to CPU ${cpus}: ${run.error?.message ?? run.stderr}`);
}

/** TcpExt ListenOverflows of the machine (/proc/net/netstat): connections dropped because a listening socket's accept queue was full. */
export function listenOverflows(): number {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const names = lines[i]!.split(/\s+/);
      const values = lines[i + 1]!.split(/\s+/);
      if (names[0] !== 'TcpExt:') continue;
      const at = names.indexOf('ListenOverflows');
      return at === -1 ? 0 : Number(values[at]);
    }
  } catch {
    // not Linux
  }
  return 0;
}

/** CPU seconds of every process on the machine by pid, with its name (for "what else ran"). */
export function processTimes(): Map<number, { comm: string; cpuSeconds: number }> {
  const times = new Map<number, { comm: string; cpuSeconds: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      times.set(Number(entry), { comm, cpuSeconds: (Number(fields[11]) + Number(fields[12])) / 100 });
    } catch {
      // gone meanwhile
    }
  }
  return times;
}

/** The busiest processes between two snapshots, leaving out `exclude` pids. */
export function busiestOthers(before: Map<number, { comm: string; cpuSeconds: number }>, after: Map<number, { comm: string; cpuSeconds: number }>, exclude: Set<number>, top = 5): Array<{ comm: string; cpuSeconds: number }> {
  const byName = new Map<string, number>();
  for (const [pid, now] of after) {
    if (exclude.has(pid)) continue;
    const delta = now.cpuSeconds - (before.get(pid)?.cpuSeconds ?? 0);
    if (delta > 0) byName.set(now.comm, (byName.get(now.comm) ?? 0) + delta);
  }
  return [...byName].map(([comm, cpuSeconds]) => ({ comm, cpuSeconds })).sort((a, b) => b.cpuSeconds - a.cpuSeconds).slice(0, top);
}
