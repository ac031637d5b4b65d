/**
 * `--watch` at camera rates (issue 10) and a watched file whose type its name does not tell
 * (issue 11). A camera process (helpers/camera-writer.ts) writes real ~20 KB JPEGs, each with its
 * sequence number in a comment segment, by write-then-rename or in place; a real HTTP client reads
 * /stream from a real server and counts the distinct versions it got. No assertion depends on how
 * fast this machine is beyond "most versions arrive".
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeJpegFrames } from './helpers/frames.ts';
import { startServer, openStream, fetchText, eventually, sleep, makeFolder, removeFolder, type OpenStream } from './helpers/server.ts';
import { runCli, startCli } from './helpers/cli.ts';
import { readSeq, stampSeq, type CameraOptions } from './helpers/camera-writer.ts';
import { imageProblem, imageCompleteness } from '../src/protocol/image-check.ts';
import { WatchSource } from '../src/sources/watch.ts';

const WRITER = new URL('./helpers/camera-writer.ts', import.meta.url).pathname;
const mkfifo = (path: string): void => { execFileSync('mkfifo', [path]); };

let frames: Buffer[] = [];
let framesDir = '';
let frameFiles: string[] = [];
before(async () => {
  frames = await makeJpegFrames(4, '640x480');
  framesDir = await mkdtemp(join(tmpdir(), 'serverpush-watch-frames-'));
  frameFiles = [];
  for (const [i, frame] of frames.entries()) {
    frameFiles.push(join(framesDir, `f${i}.jpg`));
    await writeFile(frameFiles.at(-1)!, frame);
  }
});
after(() => rm(framesDir, { recursive: true, force: true }));

/** Version `seq` as the camera writes it. */
const version = (seq: number): Buffer => stampSeq(frames[seq % frames.length]!, seq);

/** Runs the camera as its own process until it is done. */
async function runCamera(options: Omit<CameraOptions, 'frames'> & { frames?: string[] }): Promise<{ written: number; lastSeq: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, JSON.stringify({ frames: frameFiles, ...options })], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
  child.stderr.setEncoding('utf8').on('data', (s: string) => { err += s; });
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, `camera failed: ${err}`);
  return JSON.parse(out) as { written: number; lastSeq: number };
}

/**
 * What a viewer got: the sequence numbers in arrival order. Every part must be one whole version
 * exactly as written, in order, never a half-written file.
 */
function received(viewer: OpenStream, makeVersion = version): number[] {
  const seqs: number[] = [];
  for (const part of viewer.reader.parts) {
    assert.equal(part.headers['content-type'], 'image/jpeg');
    assert.equal(imageProblem('image/jpeg', part.body), undefined, 'a whole JPEG');
    const seq = readSeq(part.body);
    assert.ok(seq !== undefined, 'a version the camera wrote');
    assert.ok(part.body.equals(makeVersion(seq)), `version ${seq} byte for byte`);
    if (seqs.length > 0) assert.ok(seq > seqs.at(-1)!, `in order: ${seq} after ${seqs.at(-1)}`);
    seqs.push(seq);
  }
  return seqs;
}

/**
 * A camera run against a watching server at `streamUrl`: the viewer is connected first (it gets
 * version 0, already there), then the camera writes; afterwards its last version must arrive,
 * and the share of versions that arrived is returned.
 */
async function cameraRun(streamUrl: URL, camera: Omit<CameraOptions, 'frames'>): Promise<{ share: number; seqs: number[]; written: number }> {
  const viewer = await openStream(streamUrl);
  try {
    await viewer.reader.waitFor(1, 5000);
    const { written, lastSeq } = await runCamera(camera);
    assert.ok(written > 0);
    const last = await eventually(() => readSeq(viewer.reader.parts.at(-1)!.body) === lastSeq, 3000);
    const seqs = received(viewer);
    assert.ok(last, `the newest version (${lastSeq}) reached the viewer; it has ${seqs.slice(-5).join(', ')}`);
    const got = seqs.filter((seq) => seq >= 1).length;
    return { share: got / written, seqs, written };
  } finally {
    viewer.close();
  }
}

