/**
 * Behind nginx (issue 13): the nginx configuration of docs/operations.md, run by Debian's nginx as
 * a foreground process with its own prefix on a loopback port, delivers each frame within 50 ms of
 * the direct path (both viewers watch at once, each frame's arrival compared), and passes the
 * stream's headers on.
 */
import { needs, NGINX } from './helpers/tools.ts';
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { LiveStream } from '../src/hub/live-stream.ts';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:net';
import { makeJpegFrames } from './helpers/frames.ts';
import { stampSeq, readSeq } from './helpers/camera-writer.ts';
import { startServer, openStream, fetchText, eventually, sleep, makeFolder, removeFolder, EXAMPLES } from './helpers/server.ts';
import { freePort } from './helpers/ports.ts';

const OPERATIONS = readFileSync(new URL('../docs/operations.md', import.meta.url), 'utf8');

/** The first ```nginx block of docs/operations.md, pointed at `upstream` and listening on `port`. */
function documentedConfig(upstream: number, port: number): string {
  const block = /```nginx\n([^]*?)```/.exec(OPERATIONS);
  assert.ok(block, 'docs/operations.md has an nginx configuration');
  const config = block[1]!;
  assert.match(config, /server 127\.0\.0\.1:8080;/);
  assert.match(config, /listen 80;/);
  return config.replace('server 127.0.0.1:8080;', `server 127.0.0.1:${upstream};`).replace('listen 80;', `listen 127.0.0.1:${port};`);
}

/**
 * Watches `cam` directly and through the proxy at once while 40 numbered frames are pushed 50 ms
 * apart; asserts each reached both, the proxy's copy within 50 ms of the direct one, byte for byte.
 */
async function compareWithDirect(t: TestContext, proxy: string, cam: LiveStream, frame: Buffer, url: URL, proxied: string): Promise<void> {
  const direct = await openStream(new URL('stream/cam', url));
  const viaProxy = await openStream(new URL('stream/cam', proxied));
  t.after(() => { direct.close(); viaProxy.close(); });
  await direct.reader.waitFor(1);
  await viaProxy.reader.waitFor(1);
  const first = cam.counters.partsIn;
  const count = 40;
  for (let i = 1; i <= count; i++) {
    cam.push({ contentType: 'image/jpeg', body: stampSeq(frame, first + i) });
    await sleep(50);
  }
  await eventually(() => direct.reader.parts.some((part) => readSeq(part.body) === first + count) && viaProxy.reader.parts.some((part) => readSeq(part.body) === first + count), 5000, 'the last frame on both');
  const arrivals = (parts: typeof direct.reader.parts) => new Map(parts.map((part) => [readSeq(part.body)!, part.receivedAt]));
  const directAt = arrivals(direct.reader.parts);
  const proxyAt = arrivals(viaProxy.reader.parts);
  const delays: number[] = [];
  for (let seq = first + 1; seq <= first + count; seq++) {
    assert.ok(directAt.has(seq) && proxyAt.has(seq), `frame ${seq} reached both`);
    delays.push(proxyAt.get(seq)! - directAt.get(seq)!);
  }
  const worst = Math.max(...delays);
  delays.sort((a, b) => a - b);
  t.diagnostic(`${proxy} after direct: median ${delays[count >> 1]} ms, worst ${worst} ms over ${count} frames`);
  assert.ok(worst < 50, `every frame within 50 ms of the direct path; worst ${worst} ms (sorted: ${delays.join(' ')})`);
  // Neither viewer missed a byte: the same bodies.
  const bodies = (parts: typeof direct.reader.parts) => parts.filter((part) => readSeq(part.body)! > first).map((part) => part.body.length);
  assert.deepEqual(bodies(viaProxy.reader.parts), bodies(direct.reader.parts));
}

/** Resolves once something listens on `port`; throws if `child` exits first. */
async function listening(child: ChildProcess, port: number, what: string, errors: () => string): Promise<void> {
  await eventually(() => new Promise<boolean>((resolve, reject) => {
    if (child.exitCode !== null) return reject(new Error(`${what} exited: ${errors()}`));
    const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true); });
    socket.on('error', () => resolve(false));
  }), 10_000, `${what} to listen`);
}

