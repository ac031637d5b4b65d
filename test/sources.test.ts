import { test, before } from 'node:test';
import { missing, needs } from './helpers/tools.ts';
import assert from 'node:assert/strict';
import { writeFile, rename, open, mkdir } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { makeJpegFrames } from './helpers/frames.ts';
import { startServer, openStream, fetchText, eventually, sleep, makeFolder, removeFolder } from './helpers/server.ts';
import { imageProblem } from '../src/protocol/image-check.ts';

let frames: Buffer[] = [];
before(async () => { if (!missing('ffmpeg')) frames = await makeJpegFrames(6); });

const FFMPEG_LIVE = (format: string, rate = 30) => `exec ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc=size=160x120:rate=${rate} -q:v 5 -f ${format} -`;

for (const format of ['mjpeg', 'mpjpeg']) {
  test(`--exec: frames from ffmpeg -f ${format} reach every viewer as whole JPEGs`, async (t) => {
    const { server, url } = await startServer({ streams: { default: { type: 'exec', command: FFMPEG_LIVE(format) } } });
    t.after(() => server.close());
    assert.ok(await eventually(() => server.live().latest !== undefined, 5000), 'first frame arrived');
    const viewer = await openStream(new URL('stream', url));
    const parts = await viewer.reader.waitFor(30, 5000);
    for (const part of parts) {
      assert.equal(part.headers['content-type'], 'image/jpeg');
      assert.equal(imageProblem('image/jpeg', part.body), undefined);
    }
    const spacing = (parts.at(-1)!.receivedAt - parts[0]!.receivedAt) / (parts.length - 1);
    assert.ok(spacing > 20 && spacing < 50, `about 30 fps: ${spacing.toFixed(1)} ms apart`);
    viewer.close();
  });
}

test('--exec: garbage, a truncated frame and junk between frames are dropped with a warning; whole frames go through', needs('ffmpeg'), async (t) => {
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  const input = Buffer.concat([Buffer.from('garbage before\n'), frames[0]!, frames[1]!.subarray(0, 2000), frames[2]!, Buffer.from('\r\njunk between\r\n'), frames[3]!]);
  await writeFile(join(dir, 'input.bin'), input);
  const { server, url, logger } = await startServer({ streams: { default: { type: 'exec', command: `cat ${join(dir, 'input.bin')}; sleep 30` } } });
  t.after(() => server.close());
  // The input comes in one read: latest wins at the source, so the newest whole frame is pushed
  // and the two before it are counted as superseded.
  const whole = () => server.live().counters.partsIn + server.live().counters.framesSuperseded;
  assert.ok(await eventually(() => whole() === 3, 5000), `3 whole frames, got ${whole()}`);
  assert.ok(server.live().counters.partsIn >= 1);
  const snapshot = Buffer.from(await (await fetch(new URL('snapshot', url))).arrayBuffer());
  assert.ok(snapshot.equals(frames[3]!));
  assert.match(logger.lines.join('\n'), /warn SP_ERR_INVALID_FRAME stream default \(command\): dropped 15 bytes before the first image/);
});

test('--exec: a command that exits is restarted with backoff; viewers see the source down, then frames again', needs('ffmpeg'), async (t) => {
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  await writeFile(join(dir, 'one.jpg'), frames[0]!);
  const { server, url, logger } = await startServer({ streams: { default: { type: 'exec', command: `cat ${join(dir, 'one.jpg')}; echo failing >&2; exit 3`, restartDelayMs: 100 } } });
  t.after(() => server.close());
  assert.ok(await eventually(() => logger.lines.filter((l) => l.startsWith('warn') && l.includes('exited with code 3')).length >= 2, 5000), logger.lines.join('\n'));
  assert.match(logger.lines.join('\n'), /warn SP_ERR_SOURCE_FAILED stream default: command exited with code 3; last output: failing; restarting in 100 ms/);
  assert.match(logger.lines.join('\n'), /restarting in 200 ms/, 'the delay doubles');
  const status = JSON.parse((await fetchText(new URL('status', url))).body);
  assert.equal(status.streams.default.latest.bytes, frames[0]!.length);
});

test('--stdin (a readable): an ffmpeg pipe into the CLI', needs('ffmpeg'), async (t) => {
  const { startCli } = await import('./helpers/cli.ts');
  const server = await startCli(['--stdin', '--port', '0'], { stdin: FFMPEG_LIVE('mjpeg', 10).replace(/^exec /, '') });
  t.after(() => server.stop());
  assert.ok(await eventually(async () => (await fetchText(new URL('snapshot', server.url))).status === 200, 5000));
  const viewer = await openStream(new URL('stream', server.url));
  const parts = await viewer.reader.waitFor(5, 3000);
  assert.ok(parts.every((p) => imageProblem('image/jpeg', p.body) === undefined));
  viewer.close();
});

