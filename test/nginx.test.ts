/**
 * Behind nginx (issue 13): the nginx configuration of docs/operations.md, run by Debian's nginx as
 * a foreground process with its own prefix on a loopback port, delivers each frame within 50 ms of
 * the direct path (both viewers watch at once, each frame's arrival compared), and passes the
 * stream's headers on.
 */
import { needs, NGINX } from './helpers/tools.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer as createNetServer, connect } from 'node:net';
import { makeJpegFrames } from './helpers/frames.ts';
import { stampSeq, readSeq } from './helpers/camera-writer.ts';
import { startServer, openStream, fetchText, eventually, sleep, makeFolder, removeFolder, EXAMPLES } from './helpers/server.ts';

const OPERATIONS = readFileSync(new URL('../docs/operations.md', import.meta.url), 'utf8');

/** A free loopback port (taken and released). */
async function freePort(): Promise<number> {
  const probe = createNetServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  probe.close();
  await once(probe, 'close');
  return port;
}

/** The first ```nginx block of docs/operations.md, pointed at `upstream` and listening on `port`. */
function documentedConfig(upstream: number, port: number): string {
  const block = /```nginx\n([^]*?)```/.exec(OPERATIONS);
  assert.ok(block, 'docs/operations.md has an nginx configuration');
  const config = block[1]!;
  assert.match(config, /server 127\.0\.0\.1:8080;/);
  assert.match(config, /listen 80;/);
  return config.replace('server 127.0.0.1:8080;', `server 127.0.0.1:${upstream};`).replace('listen 80;', `listen 127.0.0.1:${port};`);
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
  await eventually(() => new Promise<boolean>((resolve) => {
    if (nginx.exitCode !== null) throw new Error(`nginx exited: ${nginxErrors}`);
    const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true); });
    socket.on('error', () => resolve(false));
  }), 5000, 'nginx to listen');
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

  const direct = await openStream(new URL('stream/cam', url));
  const viaNginx = await openStream(new URL('stream/cam', proxied));
  t.after(() => { direct.close(); viaNginx.close(); });
  await direct.reader.waitFor(1);
  await viaNginx.reader.waitFor(1);
  // 40 frames, 50 ms apart, each watched by both viewers at once.
  const count = 40;
  for (let seq = 1; seq <= count; seq++) {
    cam.push({ contentType: 'image/jpeg', body: stampSeq(frame!, seq) });
    await sleep(50);
  }
  await direct.reader.waitFor(count + 1, 5000);
  await viaNginx.reader.waitFor(count + 1, 5000);
  const arrivals = (parts: typeof direct.reader.parts) => new Map(parts.map((part) => [readSeq(part.body)!, part.receivedAt]));
  const directAt = arrivals(direct.reader.parts);
  const nginxAt = arrivals(viaNginx.reader.parts);
  const delays: number[] = [];
  for (let seq = 1; seq <= count; seq++) {
    assert.ok(directAt.has(seq) && nginxAt.has(seq), `frame ${seq} reached both`);
    delays.push(nginxAt.get(seq)! - directAt.get(seq)!);
  }
  const worst = Math.max(...delays);
  delays.sort((a, b) => a - b);
  t.diagnostic(`nginx after direct: median ${delays[count >> 1]} ms, worst ${worst} ms over ${count} frames`);
  assert.ok(worst < 50, `every frame within 50 ms of the direct path; worst ${worst} ms (sorted: ${delays.join(' ')})`);
  // Neither viewer missed a byte: the bodies are the same.
  assert.deepEqual(viaNginx.reader.parts.map((part) => part.body.length), direct.reader.parts.map((part) => part.body.length));
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