test('nginx with the documented configuration delivers each frame within 50 ms of the direct path', needs('ffmpeg', 'nginx'), async (t) => {
  const [frame] = await makeJpegFrames(1, '640x480');
  const { server, url } = await startServer({ streams: { cam: { type: 'push' }, show: { type: 'slideshow', dir: EXAMPLES } } });
  t.after(() => server.close());
  const cam = server.live('cam');
  cam.push({ contentType: 'image/jpeg', body: stampSeq(frame!, 0) });

  const prefix = await makeFolder();
  t.after(() => removeFolder(prefix));
  await mkdir(join(prefix, 'logs'));
  const port = await freePort();
  const conf = join(prefix, 'nginx.conf');
  await writeFile(conf, [
    'daemon off;',
    'master_process off;',
    'worker_processes 1;',
    `error_log ${join(prefix, 'logs', 'error.log')} warn;`,
    `pid ${join(prefix, 'nginx.pid')};`,
    'events { worker_connections 64; }',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${join(prefix, `${kind}_temp`)};`),
    documentedConfig(Number(url.port), port),
    '}',
  ].join('\n'));
  const nginx = spawn(NGINX, ['-p', prefix, '-c', conf, '-e', join(prefix, 'logs', 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let nginxErrors = '';
  nginx.stderr.setEncoding('utf8').on('data', (text: string) => { nginxErrors += text; });
  t.after(async () => {
    if (nginx.exitCode === null) {
      nginx.kill('SIGQUIT');
      await once(nginx, 'exit');
    }
  });
  await listening(nginx, port, 'nginx', () => nginxErrors);
  const proxied = `http://127.0.0.1:${port}/`;

  // Every stream response, live or slideshow, tells proxies not to buffer it and caches not to keep it.
  for (const path of ['stream/cam', 'stream/show']) {
    const direct = await fetch(new URL(path, url), { method: 'HEAD' });
    assert.equal(direct.headers.get('x-accel-buffering'), 'no', path);
    assert.match(direct.headers.get('cache-control') ?? '', /(^|, )no-store(,|$)/, path);
  }
  const head = await fetch(new URL('stream/cam', proxied), { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.match(head.headers.get('cache-control') ?? '', /no-store/);
  assert.match(head.headers.get('content-type') ?? '', /^multipart\/x-mixed-replace; boundary=/);

  await compareWithDirect(t, 'nginx', cam, frame!, url, proxied);
  // The short requests pass too.
  assert.equal((await fetchText(new URL('status', proxied))).status, 200);
  assert.equal((await fetchText(new URL('readyz', proxied))).status, 200);
  const errors = await readFile(join(prefix, 'logs', 'error.log'), 'utf8').catch(() => '');
  assert.doesNotMatch(errors, /\[(error|crit|alert|emerg)\]/, errors);
});

test('the systemd unit of docs/operations.md passes systemd-analyze verify without a warning', needs('systemd-analyze'), async (t) => {
  const block = /```ini\n([^]*?)```/.exec(OPERATIONS);
  assert.ok(block, 'docs/operations.md has a systemd unit');
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  // The unit as documented, but with a program that exists here (verify checks ExecStart's).
  const unit = join(dir, 'serverpush.service');
  await writeFile(unit, block[1]!.replace('/usr/bin/serverpush', process.execPath));
  const result = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stderr.split('\n').filter((line) => line.includes('serverpush.service')).join('\n'), '', 'no warning about the unit');
  for (const hardening of ['DynamicUser=yes', 'ProtectSystem=strict', 'NoNewPrivileges=yes', 'ExecReload=/bin/kill -HUP $MAINPID']) assert.ok(block[1]!.includes(hardening), hardening);
});

test('Caddy with the documented configuration delivers each frame within 50 ms of the direct path', needs('ffmpeg', 'caddy'), async (t) => {
  const [frame] = await makeJpegFrames(1, '640x480');
  const { server, url } = await startServer({ streams: { cam: { type: 'push' } } });
  t.after(() => server.close());
  const cam = server.live('cam');
  cam.push({ contentType: 'image/jpeg', body: stampSeq(frame!, 0) });
  const block = /```caddy\n([^]*?)```/.exec(OPERATIONS);
  assert.ok(block, 'docs/operations.md has a Caddy configuration');
  assert.match(block[1]!, /^camera\.example\.com \{/m);
  const home = await makeFolder();
  t.after(() => removeFolder(home));
  const port = await freePort();
  // The documented site, on plain HTTP at a loopback port; no admin endpoint, state in `home`.
  const caddyfile = join(home, 'Caddyfile');
  await writeFile(caddyfile, `{\n\tadmin off\n\tstorage file_system ${home}\n}\n\n${block[1]!.replace('camera.example.com {', `http://127.0.0.1:${port} {`).replace('127.0.0.1:8080', `127.0.0.1:${url.port}`)}`);
  const caddy = spawn('caddy', ['run', '--config', caddyfile, '--adapter', 'caddyfile'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HOME: home, XDG_DATA_HOME: home, XDG_CONFIG_HOME: home } });
  let caddyLog = '';
  caddy.stderr.setEncoding('utf8').on('data', (text: string) => { caddyLog += text; });
  t.after(async () => {
    if (caddy.exitCode === null) {
      caddy.kill('SIGTERM');
      await once(caddy, 'exit');
    }
  });
  await listening(caddy, port, 'caddy', () => caddyLog);
  const proxied = `http://127.0.0.1:${port}/`;
  const head = await fetch(new URL('stream/cam', proxied), { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.match(head.headers.get('content-type') ?? '', /^multipart\/x-mixed-replace; boundary=/);
  await compareWithDirect(t, 'caddy', cam, frame!, url, proxied);
  assert.equal((await fetchText(new URL('readyz', proxied))).status, 200);
});
