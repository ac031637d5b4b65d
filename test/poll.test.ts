/**
 * Issue 11, item 12: `--poll URL --interval S`, a camera that offers only a still image, served as a
 * live stream (with Digest, conditional requests, backoff, an honest state); and `--relay` of an
 * upstream that is multipart without saying so (ffmpeg's `-f mpjpeg` HTTP output), with
 * `--relay-boundary`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { eventually, fetchText, makeFolder, openStream, removeFolder, startServer } from './helpers/server.ts';
import { FRAMES, startCamera, withCredentials } from './helpers/camera.ts';
import { startCli } from './helpers/cli.ts';
import { needs } from './helpers/tools.ts';
import { freePort } from './helpers/ports.ts';

const USER = 'viewer';
const PASSWORD = 'Po11:Secr3t/x';

function assertNoSecret(where: string, text: string): void {
  for (const form of [PASSWORD, encodeURIComponent(PASSWORD), 'Secr3t']) assert.ok(!text.includes(form), `${where} shows the password:\n${text}`);
}

type Upstream = { url: string; authentication: string; requests: number; notModified: number; failures: number; intervalSeconds: number };
async function streamStatus(base: URL): Promise<{ source: string; sourceError?: string; upstream: Upstream; partsIn: number }> {
  return JSON.parse((await fetchText(new URL('status', base))).body).streams.default;
}

test('a poll source reads a Digest camera\'s snapshot.jpg every interval, asks conditionally (304s re-sent as current), and serves it to a viewer as a live stream', async (t) => {
  const cam = await startCamera({ scheme: 'digest', algorithm: 'SHA-256', username: USER, password: PASSWORD, snapshotPeriodMs: 600 });
  t.after(() => cam.close());
  const { server, url, logger } = await startServer({ streams: { default: { type: 'poll', url: withCredentials(cam.snapshotUrl, USER, PASSWORD), intervalMs: 150 } } });
  t.after(() => server.close());
  await eventually(async () => (await fetch(new URL('snapshot', url))).status === 200, 5000, 'the first picture');
  const viewer = await openStream(new URL('stream', url));
  t.after(() => viewer.close());
  const parts = await viewer.reader.waitFor(8, 8000);
  assert.ok(parts.every((part) => FRAMES.some((frame) => frame.equals(part.body))), 'the camera\'s pictures, intact');
  assert.ok(new Set(parts.map((part) => part.body.length)).size >= 2, 'the picture changes as the camera\'s does');
  await eventually(() => cam.snapshots[304] >= 2, 5000, 'conditional requests answered 304');
  const status = await streamStatus(url);
  assert.equal(status.source, 'up');
  assert.equal(status.upstream.authentication, 'digest');
  assert.equal(status.upstream.url, `http://viewer:***@127.0.0.1:${cam.snapshotUrl.port}/snapshot.jpg`);
  assert.ok(status.upstream.notModified >= 2 && status.upstream.requests > status.upstream.notModified);
  // A picture the camera says is unchanged is current: the snapshot is served, its age under the interval.
  const snapshot = await fetch(new URL('snapshot', url));
  assert.equal(snapshot.status, 200);
  assert.ok(Number(snapshot.headers.get('age')) <= 1);
  assert.ok(cam.requests.filter((r) => r.verdict === 'no credentials').length === 1, 'challenged once, then the Digest answer is reused');
  assertNoSecret('the log', logger.lines.join('\n'));
  assertNoSecret('/status', JSON.stringify(status));
});

test('a failing camera: the poll source is down with the reason (503 for new viewers), retried with backoff, logged without flooding; up again when it answers', async (t) => {
  const cam = await startCamera({ scheme: 'basic', username: USER, password: PASSWORD });
  t.after(() => cam.close());
  const { server, url, logger } = await startServer({ streams: { default: { type: 'poll', url: cam.snapshotUrl.href, username: USER, password: PASSWORD, intervalMs: 100, retryDelayMs: 100 } } });
  t.after(() => server.close());
  await eventually(async () => (await streamStatus(url)).source === 'up' && (await streamStatus(url)).partsIn > 0, 5000, 'up');
  cam.failSnapshots = true;
  await eventually(async () => (await streamStatus(url)).source === 'down', 5000, 'down');
  const down = await streamStatus(url);
  assert.match(down.sourceError!, /^poll: .*snapshot\.jpg answered HTTP 500/);
  const refused = await fetch(new URL('stream', url));
  assert.equal(refused.status, 503);
  assert.equal(((await refused.json()) as { error: string }).error, 'SP_ERR_SOURCE_DOWN');
  // Backoff: 100, 200, 400, 800 ms … — in 2 s a handful of tries, not twenty.
  const before = cam.snapshots[500];
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const tries = cam.snapshots[500] - before;
  assert.ok(tries >= 1 && tries <= 6, `${tries} tries in 2 s`);
  const warnings = logger.lines.filter((line) => line.startsWith('warn SP_ERR_HTTP_STATUS'));
  assert.ok(warnings.length >= 1 && warnings.length <= cam.snapshots[500], 'logged, at most once per try');
  cam.failSnapshots = false;
  await eventually(async () => (await streamStatus(url)).source === 'up', 35_000, 'up again');
  assert.ok(logger.lines.some((line) => /poll .* answers again/.test(line)));
  assertNoSecret('the log', logger.lines.join('\n'));
});

test('the CLI: --poll with --interval, --relay-user and --relay-password-file; the password in neither ps, stderr nor /status', async (t) => {
  const cam = await startCamera({ scheme: 'digest', username: USER, password: PASSWORD });
  t.after(() => cam.close());
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  const file = join(dir, 'password');
  await writeFile(file, `${PASSWORD}\n`);
  const server = await startCli(['--poll', cam.snapshotUrl.href, '--interval', '0.2', '--relay-user', USER, '--relay-password-file', file, '--port', '0']);
  t.after(() => server.stop());
  await eventually(async () => (await fetch(new URL('snapshot', server.url))).status === 200, 5000, 'a picture');
  const status = await streamStatus(server.url);
  assert.equal(status.upstream.intervalSeconds, 0.2);
  assert.equal(status.upstream.authentication, 'digest');
  assert.match(server.stderr(), /stream default: polling http:\/\/127\.0\.0\.1:\d+\/snapshot\.jpg every 0\.2 s/);
  assertNoSecret('stderr', server.stderr());
  assertNoSecret('/status', JSON.stringify(status));
});

test('--relay of ffmpeg\'s own HTTP output (-f mpjpeg -listen 1: application/octet-stream): refused as not multipart without --relay-boundary, relayed with it', needs('ffmpeg'), async (t) => {
  const ffmpeg = async () => {
    const port = await freePort();
    const child = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10', '-t', '20', '-f', 'mpjpeg', '-listen', '1', `http://127.0.0.1:${port}/feed.mjpg`], { stdio: 'ignore' });
    t.after(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
    return `http://127.0.0.1:${port}/feed.mjpg`;
  };
  const plain = await startServer({ streams: { default: { type: 'relay', url: await ffmpeg(), retryDelayMs: 300, idleTimeoutMs: 0 } } });
  t.after(() => plain.server.close());
  await eventually(() => plain.logger.lines.some((line) => /warn SP_ERR_SOURCE_FAILED .*not a multipart response: Content-Type is "application\/octet-stream"/.test(line)), 10_000, 'the relay refusing an octet-stream').catch((error: Error) => assert.fail(`${error.message}:\n${plain.logger.lines.join('\n')}`));

  const cli = await startCli(['--relay', await ffmpeg(), '--relay-boundary', 'ffmpeg', '--relay-idle', '0', '--port', '0']);
  t.after(() => cli.stop());
  await eventually(async () => (await fetch(new URL('snapshot', cli.url))).status === 200, 10_000, 'a relayed frame');
  const viewer = await openStream(new URL('stream', cli.url));
  t.after(() => viewer.close());
  const parts = await viewer.reader.waitFor(5, 8000);
  assert.ok(parts.every((part) => part.headers['content-type'] === 'image/jpeg' && part.body[0] === 0xff && part.body[1] === 0xd8));
  const status = await streamStatus(cli.url);
  assert.equal((status.upstream as unknown as { boundary: string }).boundary, 'ffmpeg');
});

test('a poll source with a wrong password: SP_ERR_AUTH_FAILED, down, and the password in no log line, /status or 503 body', async (t) => {
  const cam = await startCamera({ scheme: 'digest', username: USER, password: 'the-right-one' });
  t.after(() => cam.close());
  const { server, url, logger } = await startServer({ streams: { default: { type: 'poll', url: withCredentials(cam.snapshotUrl, USER, PASSWORD), intervalMs: 100, retryDelayMs: 100 } } });
  t.after(() => server.close());
  await eventually(() => logger.lines.some((line) => line.startsWith('warn SP_ERR_AUTH_FAILED')), 5000, 'the refusal logged');
  const status = await streamStatus(url);
  assert.equal(status.source, 'down');
  assert.match(status.sourceError!, /^poll: /);
  const stream = await fetch(new URL('stream', url));
  assert.equal(stream.status, 503);
  const body = await stream.text();
  const snapshot = await fetch(new URL('snapshot', url));
  assert.equal(snapshot.status, 503);
  assertNoSecret('the 503 body', body + (await snapshot.text()));
  assertNoSecret('/status', JSON.stringify(status));
  assertNoSecret('the log', logger.lines.join('\n'));
});
