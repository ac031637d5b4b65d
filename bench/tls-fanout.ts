/**
 * What TLS and HTTP/2 cost a live fan-out (decision 0017): one live stream of ~20 KB JPEGs at 30
 * fps to N viewers over plain HTTP/1.1, HTTPS/1.1 and HTTPS/2 (N/10 connections of 10 streams),
 * with the server's CPU (user + system, % of one core) and the frames each viewer got per second.
 *
 *   node --import tsx bench/tls-fanout.ts [--viewers 100] [--seconds 8] [--fps 30]
 *
 * The server runs in this process; the viewers in a child process (node:http, node:https,
 * node:http2 clients that read every byte). Needs ffmpeg and openssl. Prints the machine it ran on.
 */
import { fork, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createServer } from '../src/server/server.ts';

const IS_CHILD = process.argv[2] === '--client';

if (IS_CHILD) {
  // The viewers: `--client MODE URL COUNT CA`; reports frames counted (by boundary) every second.
  const [, , , mode, url, countText, caFile] = process.argv;
  const count = Number(countText);
  const ca = readFileSync(caFile!);
  let delimiters = 0;
  const onChunk = (chunk: Buffer) => { let at = -1; while ((at = chunk.indexOf('\r\n--', at + 1)) !== -1) delimiters++; };
  if (mode === 'h2') {
    const http2 = await import('node:http2');
    for (let s = 0; s < count / 10; s++) {
      const session = http2.connect(url!, { ca, servername: 'localhost' });
      session.on('error', () => {});
      session.on('connect', () => session.setLocalWindowSize(10 * 1024 * 1024));
      for (let i = 0; i < 10; i++) session.request({ ':path': '/stream' }).on('data', onChunk).on('error', () => {});
    }
  } else {
    const client = mode === 'h1-tls' ? await import('node:https') : await import('node:http');
    for (let i = 0; i < count; i++) client.get(`${url}stream`, { ca, servername: 'localhost', agent: false } as never, (res) => res.on('data', onChunk)).on('error', () => {});
  }
  setInterval(() => process.send!(delimiters), 1000);
} else {
  const { values } = parseArgs({ options: { viewers: { type: 'string', default: '100' }, seconds: { type: 'string', default: '8' }, fps: { type: 'string', default: '30' } } });
  const viewers = Number(values.viewers);
  const seconds = Number(values.seconds);
  const fps = Number(values.fps);
  const dir = mkdtempSync(join(tmpdir(), 'serverpush-bench-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    const frame = execFileSync('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=640x360', '-frames:v', '1', '-q:v', '7', '-f', 'mjpeg', '-']);
    console.log(`# ${cpus()[0]?.model} × ${cpus().length}, Node ${process.version}; ${viewers} viewers, ${fps} fps of ${frame.length} B, ${seconds} s measured`);
    console.log('| transport | server CPU (% of a core) | frames/s per viewer |\n|---|---|---|');
    for (const mode of ['h1', 'h1-tls', 'h2'] as const) {
      const server = await createServer({ port: 0, streams: { default: { type: 'push' } }, ...(mode === 'h1' ? {} : { tls: { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') } }) });
      const url = await server.listen();
      server.live().push({ contentType: 'image/jpeg', body: frame });
      const timer = setInterval(() => server.live().push({ contentType: 'image/jpeg', body: frame }), 1000 / fps);
      const child = fork(fileURLToPath(import.meta.url), ['--client', mode, url.href, String(viewers), join(dir, 'cert.pem')], { execArgv: ['--import', 'tsx'] });
      let received = 0;
      child.on('message', (n) => { received = n as number; });
      // Warm up until every viewer is connected, then measure.
      const deadline = Date.now() + 15_000;
      while (server.status.clients < viewers && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 1500));
      const cpu0 = process.cpuUsage();
      const got0 = received;
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, seconds * 1000));
      const cpu = process.cpuUsage(cpu0);
      const elapsed = (performance.now() - t0) / 1000;
      const got = received - got0;
      console.log(`| ${{ h1: 'HTTP/1.1', 'h1-tls': 'HTTPS, HTTP/1.1', h2: 'HTTPS, HTTP/2 (10 streams a connection)' }[mode]} | ${(((cpu.user + cpu.system) / 1e6 / elapsed) * 100).toFixed(0)} | ${(got / viewers / elapsed).toFixed(1)} (${server.status.clients} connected) |`);
      clearInterval(timer);
      child.kill();
      await server.close(500);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
