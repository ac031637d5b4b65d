import { createRequire } from 'node:module';
import { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export { DEFAULT_MAX_UNSENT_BYTES } from '../defaults.ts';

export interface SocketOptionsAddon {
  set(fd: number, level: number, name: number, value: number): void;
  get(fd: number, level: number, name: number): number;
  /** A non-blocking send(): the bytes the kernel took, or -errno (-EAGAIN: none). */
  send(fd: number, bytes: Uint8Array): number;
  constants: { SOL_SOCKET: number; SO_SNDBUF: number; IPPROTO_TCP: number; EAGAIN: number; TCP_NOTSENT_LOWAT?: number };
}

let addon: SocketOptionsAddon | null | undefined;
let unavailable = '';

/**
 * The native helper (native/socket-options.c, built by node-gyp at install), or null when it
 * was not built, cannot be loaded here or is turned off (`SERVERPUSH_NO_NATIVE=1` in the
 * environment); `unavailable` then says why.
 */
export function load(): SocketOptionsAddon | null {
  if (addon !== undefined) return addon;
  if (process.env['SERVERPUSH_NO_NATIVE']) {
    unavailable = 'SERVERPUSH_NO_NATIVE is set';
    return (addon = null);
  }
  try {
    addon = createRequire(import.meta.url)('../../build/Release/socket_options.node') as SocketOptionsAddon;
    if (addon.constants.TCP_NOTSENT_LOWAT === undefined) {
      unavailable = 'this system has no TCP_NOTSENT_LOWAT';
      addon = null;
    }
  } catch (error) {
    unavailable = `the socket options helper is not built (${(error as Error).message.split('\n')[0]}); \`npm rebuild serverpush\` builds it`;
    addon = null;
  }
  return addon;
}

/**
 * Whether serverpush can bound a socket's unsent bytes here, and if not, why (to log once at
 * start, with the host-wide alternative: `sysctl net.ipv4.tcp_notsent_lowat=131072`).
 */
export function unsentLimitSupport(): { supported: true } | { supported: false; reason: string } {
  return load() ? { supported: true } : { supported: false, reason: unavailable };
}

/**
 * The file descriptor of a TCP socket; for a TLS socket, that of the TCP connection beneath it
 * (so never write to it directly: direct-send.ts refuses TLS). An HTTP/2 response has none of its own.
 */
export function fdOf(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * Sets TCP_NOTSENT_LOWAT on `socket`: the kernel accepts new bytes only while fewer than `bytes`
 * are queued and not yet sent, so a peer that stops reading holds at most about `bytes` (plus one
 * segment being queued) of the server's kernel memory, and a write to it is refused (its viewer is
 * busy) from then on. Bytes in flight to a peer that reads are not limited, so a healthy viewer's
 * throughput is not. On a TLS socket it bounds the TCP connection beneath (tls.ts sets it once on
 * an HTTP/2 connection, which carries many streams). Returns false, changing nothing, when `bytes`
 * is 0, the socket has no file descriptor or the helper is missing (see unsentLimitSupport()).
 */
export function limitUnsentBytes(socket: Socket | null | undefined, bytes: number): boolean {
  if (!socket || !(bytes > 0) || socket.destroyed) return false;
  const fd = fdOf(socket);
  const native = load();
  if (fd === undefined || !native) return false;
  try {
    native.set(fd, native.constants.IPPROTO_TCP, native.constants.TCP_NOTSENT_LOWAT!, Math.min(bytes, 2 ** 31 - 1));
    return true;
  } catch {
    // Not a TCP socket after all (a UNIX socket): nothing to bound.
    return false;
  }
}

/** {@link limitUnsentBytes} for the socket of an HTTP/1 response (an HTTP/2 one shares its session's). */
export function limitResponseUnsentBytes(res: unknown, bytes: number): boolean {
  return res instanceof ServerResponse && limitUnsentBytes(res.socket, bytes);
}

/** A socket's TCP_NOTSENT_LOWAT, or undefined when it cannot be read (no helper, no fd). */
export function unsentLimitOf(socket: Socket): number | undefined {
  const fd = fdOf(socket);
  const native = load();
  if (fd === undefined || !native) return undefined;
  try {
    return native.get(fd, native.constants.IPPROTO_TCP, native.constants.TCP_NOTSENT_LOWAT!);
  } catch {
    return undefined;
  }
}
