/**
 * Issue 11, defect 9: `/status` tells the truth. `server.status` has the keys the README names and
 * is the `/status` document; every time in it is in seconds, as `X-Timestamp`; a live viewer
 * dropped for stalling counts in `droppedClients`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { startServer, openStream, fetchText, eventually, sleep, EXAMPLES } from './helpers/server.ts';
import { FRAMES } from './helpers/camera.ts';

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

test('server.status has every key the README names for /status, and is the /status document', async (t) => {
  const { server, url } = await startServer({ streams: { default: { type: 'slideshow', dir: EXAMPLES, intervalMs: 50 }, cam: { type: 'push' } } });
  t.after(() => server.close());
  server.live('cam').push({ contentType: 'image/jpeg', body: FRAMES[0]! });
  const row = /^\| `GET \/status` \| JSON: (.*) \|$/m.exec(README);
  assert.ok(row, 'the README row of /status');
  const named = [...row[1]!.split(', and `streams.NAME`')[0]!.matchAll(/`(\w+)`/g)].map((m) => m[1]!);
  assert.deepEqual(named, ['clients', 'clientsTotal', 'partsSent', 'bytesSent', 'droppedClients', 'uptimeSeconds']);
  for (const key of [...named, 'streams']) assert.ok(key in server.status, `server.status.${key}`);
  assert.deepEqual(Object.keys(server.status.streams), ['default', 'cam']);
  const document = JSON.parse((await fetchText(new URL('status', url))).body);
  assert.deepEqual(Object.keys(document), [...named, 'streams']);
  const local = JSON.parse(JSON.stringify(server.status));
  delete local.uptimeSeconds;
  delete document.uptimeSeconds;
  delete local.streams.cam.latest.ageSeconds;
  delete document.streams.cam.latest.ageSeconds;
  assert.deepEqual(local, document, 'JSON.stringify(server.status) is what /status answers');
});

test('times in /status are seconds: latest.timestamp is the part\'s X-Timestamp, ageSeconds its age, uptimeSeconds the uptime', async (t) => {
  const { server, url } = await startServer({ streams: { default: { type: 'push' } } });
  t.after(() => server.close());
  server.live().push({ contentType: 'image/jpeg', body: FRAMES[0]!, timestamp: Date.now() - 1500.25 });
  const snapshot = await fetch(new URL('snapshot', url));
  await snapshot.arrayBuffer();
  const status = JSON.parse((await fetchText(new URL('status', url))).body);
  const latest = status.streams.default.latest;
  assert.equal(latest.timestamp, Number(snapshot.headers.get('x-timestamp')), 'the same number as X-Timestamp');
  assert.ok(Math.abs(latest.timestamp - Date.now() / 1000) < 60, `${latest.timestamp} is Unix seconds`);
  assert.ok(latest.ageSeconds >= 1.5 && latest.ageSeconds < 10, `ageSeconds ${latest.ageSeconds}`);
  assert.ok(status.uptimeSeconds >= 0 && status.uptimeSeconds < 60, `uptimeSeconds ${status.uptimeSeconds}`);
  await sleep(300);
  assert.ok(JSON.parse((await fetchText(new URL('status', url))).body).uptimeSeconds >= 0.3);
});

test('a live viewer dropped for stalling counts in droppedClients, beside the stream\'s viewersDropped; clients drops at once', async (t) => {
  const { server, url } = await startServer({ streams: { default: { type: 'push', stallTimeoutMs: 500 } } });
  t.after(() => server.close());
  // Large parts (not images, so any bytes do) fill the stuck viewer's socket buffers quickly.
  const part = (i: number) => ({ contentType: 'application/octet-stream', body: Buffer.alloc(1024 * 1024, i % 251) });
  server.live().push(part(0));
  const stuck = connect(Number(url.port), url.hostname);
  stuck.on('error', () => {});
  stuck.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
  stuck.pause();
  await eventually(() => server.live().viewers === 1, 2000, 'the stuck viewer subscribed');
  const reader = await openStream(new URL('stream', url));
  t.after(() => reader.close());
  assert.equal(server.status.clients, 2);
  let i = 1;
  const started = Date.now();
  while (server.live().counters.viewersDropped === 0 && Date.now() - started < 15_000) {
    server.live().push(part(i++));
    await sleep(20);
  }
  const status = JSON.parse((await fetchText(new URL('status', url))).body);
  assert.equal(status.streams.default.viewersDropped, 1);
  assert.equal(status.droppedClients, 1, 'the top-level count includes live viewers');
  assert.equal(status.clients, 1, 'the dropped viewer no longer counts as connected');
  stuck.destroy();
});
