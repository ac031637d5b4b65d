/**
 * A load-generating process of the live fan-out bench, forked with `--import tsx`. It opens its
 * share of the viewers over `rampMs`, and when told to collect it measures each viewer over the
 * window, closes every socket, sends the results back and exits.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { LiveClient, type LiveClientResult } from './live-client.ts';

export type LiveLoadCommand =
  | { type: 'start'; port: number; path: string; viewers: Array<{ id: number; paused: boolean }>; rampMs: number; stallLater?: boolean }
  | { type: 'status' }
  /** The paused viewers (started with `stallLater`) stop reading now. */
  | { type: 'stall' }
  | { type: 'collect'; fromUs: number; toUs: number };

export type LiveLoadReport =
  | { type: 'ready' }
  | { type: 'opened'; count: number }
  /** Viewers that have their stream: readers with a whole frame, stalled viewers with the response head. */
  | { type: 'status'; ready: number; total: number }
  | { type: 'stalled'; count: number; atUs: number }
  | {
    type: 'result';
    clients: LiveClientResult[];
    /** Latency of every frame of every reading viewer in the window, ms. */
    latenciesMs: Float64Array;
    loopDelayP99Ms: number;
    loopDelayMaxMs: number;
  };

function send(message: LiveLoadReport, then?: () => void): void {
  process.send?.(message, undefined, {}, () => then?.());
}

const clients: LiveClient[] = [];
const RESOLUTION_MS = 10;
const loopDelay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
const beyondTick = (nanoseconds: number): number => Math.max(0, nanoseconds / 1e6 - RESOLUTION_MS);

async function start(command: Extract<LiveLoadCommand, { type: 'start' }>): Promise<void> {
  loopDelay.enable();
  const began = performance.now();
  const { viewers, rampMs } = command;
  for (let k = 0; k < viewers.length; k++) {
    const wait = began + (k * rampMs) / viewers.length - performance.now();
    if (wait > 1) await sleep(wait);
    const client = new LiveClient(viewers[k]!.id, viewers[k]!.paused, command.stallLater ?? false);
    clients.push(client);
    client.open(command.port, command.path);
  }
  send({ type: 'opened', count: clients.length });
}

function collect(fromUs: number, toUs: number): void {
  loopDelay.disable();
  for (const client of clients) client.stop();
  const latencies: number[] = [];
  for (const client of clients) {
    if (!client.result.paused) client.measure(fromUs, toUs, latencies);
  }
  send({
    type: 'result',
    clients: clients.map((client) => client.result),
    latenciesMs: Float64Array.from(latencies),
    loopDelayP99Ms: beyondTick(loopDelay.percentile(99)),
    loopDelayMaxMs: beyondTick(loopDelay.max),
  }, () => process.exit(0));
}

process.on('message', (message: LiveLoadCommand) => {
  if (message.type === 'start') {
    start(message).catch((error: unknown) => {
      process.stderr.write(`live load process: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    });
  } else if (message.type === 'status') {
    const ready = clients.filter((client) => (client.result.paused ? client.result.status === 200 : client.recvUs.length > 0)).length;
    send({ type: 'status', ready, total: clients.length });
  } else if (message.type === 'stall') {
    let count = 0;
    for (const client of clients) {
      if (!client.result.paused) continue;
      client.stall();
      count++;
    }
    send({ type: 'stalled', count, atUs: Number(process.hrtime.bigint() / 1000n) });
  } else if (message.type === 'collect') {
    collect(message.fromUs, message.toUs);
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
