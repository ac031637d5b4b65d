/**
 * Issue 11, item 14: mjpg-streamer's URLs as its clients (OctoPrint, Home Assistant, motionEye)
 * use them — `?action=stream_N`, trailing slashes, and a base path behind a reverse proxy — with
 * curl and ffmpeg, the programs those clients are built on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, fetchText, openStream, makeFolder, removeFolder } from './helpers/server.ts';
import { startCli, runCli } from './helpers/cli.ts';
import { FRAMES } from './helpers/camera.ts';
import { needs } from './helpers/tools.ts';

const run = promisify(execFile);

/** Two push streams fed with different frames: `default` gets frames 0 and 1, `cam` frames 2 and 3. */
async function twoStreams(t: { after(fn: () => unknown): void }, basePath?: string) {
  const { server, url } = await startServer({ streams: { cam: { type: 'push' }, default: { type: 'push' } }, ...(basePath ? { basePath } : {}) });
  let i = 0;
  const feed = () => {
    server.live().push({ contentType: 'image/jpeg', body: FRAMES[i % 2]! });
    server.live('cam').push({ contentType: 'image/jpeg', body: FRAMES[2 + (i % 2)]! });
    i++;
  };
  feed();
  const timer = setInterval(feed, 40);
  t.after(async () => {
    clearInterval(timer);
    await server.close();
  });
  return { server, url };
}

/** The status and the bytes curl gets for `url` in `seconds` (a stream is cut by --max-time). */
async function curl(url: string, seconds = 1): Promise<{ status: number; body: Buffer; headers: string }> {
  const { stdout } = await run('curl', ['-sS', '-i', '--max-time', String(seconds), url], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }).catch((error: { stdout: Buffer; code: number }) => {
    if (error.code === 28) return { stdout: error.stdout }; // timed out: a stream, as expected
    throw error;
  });
  const end = stdout.indexOf('\r\n\r\n');
  const headers = stdout.subarray(0, end).toString('latin1');
  return { status: Number(/^HTTP\/[\d.]+ (\d+)/.exec(headers)![1]), headers, body: stdout.subarray(end + 4) };
}

function jpegsIn(body: Buffer): number[] {
  return FRAMES.map((frame, index) => (body.includes(frame) ? index : -1)).filter((index) => index >= 0);
}

test('?action=stream_N and ?action=snapshot_N: input 0 is the default stream, 1 the next; an index with no stream is 404', needs('curl'), async (t) => {
  const { url } = await twoStreams(t);
  const stream0 = await curl(new URL('?action=stream_0', url).href);
  assert.equal(stream0.status, 200);
  assert.match(stream0.headers, /Content-Type: multipart\/x-mixed-replace; boundary=/i);
  assert.deepEqual(jpegsIn(stream0.body), [0, 1], 'the default stream\'s frames');
  const stream1 = await curl(new URL('?action=stream_1', url).href);
  assert.deepEqual(jpegsIn(stream1.body), [2, 3], 'input 1 is the other stream');
  const snapshot0 = await curl(new URL('?action=snapshot_0', url).href);
  assert.equal(snapshot0.status, 200);
  assert.match(snapshot0.headers, /Content-Type: image\/jpeg/i);
  assert.ok(FRAMES.slice(0, 2).some((frame) => frame.equals(snapshot0.body)));
  const snapshot1 = await curl(new URL('?action=snapshot_1', url).href);
  assert.ok(FRAMES.slice(2).some((frame) => frame.equals(snapshot1.body)));
  const missing = await fetchText(new URL('?action=stream_2', url));
  assert.equal(missing.status, 404);
  assert.deepEqual(JSON.parse(missing.body), { error: 'SP_ERR_UNKNOWN_STREAM', message: 'no stream with input index 2; this server has 2 (0 to 1: cam, default)' });
});

test('a trailing slash is the same resource: /stream/, /stream/NAME/, /snapshot/, /status/', needs('curl'), async (t) => {
  const { url } = await twoStreams(t);
  assert.deepEqual(jpegsIn((await curl(new URL('stream/', url).href)).body), [0, 1]);
  assert.deepEqual(jpegsIn((await curl(new URL('stream/cam/', url).href)).body), [2, 3]);
  const snapshot = await curl(new URL('snapshot/cam/', url).href);
  assert.equal(snapshot.status, 200);
  assert.ok(FRAMES.slice(2).some((frame) => frame.equals(snapshot.body)));
  const status = await fetchText(new URL('status/', url));
  assert.equal(status.status, 200);
  assert.deepEqual(Object.keys(JSON.parse(status.body).streams), ['cam', 'default']);
  assert.equal((await fetchText(new URL('stream//', url))).status, 404, 'one slash, not any number');
});

