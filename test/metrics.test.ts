/**
 * `GET /metrics` (issue 13): promtool accepts it, its values are right after a known scenario,
 * two servers in one process keep their own, `/healthz` and `/readyz` answer as documented, and
 * docs/operations.md names exactly the metrics the server exports.
 */
import { needs } from './helpers/tools.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { makeJpegFrames } from './helpers/frames.ts';
import { startServer, openStream, fetchText, eventually, sleep, makeFolder, removeFolder } from './helpers/server.ts';
import { metricFamilies, metricValue, parseMetrics, promtoolCheck } from './helpers/metrics.ts';

const OPERATIONS = new URL('../docs/operations.md', import.meta.url);

async function scrape(url: URL): Promise<{ text: string; samples: ReturnType<typeof parseMetrics> }> {
  const response = await fetchText(new URL('metrics', url));
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return { text: response.body, samples: parseMetrics(response.body) };
}

test('/metrics after 3 viewers, K frames, one stalled viewer and one ?fps cap: promtool accepts it and every value is right', needs('ffmpeg', 'promtool'), async (t) => {
  const big = (await makeJpegFrames(4, '1280x720')).map((body) => ({ contentType: 'image/jpeg', body }));
  const { server, url } = await startServer({ streams: { cam: { type: 'push', stallTimeoutMs: 1500 }, other: { type: 'push' } } });
  t.after(() => server.close());
  const cam = server.live('cam');
  // A viewer of a stream with no frame yet is refused, and counted by its code.
  assert.equal((await fetchText(new URL('stream/other', url))).status, 503);
  cam.push(big[0]!);
  const readers = await Promise.all([0, 1, 2].map(() => openStream(new URL('stream/cam', url))));
  const capped = await openStream(new URL('stream/cam?fps=2', url));
  const stuck = connect(Number(url.port), url.hostname);
  stuck.on('error', () => {});
  stuck.write('GET /stream/cam HTTP/1.1\r\nHost: x\r\n\r\n');
  stuck.pause();
  await eventually(() => cam.viewers === 5, 2000, 'five viewers');
  // Frames until the stuck viewer's buffers are full and its stall timeout has passed.
  const started = Date.now();
  while (cam.counters.viewersDropped === 0 && Date.now() - started < 20_000) {
    cam.push(big[cam.counters.partsIn % 4]!);
    await sleep(10);
  }
  assert.equal(cam.counters.viewersDropped, 1, 'the stuck viewer was dropped');
  for (let i = 0; i < 5; i++) cam.push(big[i % 4]!);
  const frames = cam.counters.partsIn;
  await eventually(() => readers.every((reader) => reader.reader.parts.length + cam.subscriberHooks.partsSkippedBusy >= frames), 5000, 'the readers took every frame');
  await sleep(600); // the capped viewer's last frame is due within 1/2 s
  const { text, samples } = await scrape(url);
  const check = promtoolCheck(text);
  assert.equal(check.status, 0, `promtool check metrics: ${check.output}`);
  const value = (name: string, labels: Record<string, string> = {}) => metricValue(samples, name, labels);

  assert.equal(value('serverpush_frames_in_total', { stream: 'cam' }), frames);
  assert.equal(value('serverpush_frames_in_total', { stream: 'other' }), 0);
  assert.equal(value('serverpush_viewers_total', { stream: 'cam' }), 5);
  assert.equal(value('serverpush_viewers', { stream: 'cam' }), 4);
  assert.equal(value('serverpush_viewers', { stream: 'other' }), 0);
  assert.equal(value('serverpush_viewers_dropped_total', { stream: 'cam', reason: 'stalled' }), 1);
  assert.equal(value('serverpush_viewers_dropped_total', { stream: 'cam', reason: 'limit' }), 0);
  assert.equal(value('serverpush_viewers_dropped_total', { stream: 'cam', reason: 'shutdown' }), 0);
  assert.equal(value('serverpush_viewers_refused_total', { stream: 'other', code: 'SP_ERR_NO_FRAME' }), 1);
  // Every part written is counted once, on its stream, as /status counts them for the server.
  const status = server.status;
  assert.equal(value('serverpush_frames_out_total', { stream: 'cam' }), status.partsSent);
  assert.equal(value('serverpush_bytes_out_total', { stream: 'cam' }), status.bytesSent);
  assert.equal(value('serverpush_frame_age_seconds_count', { stream: 'cam' }), status.partsSent, 'each write has its frame age');
  const received = readers.reduce((sum, reader) => sum + reader.reader.parts.length, capped.reader.parts.length);
  assert.ok(value('serverpush_frames_out_total', { stream: 'cam' }) > received, 'the stuck viewer got some parts too');
  // The capped viewer got about 2 a second; every other frame it saw was skipped for its cap.
  const fpsSkipped = value('serverpush_frames_skipped_total', { stream: 'cam', reason: 'fps' });
  assert.ok(capped.reader.parts.length >= 2 && capped.reader.parts.length < frames / 4, `capped viewer got ${capped.reader.parts.length} of ${frames}`);
  assert.ok(fpsSkipped >= frames - capped.reader.parts.length - 2 && fpsSkipped <= frames - capped.reader.parts.length, `fps skips ${fpsSkipped}, frames ${frames}, capped got ${capped.reader.parts.length}`);
  assert.equal(value('serverpush_frames_skipped_total', { stream: 'cam', reason: 'busy' }), cam.subscriberHooks.partsSkippedBusy);
  assert.ok(value('serverpush_frames_skipped_total', { stream: 'cam', reason: 'busy' }) > 0, 'the stuck viewer skipped frames while it was busy');
  assert.equal(value('serverpush_frames_skipped_total', { stream: 'cam', reason: 'duplicate' }), 0);
  assert.equal(value('serverpush_first_frame_seconds_count', { stream: 'cam' }), 5);
  assert.ok(value('serverpush_first_frame_seconds_sum', { stream: 'cam' }) < 5, 'a new viewer gets the latest frame at once');
  assert.equal(value('serverpush_frame_age_seconds_bucket', { stream: 'cam', le: '+Inf' }), status.partsSent);
  assert.equal(value('serverpush_source_state', { stream: 'cam', state: 'up' }), 1);
  assert.equal(value('serverpush_source_state', { stream: 'other', state: 'starting' }), 1);
  assert.equal(value('serverpush_http_requests_total', { route: 'stream', status: '503' }), 1);
  // Process metrics are there (prom-client's defaults), and no label is per viewer.
  assert.ok(samples.some((sample) => sample.name === 'process_cpu_user_seconds_total'));
  assert.ok(samples.filter((sample) => sample.name.startsWith('serverpush_')).every((sample) => Object.keys(sample.labels).every((label) => ['stream', 'reason', 'state', 'code', 'route', 'status', 'le'].includes(label))));

  // The first scrape is counted in the second; a stream response when it ends.
  readers[0]!.close();
  await eventually(() => cam.viewers === 3);
  const again = await scrape(url);
  assert.equal(metricValue(again.samples, 'serverpush_http_requests_total', { route: 'metrics', status: '200' }), 1);
  assert.equal(metricValue(again.samples, 'serverpush_http_requests_total', { route: 'stream', status: '200' }), 2, 'the stalled viewer and the one that left');
  for (const reader of [...readers, capped]) reader.close();
  stuck.destroy();
});

