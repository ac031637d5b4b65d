import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startServer, openStream, eventually, sleep } from './helpers/server.ts';
import { SKIP_WITHOUT_SS, socketMemory } from './helpers/sockets.ts';
import { DEFAULT_MAX_UNSENT_BYTES, unsentLimitOf, unsentLimitSupport } from '../src/adapters/socket-buffer.ts';

/** A ~20 KB text part carrying its number (`part:000042`). */
function part(n: number): { contentType: string; body: Buffer } {
  const body = Buffer.alloc(20_000, 'abcdefghij');
  body.write(`part:${String(n).padStart(6, '0')}\n`, 0, 'latin1');
  return { contentType: 'text/plain', body };
}
const numberOf = (body: Uint8Array): number => Number(/^part:(\d{6})/.exec(Buffer.from(body.subarray(0, 16)).toString('latin1'))![1]);

/** A viewer that sends its request and then reads nothing, ever (a phone in a tunnel). */
function stalledViewer(url: URL, path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.pause();
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n`);
      resolve(socket);
    });
    socket.on('error', reject);
  });
}

/** Polls the server socket toward `peer` until its send queue stops growing; returns what ss says then. */
async function settledQueue(port: number, peer: number, timeoutMs: number) {
  let previous = -1;
  let steady = 0;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const memory = socketMemory(port).get(peer);
    assert.ok(memory, `the server has a socket toward port ${peer}`);
    if (memory.sendQueue > 0 && memory.sendQueue === previous) steady++;
    else steady = 0;
    if (steady >= 4 || Date.now() > deadline) return memory;
    previous = memory.sendQueue;
    await sleep(250);
  }
}

test('the socket options helper is built here (npm ci builds it; serverpush degrades without it)', () => {
  assert.deepEqual(unsentLimitSupport(), { supported: true });
});

test('a viewer that stops reading holds at most ~128 KiB of the server\'s kernel memory; with maxUnsentBytes 0 it grows to megabytes', { skip: SKIP_WITHOUT_SS, timeout: 60_000 }, async (t) => {
  const { server, url } = await startServer({ streams: { bounded: { type: 'push' }, unbounded: { type: 'push', maxUnsentBytes: 0 } } });
  t.after(() => server.close(0));
  const serverSockets: Socket[] = [];
  server.http.on('connection', (socket: Socket) => serverSockets.push(socket));
  let n = 0;
  server.live('bounded').push(part(n));
  server.live('unbounded').push(part(n));
  const pusher = setInterval(() => {
    n++;
    server.live('bounded').push(part(n));
    server.live('unbounded').push(part(n));
  }, 10); // 2 MB/s to each viewer
  t.after(() => clearInterval(pusher));
  const bounded = await stalledViewer(url, '/stream/bounded');
  const unbounded = await stalledViewer(url, '/stream/unbounded');
  t.after(() => { bounded.destroy(); unbounded.destroy(); });
  const port = Number(url.port);
  const held = await settledQueue(port, bounded.localPort!, 15_000);
  const grown = await settledQueue(port, unbounded.localPort!, 15_000);
  t.diagnostic(`bounded: send queue ${held.sendQueue} B, skmem w ${held.wmemQueued} B; unbounded: send queue ${grown.sendQueue} B, skmem w ${grown.wmemQueued} B`);
  assert.ok(held.wmemQueued > 0, 'the stalled viewer has bytes queued');
  assert.ok(held.wmemQueued < 256 * 1024, `bounded: the kernel holds ${held.wmemQueued} bytes (skmem w) for it, under 256 KiB`);
  assert.ok(held.sendQueue <= DEFAULT_MAX_UNSENT_BYTES + 64 * 1024, `bounded: ${held.sendQueue} bytes unsent`);
  assert.ok(grown.wmemQueued > 1024 * 1024, `unbounded (maxUnsentBytes 0): the kernel's default lets it grow past 1 MiB (${grown.wmemQueued} bytes)`);
  // The option itself, on the server's sockets of each stream.
  const toward = (peer: number) => serverSockets.find((socket) => socket.remotePort === peer)!;
  assert.equal(unsentLimitOf(toward(bounded.localPort!)), DEFAULT_MAX_UNSENT_BYTES);
  assert.notEqual(unsentLimitOf(toward(unbounded.localPort!)), DEFAULT_MAX_UNSENT_BYTES);
  assert.equal(server.live('bounded').counters.viewersDropped, 0, 'not dropped: the stall timeout (30 s) has not passed');
});

