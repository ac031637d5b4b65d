import { test } from 'node:test';
import { needs } from './helpers/tools.ts';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { startCli } from './helpers/cli.ts';
import { fetchText, sleep } from './helpers/server.ts';

/** Resident memory of a process, from /proc, in MiB. */
function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match![1]) / 1024;
}

/** A viewer that counts the parts it receives by their delimiters, cheaply. */
function countingViewer(port: number, boundary: string): { socket: Socket; count(): number } {
  const delimiter = Buffer.from(`\r\n--${boundary}\r\n`);
  const socket = connect(port, '127.0.0.1');
  socket.write('GET /stream HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n');
  let parts = 0;
  let tail: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    const data = tail.length ? Buffer.concat([tail, chunk]) : chunk;
    let at = data.indexOf(delimiter);
    let last = -1;
    while (at !== -1) {
      parts++;
      last = at;
      at = data.indexOf(delimiter, at + delimiter.length);
    }
    const keep = Math.max(last === -1 ? 0 : last + delimiter.length, data.length - delimiter.length);
    tail = data.subarray(keep);
  });
  socket.on('error', () => {});
  return { socket, count: () => parts };
}

test('100 viewers and 20 that read nothing, on a 30 fps stream of ~20 KB frames from ffmpeg: the readers get at least 95% of the frames and the server RSS stays flat', { timeout: 60_000, ...needs('ffmpeg') }, async (t) => {
  const server = await startCli(['--port', '0', '--stall-timeout', '60', '--exec', 'exec ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc=size=640x480:rate=30 -q:v 3 -f mjpeg -']);
  t.after(() => server.stop());
  const port = Number(server.url.port);
  const status = async () => JSON.parse((await fetchText(new URL('status', server.url))).body);
  for (let i = 0; i < 100 && (await status()).streams.default.partsIn === 0; i++) await sleep(50);
  const head = await fetch(new URL('stream', server.url), { method: 'HEAD' });
  const boundary = /boundary=(\S+)/.exec(head.headers.get('content-type')!)![1]!;
  const frameBytes = (await status()).streams.default.latest.bytes;
  assert.ok(frameBytes > 12_000 && frameBytes < 30_000, `~20 KB frames (${frameBytes})`);

  const stuck: Socket[] = [];
  for (let i = 0; i < 20; i++) {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
    socket.pause();
    stuck.push(socket);
  }
  const viewers = Array.from({ length: 100 }, () => countingViewer(port, boundary));
  t.after(() => { for (const s of [...stuck, ...viewers.map((v) => v.socket)]) s.destroy(); });
  await sleep(2000); // let the stuck viewers' kernel buffers fill
  const pid = server.child.pid!;
  const rssStart = rssMiB(pid);
  const startIn = (await status()).streams.default.partsIn;
  const startCounts = viewers.map((v) => v.count());
  let rssPeak = rssStart;
  for (let i = 0; i < 12; i++) {
    await sleep(500);
    rssPeak = Math.max(rssPeak, rssMiB(pid));
  }
  const pushed = (await status()).streams.default.partsIn - startIn;
  const got = viewers.map((v, i) => v.count() - startCounts[i]!);
  const worst = Math.min(...got);
  t.diagnostic(`frames pushed in 6 s: ${pushed}; per reader min ${worst}, mean ${(got.reduce((a, b) => a + b, 0) / got.length).toFixed(1)}; server RSS ${rssStart.toFixed(1)} -> peak ${rssPeak.toFixed(1)} MiB`);
  assert.ok(pushed >= 150, `about 30 fps from ffmpeg (${pushed} in 6 s)`);
  assert.ok(worst >= pushed * 0.95, `every reader got at least 95% (worst ${worst} of ${pushed})`);
  assert.ok(rssPeak - rssStart < 25, `RSS flat: ${rssStart.toFixed(1)} -> ${rssPeak.toFixed(1)} MiB`);
  assert.equal((await status()).clients, 120);
});
