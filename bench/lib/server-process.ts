import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';

/** Every child the bench started, killed when the bench exits however it exits. */
export const children = new Set<ChildProcess>();

/** Kills every child the bench started (on every way out). */
export function killChildren(): void {
  for (const child of children) child.kill('SIGKILL');
}
process.on('exit', killChildren);

/** Linux clock ticks per second for /proc/PID/stat (`getconf CLK_TCK`; 100 on every common kernel). */
const CLOCK_TICKS = 100;

export interface ServerProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  /** Every stderr line the server wrote (its log). */
  log: string[];
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts `node dist/cli/main.js serve DIR --port 0 --loop ...` and learns the port from its log
 * line `info serving DIR at http://127.0.0.1:PORT/ (stream: ...)` (so no --quiet).
 * The server's stream must be at /stream.
 */
export async function startServer(cli: string, dir: string, args: readonly string[], nodeArgs: readonly string[] = []): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...nodeArgs, cli, 'serve', dir, '--port', '0', '--host', '127.0.0.1', '--loop', ...args], {
    // The CLI writes nothing to stdout; Node's own diagnostics (--trace-gc) go to the bench's stderr.
    stdio: ['ignore', process.stderr, 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const log: string[] = [];
  let partial = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not report its port within 10 s; its log:\n${log.join('\n')}`)), 10_000);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        log.push(line);
        // `info serving DIR at http://127.0.0.1:PORT/ (stream: ...)`, or `info serving at http://...`.
        const match = / info serving (?:.* )?at http:\/\/127\.0\.0\.1:(\d+)\//.exec(line);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code ?? signal}) before listening; its log:\n${log.join('\n')}${partial}`));
    });
  });
  const stop = async (graceMs = 5000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return { child, pid: child.pid!, port, log, stop };
}

export interface ProcSample {
  /** ms since the epoch. */
  at: number;
  rssKiB: number;
  /** utime + stime, in seconds. */
  cpuSeconds: number;
}

/** One reading of /proc/PID/status (VmRSS) and /proc/PID/stat (utime, stime). */
export function sampleProcess(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rss = /^VmRSS:\s+(\d+) kB/m.exec(status);
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { at: Date.now(), rssKiB: rss ? Number(rss[1]) : 0, cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS };
  } catch {
    return undefined;
  }
}

/** Samples a process every `everyMs` until stopped. */
export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(readonly pid: number, everyMs = 500) {
    this.take();
    this.timer = setInterval(() => this.take(), everyMs);
  }

  take(): ProcSample | undefined {
    const sample = sampleProcess(this.pid);
    if (sample) this.samples.push(sample);
    return sample;
  }

  stop(): void {
    clearInterval(this.timer);
    this.take();
  }

  /** Mean CPU (% of one core) between two moments, and the highest over one sampling step. */
  cpuPercent(from: number, to: number): { mean: number; peak: number } {
    const inside = this.samples.filter((s) => s.at >= from && s.at <= to);
    let peak = 0;
    for (let i = 1; i < inside.length; i++) {
      const a = inside[i - 1]!;
      const b = inside[i]!;
      if (b.at > a.at) peak = Math.max(peak, ((b.cpuSeconds - a.cpuSeconds) * 1000 / (b.at - a.at)) * 100);
    }
    const first = inside[0];
    const last = inside.at(-1);
    const mean = first && last && last.at > first.at ? ((last.cpuSeconds - first.cpuSeconds) * 1000 / (last.at - first.at)) * 100 : 0;
    return { mean, peak };
  }
}

/**
 * Bytes waiting in the kernel for the connections of a server port, from /proc/net/tcp: the
 * server sockets' send queues and the client sockets' receive queues. Shows where the bytes
 * for a client that does not read are held.
 */
export function kernelQueues(port: number): { serverSendQueue: number; clientReceiveQueue: number } {
  let serverSendQueue = 0;
  let clientReceiveQueue = 0;
  let text = '';
  try {
    text = readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return { serverSendQueue, clientReceiveQueue };
  }
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 5) continue;
    const localPort = parseInt(fields[1]!.split(':')[1] ?? '', 16);
    const remotePort = parseInt(fields[2]!.split(':')[1] ?? '', 16);
    const [tx, rx] = (fields[4] ?? '0:0').split(':').map((hex) => parseInt(hex, 16));
    if (localPort === port) serverSendQueue += tx ?? 0;
    else if (remotePort === port) clientReceiveQueue += rx ?? 0;
  }
  return { serverSendQueue, clientReceiveQueue };
}

/** GET /status of the server, parsed. */
export async function fetchStatus(port: number): Promise<Record<string, unknown>> {
  const response = await fetch(`http://127.0.0.1:${port}/status`, { signal: AbortSignal.timeout(5000) });
  return await response.json() as Record<string, unknown>;
}

/**
 * Times a `GET /status` every `everyMs`: the round trip is a cheap outside view of how long the
 * server's event loop takes to get round to a new request.
 */
export class StatusProbe {
  readonly roundTripsMs: number[] = [];
  private readonly timer: NodeJS.Timeout;
  private busy = false;

  constructor(private readonly port: number, everyMs = 250) {
    this.timer = setInterval(() => void this.probe(), everyMs);
  }

  private async probe(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    const started = performance.now();
    try {
      await fetchStatus(this.port);
      this.roundTripsMs.push(performance.now() - started);
    } catch {
      // A failed probe shows as a missing sample; the run's own checks report failures.
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
