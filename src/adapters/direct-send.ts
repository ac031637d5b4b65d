import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { fdOf, load } from './socket-buffer.ts';

/**
 * Writes `bytes` to a TCP socket with one non-blocking send() on its file descriptor, through
 * serverpush's native helper, when nothing is queued on the socket (so the bytes cannot overtake
 * earlier ones): what a live fan-out does for each viewer and each frame. A `socket.write()`
 * goes through Node's stream machinery (a write request object, a next-tick callback, a
 * `'drain'` event for every write above 16 KiB), which measured ~13 µs per 20 KB write against
 * ~27 µs for the send() itself, on the fan-out's critical path (decision 0011).
 *
 * Returns true when the kernel took everything. When it took part (or nothing), the rest is queued
 * with `socket.write()` and its result is returned: false (busy) when `'drain'` will follow, true
 * when the rest is under the socket's high-water mark (the next write then finds bytes queued and
 * goes through `socket.write()`, which waits behind them).
 * Returns undefined, having written nothing, when a direct send is not possible or not safe:
 * a TLS socket (its file descriptor carries the encrypted bytes), no helper, bytes already queued, a corked, connecting or closed socket, one with an idle
 * timeout (which only `socket.write()` refreshes), or a send error such as a reset (the caller's
 * `socket.write()` then meets the error the Node way). Bytes sent directly are not counted in
 * `socket.bytesWritten`.
 */
export function sendDirect(socket: Socket, bytes: Uint8Array): boolean | undefined {
  const native = load();
  // A TLS socket's fd is its TCP connection's: bytes sent there would bypass the encryption.
  if ((socket as TLSSocket).encrypted) return undefined;
  if (!native || socket.writableLength !== 0 || socket.writableCorked !== 0 || socket.connecting || socket.destroyed || !socket.writable) return undefined;
  if ((socket as Socket & { timeout?: number }).timeout) return undefined;
  const fd = fdOf(socket);
  if (fd === undefined) return undefined;
  const sent = native.send(fd, bytes);
  if (sent === bytes.length) return true;
  if (sent < 0 && sent !== -native.constants.EAGAIN) return undefined;
  // The rest goes through Node: its return value says whether a 'drain' will follow.
  return socket.write(sent > 0 ? bytes.subarray(sent) : bytes);
}
