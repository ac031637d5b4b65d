/**
 * Reload without drops (issue 13): `kill -HUP` to a real `serverpush serve --config` child adds,
 * removes and changes streams while a viewer of an unchanged stream gets every frame with no gap;
 * a broken config is refused (SP_ERR_CONFIG, logged) and the running one kept; `--watch-config`
 * reloads on a change of the file; `server.applyStreams()` replaces a stream whose own options
 * changed, ending its viewers cleanly.
 */
import { needs } from './helpers/tools.ts';
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startCli } from './helpers/cli.ts';
import { makeJpegFrames } from './helpers/frames.ts';
import { readSeq } from './helpers/camera-writer.ts';
import { openStream, fetchText, eventually, sleep, makeFolder, removeFolder, startServer, EXAMPLES, type OpenStream } from './helpers/server.ts';
import { metricValue, parseMetrics } from './helpers/metrics.ts';

const CAMERA = new URL('./helpers/numbered-jpegs.mjs', import.meta.url).pathname;
let dir: string;
before(async () => {
  dir = await makeFolder({ 'frame.jpg': (await makeJpegFrames(1))[0]! });
});

/** An exec stream of numbered frames, `fps` a second, numbered from `first`. */
function camera(fps: number, first = 1) {
  return { type: 'exec', command: `exec ${process.execPath} ${CAMERA} ${join(dir, 'frame.jpg')} ${fps} ${first}`, format: 'mjpeg', restartDelay: 0.2 };
}

/** The sequence numbers a viewer got. */
function seqs(stream: OpenStream): number[] {
  return stream.reader.parts.map((part) => readSeq(part.body)!);
}

/** Runs of missing numbers in `numbers` (ascending by one expected). */
function gaps(numbers: number[]): string[] {
  const found: string[] = [];
  for (let i = 1; i < numbers.length; i++) if (numbers[i] !== numbers[i - 1]! + 1) found.push(`${numbers[i - 1]} → ${numbers[i]}`);
  return found;
}

test('SIGHUP adds, removes and changes streams while a viewer of an unchanged stream gets every frame with no gap; a broken config keeps the running one', needs('ffmpeg'), async (t) => {
  const config = join(dir, 'serverpush.json');
  await writeFile(config, JSON.stringify({ streams: {
    keep: camera(10),
    change: camera(10),
    gone: { type: 'slideshow', dir: EXAMPLES, interval: 0.1, loop: true },
  } }));
  const server = await startCli(['--config', config, '--port', '0']);
  t.after(() => server.stop());
  const base = server.url;
  for (const name of ['keep', 'change']) await eventually(async () => (await fetchText(new URL(`snapshot/${name}`, base))).status === 200, 5000, `camera ${name} up`);
  const keep = await openStream(new URL('stream/keep', base));
  const change = await openStream(new URL('stream/change', base));
  const gone = await openStream(new URL('stream/gone', base));
  await keep.reader.waitFor(5, 5000);
  await change.reader.waitFor(2, 5000);
  await gone.reader.waitFor(1, 5000);

  // The change: `change` gets another command (numbers from 1000), `gone` goes, `added` comes.
  await writeFile(config, JSON.stringify({ streams: {
    keep: camera(10),
    change: camera(10, 1000),
    added: { type: 'slideshow', dir: EXAMPLES, interval: 0.1, loop: true },
  } }));
  const reloadedAt = keep.reader.parts.length;
  server.child.kill('SIGHUP');
  await eventually(() => /SIGHUP: reloaded/.test(server.stderr()), 5000, 'the reload line');
  assert.match(server.stderr(), /added added, removed gone, source restarted change, replaced none, unchanged keep/);
  // The removed stream's viewer got its closing delimiter (the strict reader refuses anything less).
  await gone.ended;
  // The changed stream's viewer stays, and gets the new command's frames.
  await eventually(() => seqs(change).some((seq) => seq >= 1000), 5000, 'frames of the new command');
  assert.equal(change.response.destroyed, false, 'the changed stream\'s viewer was not cut');
  const added = await openStream(new URL('stream/added', base));
  await added.reader.waitFor(1, 5000);
  added.close();

  // A broken config: refused, logged, the running config kept.
  await writeFile(config, '{ "streams": { "keep": ');
  server.child.kill('SIGHUP');
  await eventually(() => /SIGHUP: refused .*serverpush\.json, the running config is kept: .*not valid JSON.*\(SP_ERR_CONFIG\)/.test(server.stderr()), 5000, 'the refusal');
  // One that parses but cannot be built (a folder that is not there): refused whole, nothing added.
  await writeFile(config, JSON.stringify({ streams: { keep: camera(10), change: camera(10, 1000), added: { type: 'slideshow', dir: EXAMPLES }, extra: { type: 'push' }, bad: { type: 'slideshow', dir: join(dir, 'missing') } } }));
  server.child.kill('SIGHUP');
  await eventually(() => /SIGHUP: refused .*(SP_ERR_DIR_NOT_FOUND)/.test(server.stderr()), 5000, 'the second refusal');
  assert.match(server.stderr(), /error SP_ERR_CONFIG SIGHUP: refused/);
  assert.equal((await fetchText(new URL('stream/extra', base))).status, 404, 'nothing of the refused config was applied');
  assert.equal((await fetchText(new URL('stream/gone', base))).status, 404);
  const status = JSON.parse((await fetchText(new URL('status', base))).body);
  assert.deepEqual(Object.keys(status.streams).sort(), ['added', 'change', 'keep']);

  await sleep(1000);
  const numbers = seqs(keep);
  assert.ok(numbers.length > reloadedAt + 10, `the keep viewer went on getting frames (${numbers.length}, ${reloadedAt} at the reload)`);
  assert.deepEqual(gaps(numbers), [], `no frame missed (superseded by the pipe: ${status.streams.keep.framesSuperseded}, skipped: ${status.streams.keep.partsSkippedBusy})`);
  assert.equal(keep.response.destroyed, false, 'the keep viewer was never cut');
  const metrics = parseMetrics((await fetchText(new URL('metrics', base))).body);
  assert.equal(metricValue(metrics, 'serverpush_source_restarts_total', { stream: 'change' }), 1);
  assert.equal(metricValue(metrics, 'serverpush_source_restarts_total', { stream: 'keep' }), 0);
  assert.equal(metricValue(metrics, 'serverpush_viewers_dropped_total', { stream: 'gone', reason: 'shutdown' }), 1);
  keep.close();
  change.close();
  assert.equal(await server.stop(), 0);
});

