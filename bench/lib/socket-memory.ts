/**
 * What the kernel holds for each TCP connection of a local port, from `ss -tmn` (iproute2): the
 * queues and the `skmem` counters of every established socket whose local port is `port`, keyed
 * by the peer's port. `wmemQueued` (skmem `w`) is the memory of the send queue, what a viewer that
 * stopped reading keeps allocated in the server's kernel; `sndbuf` (`tb`) is the limit it may grow to.
 */
import { spawnSync } from 'node:child_process';

export interface SocketMemory {
  peerPort: number;
  /** Bytes not yet acknowledged by the peer (Send-Q). */
  sendQueue: number;
  /** Bytes received and not yet read (Recv-Q). */
  recvQueue: number;
  /** skmem r: receive queue memory. */
  rmemAlloc: number;
  /** skmem t: memory of segments being transmitted. */
  wmemAlloc: number;
  /** skmem w: send queue memory (queued, including what is not yet sent). */
  wmemQueued: number;
  /** skmem tb: the send buffer limit. */
  sndbuf: number;
}

/** True when `ss` (iproute2) can be run here. */
export function hasSs(): boolean {
  const run = spawnSync('ss', ['-V'], { encoding: 'utf8' });
  return !run.error && run.status === 0;
}

/** The established sockets of local `port`; throws when `ss` is missing or fails. */
export function socketMemory(port: number): Map<number, SocketMemory> {
  const run = spawnSync('ss', ['-tmnH', 'state', 'established', `sport = :${port}`], { encoding: 'utf8', maxBuffer: 256 * 2 ** 20 });
  if (run.error) throw run.error;
  if (run.status !== 0) throw new Error(`ss exited with ${run.status}: ${run.stderr}`);
  return parseSs(run.stdout);
}

/** Parses `ss -tmnH state established` output (a socket line, then its `skmem:(...)` line). */
export function parseSs(text: string): Map<number, SocketMemory> {
  const sockets = new Map<number, SocketMemory>();
  let current: SocketMemory | undefined;
  for (const line of text.split('\n')) {
    const skmem = /skmem:\(([^)]*)\)/.exec(line);
    if (skmem && current) {
      const fields = new Map<string, number>();
      for (const item of skmem[1]!.split(',')) {
        const match = /^([a-z]+)(\d+)$/.exec(item);
        if (match) fields.set(match[1]!, Number(match[2]));
      }
      current.rmemAlloc = fields.get('r') ?? 0;
      current.wmemAlloc = fields.get('t') ?? 0;
      current.wmemQueued = fields.get('w') ?? 0;
      current.sndbuf = fields.get('tb') ?? 0;
      continue;
    }
    const cols = line.trim().split(/\s+/);
    // Recv-Q Send-Q Local:Port Peer:Port (with `state established` there is no State column).
    if (cols.length < 4 || !/^\d+$/.test(cols[0]!)) continue;
    const peerPort = Number(cols[3]!.slice(cols[3]!.lastIndexOf(':') + 1));
    current = { peerPort, recvQueue: Number(cols[0]), sendQueue: Number(cols[1]), rmemAlloc: 0, wmemAlloc: 0, wmemQueued: 0, sndbuf: 0 };
    sockets.set(peerPort, current);
  }
  return sockets;
}