test('basePath /webcam: /webcam/?action=stream as OctoPrint asks it, read by ffmpeg; /webcam redirects to /webcam/; paths outside are 404', needs('curl', 'ffmpeg'), async (t) => {
  const { server, url } = await twoStreams(t, '/webcam/');
  assert.equal(url.pathname, '/webcam/', 'server.url includes the base path');
  const origin = `http://${url.host}`;
  const stream = await curl(`${origin}/webcam/?action=stream`);
  assert.equal(stream.status, 200);
  assert.deepEqual(jpegsIn(stream.body), [0, 1]);
  const bare = await curl(`${origin}/webcam?action=snapshot`);
  assert.equal(bare.status, 200, '/webcam?action=… is served as it is');
  const redirect = await curl(`${origin}/webcam`);
  assert.equal(redirect.status, 308);
  assert.match(redirect.headers, /Location: \/webcam\/\r?$/im);
  assert.equal((await fetchText(`${origin}/webcam/status`)).status, 200);
  for (const outside of ['/stream', '/?action=stream', '/status', '/webcams/stream']) {
    const answer = await fetchText(`${origin}${outside}`);
    assert.equal(answer.status, 404, outside);
    assert.match(JSON.parse(answer.body).message, /this server serves under \/webcam\//);
  }
  // ffmpeg, as Home Assistant's and motionEye's camera integrations use it.
  const dir = await mkdtemp(join(tmpdir(), 'serverpush-mjpg-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', `${origin}/webcam/?action=stream_1`, '-frames:v', '4', '-c', 'copy', join(dir, 'f%02d.jpg')], { timeout: 20_000 });
  const saved = (await readdir(dir)).sort();
  assert.equal(saved.length, 4);
  for (const name of saved) assert.ok(FRAMES.slice(2).some((frame) => frame.equals(readFileSyncBuffer(join(dir, name)))), `${name} is one of the cam stream's frames`);
  // The index page and the viewer work under the prefix (their links are relative).
  const index = await fetchText(`${origin}/webcam/`);
  assert.equal(index.status, 200);
  assert.match(index.body, /src="stream/);
  const viewer = await openStream(`${origin}/webcam/stream/cam`);
  await viewer.reader.waitFor(2, 3000);
  viewer.close();
  assert.equal(server.url.href, url.href);
});

function readFileSyncBuffer(path: string): Buffer {
  return readFileSync(path);
}

test('--base-path and the config file\'s basePath (the flag wins); a bad one exits 2', needs('curl'), async (t) => {
  const dir = await makeFolder({ 'a.jpg': FRAMES[0]!, 'cfg.json': JSON.stringify({ basePath: '/cams', streams: { default: { type: 'slideshow', dir: '.', interval: 0.1 } } }) });
  t.after(() => removeFolder(dir));
  const flagged = await startCli([dir, '--port', '0', '--base-path', '/webcam']);
  t.after(() => flagged.stop());
  assert.equal(flagged.url.pathname, '/webcam/');
  assert.match(flagged.stderr(), /stream default: slideshow of .* at http:\/\/127\.0\.0\.1:\d+\/webcam\/stream/);
  const snap = await curl(new URL('?action=snapshot', flagged.url).href);
  assert.equal(snap.status, 200);
  assert.ok(FRAMES[0]!.equals(snap.body));
  const configured = await startCli(['--config', join(dir, 'cfg.json'), '--port', '0']);
  t.after(() => configured.stop());
  assert.equal(configured.url.pathname, '/cams/');
  const overridden = await startCli(['--config', join(dir, 'cfg.json'), '--port', '0', '--base-path', '/x']);
  t.after(() => overridden.stop());
  assert.equal(overridden.url.pathname, '/x/');
  for (const bad of ['webcam', '/a/../b', '/a b', '/a?b']) {
    const result = await runCli(['serve', dir, '--base-path', bad]);
    assert.equal(result.code, 2, bad);
    assert.match(result.stderr, /basePath must be a path such as \/webcam .* \(SP_ERR_CONFIG\)/);
  }
});
