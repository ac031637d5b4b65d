/**
 * A load-generating process, forked by the bench (`fork(..., { execArgv: ['--import', 'tsx'] })`).
 * It holds its share of the clients' sockets, opens each at its scheduled moment and, when told
 * to stop, closes them and sends back what each one received. Running the clients outside the
 * bench's own process keeps the bench's sampling and bookkeeping out of their event loop.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { now, StreamClient, type ClientResult } from './stream-client.ts';

export interface ClientPlan {
  id: number;
  /** When to open the connection, in ms since the epoch. */
  connectAt: number;
  paused: boolean;
}

export type LoadCommand =
  | { type: 'start'; port: number; clients: ClientPlan[] }
  | { type: 'stop' };

export type LoadReport =
  | { type: 'ready' }
  | { type: 'opened'; count: number }
  | { type: 'result'; clients: ClientResult[]; loopDelayP99Ms: number; loopDelayMaxMs: number };

function send(message: LoadReport, then?: () => void): void {
  process.send?.(message, undefined, {}, () => then?.());
}

const clients: StreamClient[] = [];
const RESOLUTION_MS = 10;
const loopDelay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
/** The histogram holds whole tick periods; what matters is the delay beyond the tick. */
const beyondTick = (nanoseconds: number): number => Math.max(0, nanoseconds / 1e6 - RESOLUTION_MS);

async function start(port: number, plans: ClientPlan[]): Promise<void> {
  loopDelay.enable();
  const ordered = [...plans].sort((a, b) => a.connectAt - b.connectAt);
  for (const plan of ordered) {
    const wait = plan.connectAt - now();
    if (wait > 1) await sleep(wait);
    const client = new StreamClient(plan.id, plan.paused);
    clients.push(client);
    client.open(port);
  }
  send({ type: 'opened', count: clients.length });
}

function stop(): void {
  loopDelay.disable();
  for (const client of clients) client.stop();
  send({
    type: 'result',
    clients: clients.map((client) => client.result),
    loopDelayP99Ms: beyondTick(loopDelay.percentile(99)),
    loopDelayMaxMs: beyondTick(loopDelay.max),
  }, () => process.exit(0));
}

process.on('message', (message: LoadCommand) => {
  if (message.type === 'start') {
    start(message.port, message.clients).catch((error: unknown) => {
      process.stderr.write(`load process: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    });
  } else if (message.type === 'stop') {
    stop();
  }
});
// The bench is gone (crashed or killed): do not linger.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