test('two servers in one process keep their own metrics; auth failures are counted by reason', async (t) => {
  const one = await startServer({ streams: { a: { type: 'push' } } });
  const two = await startServer({ streams: { b: { type: 'push' } } });
  t.after(() => Promise.all([one.server.close(), two.server.close()]));
  one.server.metrics.authFailure('bad_credentials');
  one.server.metrics.authFailure('bad_credentials');
  const first = await scrape(one.url);
  const second = await scrape(two.url);
  assert.equal(metricValue(first.samples, 'serverpush_auth_failures_total', { reason: 'bad_credentials' }), 2);
  assert.equal(second.samples.filter((sample) => sample.name === 'serverpush_auth_failures_total').length, 0);
  assert.ok(first.samples.some((sample) => sample.labels['stream'] === 'a'));
  assert.ok(!first.samples.some((sample) => sample.labels['stream'] === 'b'));
  assert.ok(second.samples.some((sample) => sample.labels['stream'] === 'b'));
});

test('/healthz answers 200; /readyz is 503 naming a source with no frame after its start grace, 200 once every source is up', needs('ffmpeg'), async (t) => {
  const [frame] = await makeJpegFrames(1);
  const dir = await makeFolder({ 'frame.jpg': frame! });
  t.after(() => removeFolder(dir));
  const { server, url } = await startServer({
    sourceStartGraceMs: 800,
    streams: {
      pushed: { type: 'push' },
      // One frame, then nothing: up.
      good: { type: 'exec', command: `cat ${dir}/frame.jpg; sleep 60`, format: 'mjpeg' },
      // Nothing at all: ready within the grace only.
      silent: { type: 'exec', command: 'sleep 60', format: 'mjpeg' },
      // A camera that cannot be reached, with a password in its URL: down, and the password nowhere.
      door: { type: 'relay', url: 'http://admin:hunter2@127.0.0.1:9/video.mjpg', retryDelayMs: 100 },
    },
  });
  t.after(() => server.close());
  const health = await fetchText(new URL('healthz', url));
  assert.equal(health.status, 200);
  assert.deepEqual(JSON.parse(health.body), { status: 'ok' });
  const early = await fetchText(new URL('readyz', url));
  assert.equal(early.status, 200, `within the start grace: ${early.body}`);
  // Each source's grace counts from its own start (a command's spawn takes a few ms): wait for both.
  await eventually(async () => {
    const answer = await fetchText(new URL('readyz', url));
    return answer.status === 503 && answer.body.includes('"door"') && answer.body.includes('"silent"');
  }, 5000, '/readyz to turn 503 after the grace');
  const late = await fetchText(new URL('readyz', url));
  assert.equal(late.headers.get('retry-after'), '1');
  const body = JSON.parse(late.body) as { status: string; streams: Record<string, string> };
  assert.equal(body.status, 'not ready');
  assert.deepEqual(Object.keys(body.streams).sort(), ['door', 'silent'], late.body);
  assert.equal(body.streams['silent'], 'no frame yet');
  assert.match(body.streams['door']!, /^source down: .*admin:\*\*\*@127\.0\.0\.1:9/);
  // A viewer asking for it wakes the relay (it pulls on demand): it connects again.
  const refused = await fetchText(new URL('stream/door', url));
  assert.equal(refused.status, 503);
  const reconnects = async () => metricValue(parseMetrics((await fetchText(new URL('metrics', url))).body), 'serverpush_source_reconnects_total', { stream: 'door' });
  await eventually(async () => (await reconnects()) >= 1, 5000, 'the relay to connect again');
  const metrics = (await fetchText(new URL('metrics', url))).body;
  assert.equal(metricValue(parseMetrics(metrics), 'serverpush_source_state', { stream: 'door', state: 'down' }), 1);
  assert.doesNotMatch(`${late.body}${refused.body}${metrics}`, /hunter2/, 'no password in /readyz, a 503 or /metrics');
  // The silent and unreachable streams removed: every source is up.
  await server.applyStreams({ pushed: { type: 'push' }, good: { type: 'exec', command: `cat ${dir}/frame.jpg; sleep 60`, format: 'mjpeg' } });
  const ready = await fetchText(new URL('readyz', url));
  assert.equal(ready.status, 200, ready.body);
  assert.deepEqual(JSON.parse(ready.body), { status: 'ready' });
  await server.close();
  // A stopped server is not ready (it is not listening any more): nothing answers.
  await assert.rejects(fetchText(new URL('readyz', url)));
});