/** frames[i % 6] with its number `n` in a JPEG comment right after SOI: a frame told apart by its bytes. */
function numbered(n: number): Buffer {
  const base = frames[n % frames.length]!;
  const text = Buffer.from(`frame:${String(n).padStart(6, '0')}`, 'latin1');
  const com = Buffer.alloc(4);
  com.writeUInt16BE(0xfffe, 0);
  com.writeUInt16BE(2 + text.length, 2);
  return Buffer.concat([base.subarray(0, 2), com, text, base.subarray(2)]);
}
const numberOf = (body: Uint8Array): number => Number(/frame:(\d{6})/.exec(Buffer.from(body).toString('latin1'))![1]);

/** Makes every push of `stream` take `ms` of event-loop time, as a fan-out to thousands of viewers does. */
function slowFanOut(stream: import('../src/hub/live-stream.ts').LiveStream, ms: number, pushed: number[]): void {
  stream.on('part', (part: { body: Uint8Array }) => {
    pushed.push(numberOf(part.body));
    const until = performance.now() + ms;
    while (performance.now() < until) { /* busy, like writing to a thousand sockets */ }
  });
}

test('--exec: a pipe that delivers frames faster than they can be pushed yields the newest, not a backlog of every frame', needs('ffmpeg'), async (t) => {
  const { LiveStream } = await import('../src/hub/live-stream.ts');
  const { CommandSource } = await import('../src/sources/pipe.ts');
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  await writeFile(join(dir, 'first.jpg'), numbered(1));
  await writeFile(join(dir, 'burst.bin'), Buffer.concat(Array.from({ length: 59 }, (_, i) => numbered(i + 2))));
  await writeFile(join(dir, 'last.jpg'), numbered(61));
  const stream = new LiveStream();
  const pushed: number[] = [];
  slowFanOut(stream, 40, pushed);
  // One frame, then 59 at once while the first is still being pushed, then one more.
  const source = new CommandSource(`cat first.jpg; sleep 0.2; cat burst.bin; sleep 0.5; cat last.jpg; sleep 30`.replaceAll(/(\w+\.(jpg|bin))/g, `${dir}/$1`));
  source.start(stream);
  t.after(() => source.stop());
  assert.ok(await eventually(() => pushed.at(-1) === 61, 5000), `the last frame is pushed; pushed ${pushed.join(',')}`);
  assert.equal(stream.counters.partsIn + stream.counters.framesSuperseded, 61, 'every whole frame read is pushed or counted as superseded');
  assert.ok(pushed.includes(60), `the newest frame of the burst is pushed: ${pushed.join(',')}`);
  assert.ok(stream.counters.partsIn <= 10, `the burst is not pushed frame by frame: ${stream.counters.partsIn} pushes (${pushed.join(',')})`);
  assert.deepEqual([...pushed].sort((a, b) => a - b), pushed, 'in order');
});

test('--stdin (a readable): frames written faster than they are pushed yield the newest', needs('ffmpeg'), async (t) => {
  const { LiveStream } = await import('../src/hub/live-stream.ts');
  const { ReadableSource } = await import('../src/sources/pipe.ts');
  const { PassThrough } = await import('node:stream');
  const input = new PassThrough();
  const stream = new LiveStream();
  const pushed: number[] = [];
  slowFanOut(stream, 20, pushed);
  const source = new ReadableSource(input);
  source.start(stream);
  t.after(() => source.stop());
  input.write(numbered(1));
  assert.ok(await eventually(() => pushed.length === 1));
  for (let n = 2; n <= 40; n++) input.write(numbered(n));
  assert.ok(await eventually(() => pushed.at(-1) === 40), `the newest is pushed: ${pushed.join(',')}`);
  assert.deepEqual(pushed, [1, 40], 'frames written in one turn: only the newest is pushed');
  assert.equal(stream.counters.framesSuperseded, 38);
  input.end(numbered(41));
  assert.ok(await eventually(() => pushed.at(-1) === 41), 'the frame before the end of input is pushed');
  assert.ok(await eventually(() => !stream.source.up), 'then the source is down');
});