test('--watch-config reloads when the file changes', async (t) => {
  const folder = await makeFolder();
  t.after(() => removeFolder(folder));
  const config = join(folder, 'serverpush.json');
  await writeFile(config, JSON.stringify({ streams: { default: { type: 'slideshow', dir: EXAMPLES } } }));
  const server = await startCli(['--config', config, '--port', '0', '--watch-config']);
  t.after(() => server.stop());
  assert.equal((await fetchText(new URL('stream/more', server.url))).status, 404);
  await writeFile(config, JSON.stringify({ streams: { default: { type: 'slideshow', dir: EXAMPLES }, more: { type: 'slideshow', dir: EXAMPLES, loop: true } } }));
  await eventually(() => /config file changed: reloaded .*added more/.test(server.stderr()), 5000, 'the reload');
  const more = await openStream(new URL('stream/more', server.url));
  await more.reader.waitFor(1, 5000);
  more.close();
});

test('applyStreams: a stream whose own options changed is made anew (its viewers end cleanly); an unchanged one is not touched', needs('ffmpeg'), async (t) => {
  const [frame] = await makeJpegFrames(1);
  const { server, url } = await startServer({ streams: { a: { type: 'push' }, b: { type: 'push' } } });
  t.after(() => server.close());
  const a = server.live('a');
  a.push({ contentType: 'image/jpeg', body: frame! });
  server.live('b').push({ contentType: 'image/jpeg', body: frame! });
  const viewerA = await openStream(new URL('stream/a', url));
  const viewerB = await openStream(new URL('stream/b', url));
  await viewerA.reader.waitFor(1);
  const changes = await server.applyStreams({ a: { type: 'push', stallTimeoutMs: 5000 }, b: { type: 'push' } });
  assert.deepEqual(changes, { added: [], removed: [], restarted: [], replaced: ['a'], unchanged: ['b'] });
  await viewerA.ended; // cleanly: the closing delimiter
  assert.notEqual(server.live('a'), a, 'a new live stream');
  assert.equal(server.live('a').stallTimeoutMs, 5000);
  server.live('b').push({ contentType: 'image/jpeg', body: frame! });
  await viewerB.reader.waitFor(2);
  assert.equal(viewerB.response.destroyed, false);
  // Nothing to serve is refused, and changes nothing.
  await assert.rejects(server.applyStreams({}), /no stream to serve/);
  assert.deepEqual(server.streamNames.sort(), ['a', 'b']);
  viewerB.close();
});