test('docs/operations.md names every metric /metrics exports, and no other', async (t) => {
  const { server, url } = await startServer({ streams: { cam: { type: 'push' } } });
  t.after(() => server.close());
  const { text } = await scrape(url);
  const exported = new Set(metricFamilies(text).filter((name) => name.startsWith('serverpush_')));
  const documented = new Set([...readFileSync(OPERATIONS, 'utf8').matchAll(/`(serverpush_[a-z0-9_]+?)(?:_bucket|_sum|_count)?`/g)].map((match) => match[1]!));
  assert.ok(exported.size >= 15, `exported: ${[...exported].join(', ')}`);
  assert.deepEqual([...documented].filter((name) => !exported.has(name)).sort(), [], 'documented but not exported');
  assert.deepEqual([...exported].filter((name) => !documented.has(name)).sort(), [], 'exported but not documented');
  // The Grafana dashboard queries only metrics that exist.
  const dashboard = readFileSync(new URL('../docs/grafana-dashboard.json', import.meta.url), 'utf8');
  JSON.parse(dashboard);
  for (const match of dashboard.matchAll(/(serverpush_[a-z0-9_]+?)(?:_bucket|_sum|_count)?\b/g)) assert.ok(exported.has(match[1]!), `dashboard uses ${match[0]}`);
  const all = new Set(metricFamilies(text));
  for (const match of `${dashboard}\n${readFileSync(OPERATIONS, 'utf8')}`.matchAll(/\b((?:process|nodejs)_[a-z0-9_]+)\b/g)) assert.ok(all.has(match[1]!), `${match[1]} is exported`);
});