test('ReadableSource over any async iterable: frames it yields together yield the newest, and the last one before the end is pushed', needs('ffmpeg'), async () => {
  const { LiveStream } = await import('../src/hub/live-stream.ts');
  const { ReadableSource } = await import('../src/sources/pipe.ts');
  const stream = new LiveStream();
  const pushed: number[] = [];
  stream.on('part', (p: { body: Uint8Array }) => pushed.push(numberOf(p.body)));
  async function* frames() {
    for (let n = 1; n <= 20; n++) yield numbered(n);
    await new Promise((resolve) => setTimeout(resolve, 50));
    yield numbered(21);
  }
  const source = new ReadableSource(frames());
  source.start(stream);
  await source.stop();
  assert.deepEqual(pushed, [20, 21]);
  assert.equal(stream.counters.framesSuperseded, 19);
  assert.equal(stream.source.up, false);
});

test('ffmpeg reads a live stream: every frame decodes', needs('ffmpeg'), async (t) => {
  const { server, url } = await startServer({ streams: { default: { type: 'exec', command: FFMPEG_LIVE('mjpeg') } } });
  t.after(() => server.close());
  assert.ok(await eventually(() => server.live().latest !== undefined, 5000));
  const child = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', new URL('stream', url).href, '-frames:v', '30', '-f', 'framecrc', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
  child.stderr.setEncoding('utf8').on('data', (s: string) => { err += s; });
  const code = await new Promise((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, err);
  assert.equal(err, '');
  assert.equal(out.split('\n').filter((line) => /^0,/.test(line)).length, 30, 'ffmpeg decoded 30 frames');
});

test('--watch a folder: each file created or finished writing is pushed once whole, in arrival order', needs('ffmpeg'), async (t) => {
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  const { server, url } = await startServer({ streams: { default: { type: 'watch', path: dir, settleMs: 50 } } });
  t.after(() => server.close());
  assert.equal((await fetchText(new URL('stream', url))).status, 503);
  for (const i of [0, 1, 2]) await writeFile(join(dir, `..frame${i}`), frames[i]!);
  // Another process writes: one file at once, one by write-then-rename, one slowly in place.
  const writer = spawn('sh', ['-c', `
    cat "$1" > "$4/a.jpg"
    sleep 0.3
    cat "$2" > "$4/.tmp-b" && mv "$4/.tmp-b" "$4/b.jpg"
    sleep 0.3
    head -c 1500 "$3" > "$4/c.jpg"; sleep 0.3; tail -c +1501 "$3" >> "$4/c.jpg"
  `, 'sh', ...[0, 1, 2].map((i) => join(dir, `..frame${i}`)), dir]);
  await new Promise((resolve) => writer.on('exit', resolve));
  assert.ok(await eventually(() => server.live().counters.partsIn >= 3, 3000));
  await sleep(300);
  assert.equal(server.live().counters.partsIn, 3, 'each file once, the half-written one never');
  const viewer = await openStream(new URL('stream', url));
  assert.ok((await viewer.reader.waitFor(1))[0]!.body.equals(frames[2]!));
  viewer.close();
});

test('--watch a file: each new version a camera writes over it is pushed', needs('ffmpeg'), async (t) => {
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  const file = join(dir, 'latest.jpg');
  await writeFile(file, frames[0]!);
  const { server, url } = await startServer({ streams: { default: { type: 'watch', path: file, settleMs: 30 } } });
  t.after(() => server.close());
  assert.ok(await eventually(() => server.live().latest !== undefined, 2000), 'the existing file is pushed at start');
  const viewer = await openStream(new URL('stream', url));
  await viewer.reader.waitFor(1);
  await writeFile(join(dir, 'tmp'), frames[1]!);
  await rename(join(dir, 'tmp'), file);
  await viewer.reader.waitFor(2, 3000);
  const handle = await open(file, 'r+');
  await handle.truncate(0);
  await handle.write(frames[2]!, 0, frames[2]!.length, 0);
  await handle.close();
  await writeFile(join(dir, 'other.jpg'), frames[3]!);
  const parts = await viewer.reader.waitFor(3, 3000);
  await sleep(300);
  assert.deepEqual(viewer.reader.parts.map((p) => frames.findIndex((f) => f.equals(p.body))), [0, 1, 2]);
  assert.ok(parts.length === 3);
  viewer.close();
});

test('--watch a missing path fails with SP_ERR_DIR_NOT_FOUND', needs('ffmpeg'), async () => {
  await assert.rejects(startServer({ streams: { default: { type: 'watch', path: '/nonexistent/dir/x' } } }), { code: 'SP_ERR_DIR_NOT_FOUND' });
  await mkdir('/tmp', { recursive: true });
});