for (const mode of ['file', 'folder'] as const) {
  test(`serve --watch ${mode === 'file' ? 'FEED/current.jpg' : 'FEED'}: a camera renaming 20 KB JPEGs over current.jpg at 30 fps for 5 s — the viewer gets ≥ 90 % of the versions, whole and in order`, async (t) => {
    const dir = await makeFolder();
    t.after(() => removeFolder(dir));
    const target = join(dir, 'current.jpg');
    await writeFile(target, version(0));
    const server = await startCli(['--watch', mode === 'file' ? target : dir, '--port', '0']);
    t.after(() => server.stop());
    assert.ok(await eventually(async () => (await fetchText(new URL('snapshot', server.url))).status === 200, 5000));
    const partsBefore = JSON.parse((await fetchText(new URL('status', server.url))).body).streams.default.partsIn as number;
    const run = await cameraRun(new URL('stream', server.url), { target, mode: 'rename', fps: 30, seconds: 5 });
    const partsAfter = JSON.parse((await fetchText(new URL('status', server.url))).body).streams.default.partsIn as number;
    t.diagnostic(`${(run.share * 100).toFixed(1)} % of ${run.written} versions; the server took ${partsAfter - partsBefore}`);
    assert.ok(run.share >= 0.9, `${(run.share * 100).toFixed(0)} % of ${run.written} versions`);
    assert.doesNotMatch(server.stderr(), / (warn|error) /, 'nothing refused, nothing failed');
  });
}

test('--watch a folder: 60 fps by rename never starves the viewer (the newest version wins)', async (t) => {
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  const target = join(dir, 'current.jpg');
  await writeFile(target, version(0));
  const { server, url, logger } = await startServer({ streams: { default: { type: 'watch', path: dir } } });
  t.after(() => server.close());
  assert.ok(await eventually(() => server.live().latest !== undefined, 3000));
  // ffmpeg-style temporary name in the watched folder: not a document, never pushed itself.
  const run = await cameraRun(new URL('stream', url), { target, mode: 'rename', fps: 60, seconds: 4, tmpName: 'current.jpg.tmp' });
  t.diagnostic(`${(run.share * 100).toFixed(1)} % of ${run.written} versions`);
  assert.ok(run.share >= 0.75, `${(run.share * 100).toFixed(0)} % of ${run.written} versions`);
  assert.equal(server.live().counters.partsRefused, 0);
  assert.deepEqual(logger.lines.filter((line) => !line.startsWith('info')), []);
});

test('--watch a file written in place in three pieces at 30 fps: every frame pushed is whole, and most versions are pushed', async (t) => {
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  const target = join(dir, 'current.jpg');
  await writeFile(target, version(0));
  const { server, url } = await startServer({ streams: { default: { type: 'watch', path: target } } });
  t.after(() => server.close());
  assert.ok(await eventually(() => server.live().latest !== undefined, 3000));
  const run = await cameraRun(new URL('stream', url), { target, mode: 'inplace', fps: 30, seconds: 3, chunks: 3, pauseMs: 4 });
  // A version is whole only from its last piece until the next truncation (~25 ms here).
  t.diagnostic(`${(run.share * 100).toFixed(1)} % of ${run.written} versions`);
  assert.ok(run.share >= 0.5, `${(run.share * 100).toFixed(0)} % of ${run.written} versions`);
  assert.equal(server.live().counters.partsRefused, 0, 'no half-written frame was even offered');
});

/** `jpeg` with an APP1 segment holding `thumbnail` (as an EXIF thumbnail is) after its SOI. */
function withThumbnail(jpeg: Buffer, thumbnail: Buffer): { body: Buffer; thumbnailEnd: number } {
  const header = Buffer.from('Exif\0\0', 'latin1');
  const app1 = Buffer.alloc(4);
  app1[0] = 0xff;
  app1[1] = 0xe1;
  app1.writeUInt16BE(2 + header.length + thumbnail.length, 2);
  const body = Buffer.concat([jpeg.subarray(0, 2), app1, header, thumbnail, jpeg.subarray(2)]);
  return { body, thumbnailEnd: 2 + 4 + header.length + thumbnail.length };
}