test('healthy viewers keep getting every frame while others stall', { timeout: 60_000 }, async (t) => {
  const { server, url } = await startServer({ streams: { default: { type: 'push' } } });
  t.after(() => server.close(0));
  const live = server.live();
  let n = 0;
  live.push(part(n));
  const stalled = await Promise.all(Array.from({ length: 10 }, () => stalledViewer(url, '/stream')));
  t.after(() => { for (const socket of stalled) socket.destroy(); });
  const readers = await Promise.all(Array.from({ length: 10 }, () => openStream(new URL('stream', url), { accept: '*/*' })));
  t.after(() => { for (const reader of readers) reader.close(); });
  await Promise.all(readers.map((reader) => reader.reader.waitFor(1)));
  const first = n + 1;
  // 300 frames of 20 KB, 10 ms apart: the stalled viewers' buffers fill within the first second.
  for (let i = 0; i < 300; i++) {
    n++;
    live.push(part(n));
    await sleep(10);
  }
  const last = n;
  assert.ok(await eventually(() => readers.every((reader) => reader.reader.parts.length > 0 && numberOf(reader.reader.parts.at(-1)!.body) === last), 10_000), 'every reader has the last frame');
  for (const [i, reader] of readers.entries()) {
    const got = reader.reader.parts.map((p) => numberOf(p.body)).filter((k) => k >= first);
    const missing = [];
    for (let k = first; k <= last; k++) if (!got.includes(k)) missing.push(k);
    assert.deepEqual(missing, [], `reader ${i} got every frame from ${first} to ${last}`);
  }
  // The stalled viewers really stalled: the server skipped frames for them.
  const skipped = [...(live as unknown as { subscribers: Set<{ partsSkipped: number }> }).subscribers].filter((s) => s.partsSkipped > 0).length;
  assert.ok(skipped >= 10, `the 10 stalled viewers skip frames (${skipped} subscribers skipped some)`);
});

test('a viewer that reads in small, slow bites gets whole parts in order (sends the kernel takes in part are finished through Node)', { timeout: 60_000 }, async (t) => {
  const { server, url } = await startServer({ streams: { default: { type: 'push' } } });
  t.after(() => server.close(0));
  const live = server.live();
  let n = 0;
  live.push(part(n));
  // A small receive buffer and 4 KiB reads every 2 ms: most 20 KB sends are taken only in part.
  const socket = connect({ port: Number(url.port), host: url.hostname, onread: { buffer: Buffer.alloc(4096), callback: (bytes: number, buffer: Uint8Array) => { received.push(Buffer.from(buffer.subarray(0, bytes))); return true; } } });
  const received: Buffer[] = [];
  t.after(() => socket.destroy());
  socket.write('GET /stream HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n');
  const nibbler = setInterval(() => { socket.pause(); setTimeout(() => socket.resume(), 1); }, 2);
  t.after(() => clearInterval(nibbler));
  for (let i = 0; i < 100; i++) {
    n++;
    live.push(part(n));
    await sleep(5);
  }
  await sleep(500);
  clearInterval(nibbler);
  socket.resume();
  await sleep(300);
  const all = Buffer.concat(received);
  const headEnd = all.indexOf('\r\n\r\n');
  const boundary = /boundary=(\S+)/.exec(all.subarray(0, headEnd).toString('latin1'))![1]!;
  const { StrictMultipartReader } = await import('./helpers/multipart-reader.ts');
  const reader = new StrictMultipartReader(boundary);
  reader.push(all.subarray(headEnd + 4)); // throws on any framing error
  const numbers = reader.parts.map((p) => numberOf(p.body));
  assert.ok(numbers.length >= 2, `parts received: ${numbers.length}`);
  assert.ok(reader.parts.every((p) => p.body.equals(part(numberOf(p.body)).body)), 'every body whole and intact');
  assert.deepEqual([...numbers].sort((a, b) => a - b), numbers, `in order: ${numbers.join(',')}`);
  assert.equal(new Set(numbers).size, numbers.length, 'no part twice');
  assert.equal(numbers.at(-1), n, 'the newest part last');
});

test('without the native helper the server still streams, and says at start that it cannot bound stalled clients', { timeout: 30_000 }, async (t) => {
  const { startCli } = await import('./helpers/cli.ts');
  const { EXAMPLES } = await import('./helpers/server.ts');
  const without = await startCli(['--port', '0', '--interval', '0.2', EXAMPLES], { prefix: ['env', 'SERVERPUSH_NO_NATIVE=1'] });
  t.after(() => without.stop());
  const viewer = await openStream(new URL('stream', without.url));
  t.after(() => viewer.close());
  await viewer.reader.waitFor(2, 5000);
  assert.match(without.stderr(), /info note: cannot bound what the kernel queues for a client that stops reading: SERVERPUSH_NO_NATIVE is set; set `sysctl net\.ipv4\.tcp_notsent_lowat=131072` on the host instead/);
  const withHelper = await startCli(['--port', '0', EXAMPLES]);
  t.after(() => withHelper.stop());
  assert.doesNotMatch(withHelper.stderr(), /note: cannot bound/);
});
