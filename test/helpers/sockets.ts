/** What the kernel says about TCP sockets, through `ss` (iproute2; Linux). */
import { execFileSync } from 'node:child_process';
import { missing } from './tools.ts';

/** True when `ss` can be run here. Tests that use it declare `needs('ss')` (helpers/tools.ts). */
export const HAVE_SS = !missing('ss');

/** The accept queue's length of the socket listening on `port` (for a listener, Send-Q). */
export function listenBacklog(port: number): number {
  const line = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim();
  return Number(line.split(/\s+/)[2]);
}

/**
 * The server side's sockets of port `port` in TCP state `state` (e.g. `fin-wait-1`: closed by the
 * server while the kernel still holds data the peer has not taken), one line each.
 */
export function serverSockets(port: number, state: string): string[] {
  return execFileSync('ss', ['-Htn', 'state', state, `sport = :${port}`], { encoding: 'utf8' }).split('\n').filter((line) => line.trim() !== '');
}

/** `skip` for a test that reads the kernel's socket memory with `ss -tm`: the reason, or false. */
export const SKIP_WITHOUT_SS: string | false = missing('ss');

export { socketMemory, type SocketMemory } from '../../bench/lib/socket-memory.ts';