test('--watch a file written in place, paused right after an embedded thumbnail\'s end-of-image marker: the half-written file is never pushed', async (t) => {
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  const [small] = await makeJpegFrames(1, '96x72');
  const thumbed = frames.map((frame) => withThumbnail(frame, small!).body);
  const thumbedFiles: string[] = [];
  for (const [i, body] of thumbed.entries()) {
    thumbedFiles.push(join(dir, `..thumbed${i}.jpg`));
    await writeFile(thumbedFiles.at(-1)!, body);
  }
  const makeVersion = (seq: number): Buffer => stampSeq(thumbed[seq % thumbed.length]!, seq);
  // Where the thumbnail ends in a version as written (the stamp comes first): the file's bytes up
  // to there start with FF D8 FF and end with FF D9, like a whole JPEG.
  const cut = stampSeq(Buffer.from([0xff, 0xd8]), 0).length + withThumbnail(frames[0]!, small!).thumbnailEnd - 2;
  const partial = makeVersion(1).subarray(0, cut);
  assert.equal(imageProblem('image/jpeg', partial), undefined, 'the cut looks whole to the end-marker check');
  assert.equal(imageCompleteness('image/jpeg', partial), 'partial', 'but not to the structure walk');
  const target = join(dir, 'current.jpg');
  await writeFile(target, makeVersion(0));
  const { server, url } = await startServer({ streams: { default: { type: 'watch', path: target, settleMs: 50 } } });
  t.after(() => server.close());
  assert.ok(await eventually(() => server.live().latest !== undefined, 3000));
  const viewer = await openStream(new URL('stream', url));
  t.after(() => viewer.close());
  await viewer.reader.waitFor(1, 5000);
  // Each version: the first piece ends right after the thumbnail; then 150 ms (three times the
  // settle time) before the rest.
  const { lastSeq } = await runCamera({ target, mode: 'inplace', frames: thumbedFiles, fps: 2, count: 4, cuts: [cut], pauseMs: 150 });
  assert.ok(await eventually(() => readSeq(viewer.reader.parts.at(-1)!.body) === lastSeq, 3000), 'the last version arrived');
  assert.deepEqual(received(viewer, makeVersion), [0, 1, 2, 3, 4], 'every version, each whole');
  assert.equal(server.live().counters.partsRefused, 0);
});

test('every cut of a JPEG is partial and only the whole file whole (with an embedded thumbnail and fill bytes); PNG and GIF likewise', async () => {
  const [small] = await makeJpegFrames(1, '96x72');
  const thumbed = withThumbnail(frames[2]!, small!);
  // Fill bytes (FF) before the marker that follows the thumbnail's segment, as JPEG allows.
  const body = Buffer.concat([thumbed.body.subarray(0, thumbed.thumbnailEnd), Buffer.from([0xff, 0xff]), thumbed.body.subarray(thumbed.thumbnailEnd)]);
  assert.equal(imageProblem('image/jpeg', body), undefined);
  for (let cut = 0; cut < body.length; cut++) {
    const verdict = imageCompleteness('image/jpeg', body.subarray(0, cut));
    if (verdict !== 'partial') assert.fail(`cut at ${cut} of ${body.length}: ${verdict}`);
  }
  assert.equal(imageCompleteness('image/jpeg', body), 'whole');
  assert.equal(imageCompleteness('image/jpeg', Buffer.concat([body, Buffer.from('\r\n\0\0')])), 'whole', 'padding after EOI');
  assert.equal(imageCompleteness('image/jpeg', Buffer.concat([body, Buffer.from('junk')])), 'unknown', 'bytes after EOI: not for a structure check to decide');
  assert.equal(imageCompleteness('text/plain; charset=utf-8', Buffer.from('hi')), 'unknown');
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg==', 'base64');
  for (let cut = 0; cut < png.length; cut++) assert.equal(imageCompleteness('image/png', png.subarray(0, cut)), 'partial', `png cut at ${cut}`);
  assert.equal(imageCompleteness('image/png', png), 'whole');
  const gif = Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64');
  for (let cut = 0; cut < gif.length; cut++) assert.equal(imageCompleteness('image/gif', gif.subarray(0, cut)), 'partial', `gif cut at ${cut}`);
  assert.equal(imageCompleteness('image/gif', gif), 'whole');
});

test('--watch a text file rewritten in place every 20 ms: never pushed half, and a writer that never pauses is not postponed for ever', async (t) => {
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  const target = join(dir, 'status.txt');
  const text = (n: number): string => `status ${String(n).padStart(6, '0')}\n${'x'.repeat(4000)}\nend\n`;
  await writeFile(target, text(0));
  // A settle time far above the writer's pauses, so that a busy machine stretching them does not
  // make a half-written version look settled.
  const { server, url } = await startServer({ streams: { default: { type: 'watch', path: target, settleMs: 500 } } });
  t.after(() => server.close());
  assert.ok(await eventually(() => server.live().latest !== undefined, 3000));
  const viewer = await openStream(new URL('stream', url));
  t.after(() => viewer.close());
  await viewer.reader.waitFor(1, 5000);
  // 2 s of versions 20 ms apart: never 500 ms of quiet.
  const began = performance.now();
  let n = 0;
  while (performance.now() - began < 2000) {
    await writeFile(target, text(++n));
    await sleep(20);
  }
  // Then one more version, in two pieces 20 ms apart, and quiet.
  const last = text(++n);
  const handle = await (await import('node:fs/promises')).open(target, 'w');
  await handle.write(last.slice(0, 1000));
  await sleep(20);
  await handle.write(last.slice(1000));
  await handle.close();
  assert.ok(await eventually(() => viewer.reader.parts.at(-1)!.body.toString() === last, 3000), 'the final version arrived');
  const bodies = viewer.reader.parts.map((part) => part.body.toString());
  for (const body of bodies) assert.match(body, /^status \d{6}\nx{4000}\nend\n$/, `a whole version, ${body.length} bytes`);
  t.diagnostic(`${bodies.length} versions pushed`);
  assert.ok(bodies.length >= 3, `pushed while the writer never paused: ${bodies.length - 2} versions in between`);
});

