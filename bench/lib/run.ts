import { cpus, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClientPlan, LoadCommand, LoadReport } from './load-process.ts';
import { fetchStatus, kernelQueues, ProcSampler, startServer, StatusProbe } from './server-process.ts';
import { machineTicks } from './machine.ts';
import { distribution, summarize, type ClientsSummary, type Distribution } from './stats.ts';
import type { ClientResult } from './stream-client.ts';
import { startWorker, type Worker } from './worker.ts';

export interface ScenarioOptions {
  /** Path of the built CLI, dist/cli/main.js. */
  cli: string;
  dir: string;
  clients: number;
  intervalMs: number;
  /** Share of the clients that stop reading after the response head (0 to 1). */
  stalledShare: number;
  rampMs: number;
  /** Steady state after the ramp. */
  durationMs: number;
  onTimeMs: number;
  stallTimeoutMs: number;
  /** Load-generating processes. */
  procs: number;
  /** Node options for the server process, e.g. `--cpu-prof`. */
  serverNodeArgs: string[];
}

export interface RunResult {
  options: ScenarioOptions;
  /** What every client received (for --json). */
  clients: ClientResult[];
  /** When the first client connected, ms since the epoch. */
  startAt: number;
  readers: ClientsSummary;
  stalled: ClientsSummary | undefined;
  rssKiB: { start: number; peak: number; end: number; afterClientsLeft: number };
  serverCpu: { mean: number; peak: number };
  /** Sum over the load processes, % of one core. */
  loadCpu: number;
  loadLoopDelayMs: { p99: number; max: number };
  /** The 1-minute load average just before the clients connected (other work on the machine). */
  loadAverage: number;
  /** The whole machine's CPU busy time over the run, % of all cores. */
  machineCpu: number;
  /** CPU used by everything but the server, the load processes and the bench, % of one core. */
  otherCpu: number;
  /** Round trips of `GET /status` every 250 ms during the run. */
  statusRoundTripMs: Distribution;
  status: Record<string, unknown>;
  statusAfter: Record<string, unknown>;
  kernel: { serverSendQueue: number; clientReceiveQueue: number };
  serverWarnings: string[];
}

type LoadProcess = Worker<LoadReport, LoadCommand>;

async function startLoad(): Promise<LoadProcess> {
  const load = startWorker<LoadReport, LoadCommand>(new URL('./load-process.ts', import.meta.url), [], [], 'a load process');
  await load.next('ready');
  return load;
}

const maxOf = (values: number[]): number => values.reduce((a, b) => Math.max(a, b), 0);

/** One run: a fresh server, `clients` connections over `rampMs`, `durationMs` of steady state. */
export async function runScenario(options: ScenarioOptions): Promise<RunResult> {
  const { clients, intervalMs, rampMs, durationMs, procs } = options;
  const server = await startServer(options.cli, options.dir, [
    '--interval', String(intervalMs / 1000),
    '--stall-timeout', String(options.stallTimeoutMs / 1000),
  ], options.serverNodeArgs);
  const loads: LoadProcess[] = [];
  const serverSampler = new ProcSampler(server.pid);
  const loadSamplers: ProcSampler[] = [];
  let probe: StatusProbe | undefined;
  try {
    for (let i = 0; i < procs; i++) loads.push(await startLoad());
    loadSamplers.push(...loads.map((load) => new ProcSampler(load.child.pid!)));
    await sleep(500);
    const start = serverSampler.take();
    const ticksBefore = machineTicks();
    const benchBefore = process.cpuUsage();
    const wallBefore = performance.now();
    const loadAverage = loadavg()[0] ?? 0;
    probe = new StatusProbe(server.port);
    const startAt = Date.now() + 100;
    const from = start?.at ?? startAt;
    const plans: ClientPlan[][] = loads.map(() => []);
    for (let i = 0; i < clients; i++) {
      // Spread the stalled clients evenly: client i is stalled when the running share crosses an integer.
      const paused = Math.floor((i + 1) * options.stalledShare) > Math.floor(i * options.stalledShare);
      plans[i % procs]!.push({ id: i, connectAt: startAt + (i * rampMs) / clients, paused });
    }
    loads.forEach((load, j) => load.send({ type: 'start', port: server.port, clients: plans[j]! }));
    const windowEnd = startAt + rampMs + durationMs;
    const stopAt = windowEnd + Math.max(1000, intervalMs);
    await sleep(stopAt - Date.now());
    probe.stop();
    const ticksAfter = machineTicks();
    const benchUsage = process.cpuUsage(benchBefore);
    const benchCpu = ((benchUsage.user + benchUsage.system) / 1000 / (performance.now() - wallBefore)) * 100;
    const status = await fetchStatus(server.port);
    const kernel = kernelQueues(server.port);
    const end = serverSampler.take();
    const results: ClientResult[] = [];
    let loopP99 = 0;
    let loopMax = 0;
    const replies = loads.map((load) => load.next('result'));
    for (const load of loads) load.send({ type: 'stop' });
    for (const reply of await Promise.all(replies)) {
      if (reply.type !== 'result') continue;
      results.push(...reply.clients);
      loopP99 = Math.max(loopP99, reply.loopDelayP99Ms);
      loopMax = Math.max(loopMax, reply.loopDelayMaxMs);
    }
    for (const sampler of loadSamplers) sampler.stop();
    // Give the server time to notice every disconnect, then look at what it kept.
    await sleep(2000);
    const after = serverSampler.take();
    const statusAfter = await fetchStatus(server.port);
    serverSampler.stop();
    const during = serverSampler.samples.filter((s) => s.at >= startAt && s.at <= stopAt + 50).map((s) => s.rssKiB);
    const readers = results.filter((client) => !client.paused);
    const serverCpu = serverSampler.cpuPercent(from, stopAt + 50);
    const loadCpu = loadSamplers.reduce((sum, sampler) => sum + sampler.cpuPercent(from, stopAt + 50).mean, 0);
    const machineCpu = ((ticksAfter.busy - ticksBefore.busy) / Math.max(1, ticksAfter.total - ticksBefore.total)) * 100;
    const stalled = results.filter((client) => client.paused);
    return {
      options,
      readers: summarize(readers, intervalMs, startAt + rampMs, windowEnd, options.onTimeMs),
      stalled: stalled.length > 0 ? summarize(stalled, intervalMs, startAt + rampMs, windowEnd, options.onTimeMs) : undefined,
      clients: results,
      startAt,
      rssKiB: { start: start?.rssKiB ?? 0, peak: maxOf(during), end: end?.rssKiB ?? 0, afterClientsLeft: after?.rssKiB ?? 0 },
      serverCpu,
      loadCpu,
      loadLoopDelayMs: { p99: loopP99, max: loopMax },
      loadAverage,
      machineCpu,
      otherCpu: Math.max(0, machineCpu * cpus().length - serverCpu.mean - loadCpu - benchCpu),
      statusRoundTripMs: distribution(probe.roundTripsMs),
      status,
      statusAfter,
      kernel,
      serverWarnings: server.log.filter((line) => / (warn|error) /.test(line)),
    };
  } catch (error) {
    process.stderr.write(`server log (last 20 lines):\n${server.log.slice(-20).join('\n')}\nserver exit: ${server.child.exitCode ?? server.child.signalCode ?? 'running'}\n`);
    throw error;
  } finally {
    probe?.stop();
    serverSampler.stop();
    for (const sampler of loadSamplers) sampler.stop();
    for (const load of loads) if (load.child.exitCode === null) load.child.kill('SIGKILL');
    await server.stop();
  }
}