test('--watch a folder: an html document renamed in is pushed; one written in place in pieces only once whole', async (t) => {
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  // Pieces 20 ms apart, well within the settle time even on a busy machine.
  const { server, url } = await startServer({ streams: { default: { type: 'watch', path: dir, settleMs: 500 } } });
  t.after(() => server.close());
  const doc = (n: number): string => `<!doctype html><p>board ${n}</p>${'<br>'.repeat(500)}</html>\n`;
  await writeFile(join(dir, '.incoming'), doc(1));
  await rename(join(dir, '.incoming'), join(dir, 'board.html'));
  assert.ok(await eventually(() => server.live().counters.partsIn === 1, 3000));
  const viewer = await openStream(new URL('stream', url));
  t.after(() => viewer.close());
  await viewer.reader.waitFor(1, 3000);
  const handle = await (await import('node:fs/promises')).open(join(dir, 'next.html'), 'w');
  const second = doc(2);
  for (const piece of [second.slice(0, 500), second.slice(500, 1500), second.slice(1500)]) {
    await handle.write(piece);
    await sleep(20);
  }
  await handle.close();
  await viewer.reader.waitFor(2, 3000);
  await sleep(200);
  assert.deepEqual(viewer.reader.parts.map((part) => part.body.toString()), [doc(1), second]);
});

test('a watched file whose name does not tell its type (issue 11): serve --watch exits 2 with SP_ERR_UNKNOWN_TYPE, and never reads it', async (t) => {
  const dir = await makeFolder({ 'cam.raw': Buffer.from([0xff, 0xd8, 0xff, 0xd9]) });
  t.after(() => removeFolder(dir));
  for (const path of [join(dir, 'cam.raw'), '/etc/shadow', join(dir, 'not-yet.raw')]) {
    const result = await runCli(['serve', '--watch', path, '--port', '0'], { timeoutMs: 10_000 });
    assert.equal(result.code, 2, `${path}: ${result.stderr}`);
    assert.doesNotMatch(result.stderr, /TypeError|serving at/);
    assert.match(result.stderr, path.endsWith('not-yet.raw') ? /not found.*SP_ERR_DIR_NOT_FOUND/ : /cannot tell the type of .* from its name.*\(SP_ERR_UNKNOWN_TYPE\)/);
  }
  await assert.rejects(WatchSource.create(join(dir, 'cam.raw')), { code: 'SP_ERR_UNKNOWN_TYPE' });
});

test('--watch a FIFO exits 2 with SP_ERR_NOT_A_FILE; a folder entry that is a FIFO or a folder is skipped and the stream goes on', async (t) => {
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  mkfifo(join(dir, 'pipe.jpg'));
  const result = await runCli(['serve', '--watch', join(dir, 'pipe.jpg'), '--port', '0']);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /SP_ERR_NOT_A_FILE/);
  const { server, url } = await startServer({ streams: { default: { type: 'watch', path: dir } } });
  t.after(() => server.close());
  const { mkdir } = await import('node:fs/promises');
  await mkdir(join(dir, 'folder.jpg'));
  mkfifo(join(dir, 'other.jpg'));
  await writeFile(join(dir, 'real.jpg'), version(7));
  assert.ok(await eventually(() => server.live().counters.partsIn === 1, 3000));
  assert.equal((await fetchText(new URL('status', url))).status, 200);
});

test('--watch a folder that is then removed: the process stays up and the source says it is down', async (t) => {
  const dir = await makeFolder({ 'a.jpg': version(1) });
  const server = await startCli(['--watch', dir, '--port', '0']);
  t.after(() => server.stop());
  assert.ok(await eventually(async () => (await fetchText(new URL('snapshot', server.url))).status === 200, 5000));
  await removeFolder(dir);
  assert.ok(await eventually(async () => JSON.parse((await fetchText(new URL('status', server.url))).body).streams.default.source === 'down', 3000), server.stderr());
  assert.equal(server.child.exitCode, null, 'still running');
});
