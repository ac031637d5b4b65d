import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { compareFileNames } from '../src/sources/folder-catalog.ts';
import { EXAMPLES, makeFolder, removeFolder, startServer, openStream, fetchText, eventually, sleep } from './helpers/server.ts';

async function exampleFiles() {
  const names = (await readdir(EXAMPLES)).sort(compareFileNames);
  return Promise.all(names.map(async (name) => ({ name, body: await readFile(join(EXAMPLES, name)) })));
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8', txt: 'text/plain; charset=utf-8', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', png: 'image/png',
};

test('GET /stream sends every document of the folder in file-name order, each with its type and exact bytes, then the closing delimiter', async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 40 });
  t.after(() => server.close());
  const stream = await openStream(new URL('stream', url));
  assert.equal(stream.response.statusCode, 200);
  assert.equal(stream.response.headers['cache-control'], 'no-cache, no-store, must-revalidate');
  assert.equal(stream.response.headers['pragma'], 'no-cache');
  assert.equal(stream.response.headers['expires'], '0');
  assert.equal(stream.response.headers['x-accel-buffering'], 'no');
  assert.equal(stream.response.headers['content-encoding'], undefined);
  await stream.ended;
  const files = await exampleFiles();
  assert.equal(files.length, 10);
  assert.deepEqual(stream.reader.parts.map((p) => p.headers['content-type']), files.map((f) => TYPES[f.name.split('.').pop()!]));
  stream.reader.parts.forEach((part, i) => {
    assert.ok(part.body.equals(files[i]!.body), `part ${i} is ${files[i]!.name}`);
    assert.match(part.headers['x-timestamp']!, /^\d{10}\.\d{6}$/);
  });
});

test('the first part comes at once and the next every interval, never early', async (t) => {
  const dir = await makeFolder({ 'a.txt': 'one', 'b.txt': 'two', 'c.txt': 'three', 'd.txt': 'four' });
  t.after(() => removeFolder(dir));
  const { server, url } = await startServer({ dir, intervalMs: 300 });
  t.after(() => server.close());
  const stream = await openStream(new URL('stream', url));
  await stream.ended;
  const times = stream.reader.parts.map((p) => p.receivedAt);
  assert.equal(times.length, 4);
  assert.ok(times[0]! - stream.connectedAt < 150, `first part after ${times[0]! - stream.connectedAt} ms`);
  for (let i = 1; i < times.length; i++) {
    const gap = times[i]! - times[i - 1]!;
    assert.ok(gap >= 280 && gap < 700, `gap ${i} was ${gap} ms for a 300 ms interval`);
  }
});

test('each part ends with the delimiter and the next part headers in the same write (eager framing)', async (t) => {
  const dir = await makeFolder({ '1.txt': 'a', '2.txt': 'b', '3.txt': 'c' });
  t.after(() => removeFolder(dir));
  const { server, url } = await startServer({ dir, intervalMs: 400 });
  t.after(() => server.close());
  const stream = await openStream(new URL('stream', url));
  await stream.reader.waitFor(1);
  // Part 1 is complete although part 2 is not due for another 400 ms, and part 2's headers came with it.
  assert.equal(stream.reader.parts.length, 1);
  const announced = stream.reader.pendingHeadersAt;
  assert.ok(announced !== undefined && announced - stream.reader.parts[0]!.receivedAt < 20, 'next headers sent with the part');
  await stream.ended;
  const parts = stream.reader.parts;
  assert.deepEqual(parts.map((p) => p.body.toString()), ['a', 'b', 'c']);
  for (let i = 1; i < parts.length; i++) {
    assert.ok(parts[i]!.headersAt - parts[i - 1]!.receivedAt < 20, `headers of part ${i} came with the end of part ${i - 1}`);
    assert.ok(parts[i]!.receivedAt - parts[i]!.headersAt > 300, `body of part ${i} came when due`);
  }
  // The announced X-Timestamp of a part is when its body is due.
  for (const part of stream.reader.parts) {
    const stamped = Number(part.headers['x-timestamp']) * 1000;
    assert.ok(Math.abs(part.receivedAt - stamped) < 150, `stamped ${stamped}, received ${part.receivedAt}`);
  }
});

test('--loop starts again at the first document after the last', async (t) => {
  const dir = await makeFolder({ 'a.txt': 'A', 'b.txt': 'B' });
  t.after(() => removeFolder(dir));
  const { server, url } = await startServer({ dir, intervalMs: 30, loop: true });
  t.after(() => server.close());
  const stream = await openStream(new URL('stream', url));
  const parts = await stream.reader.waitFor(5);
  assert.deepEqual(parts.map((p) => p.body.toString()), ['A', 'B', 'A', 'B', 'A']);
  stream.close();
});

test('files added or removed while a client watches are seen; a changed file is sent anew', async (t) => {
  const dir = await makeFolder({ '1.txt': 'one', '5.txt': 'five', '9.txt': 'nine' });
  t.after(() => removeFolder(dir));
  const { server, url } = await startServer({ dir, intervalMs: 250 });
  t.after(() => server.close());
  const stream = await openStream(new URL('stream', url));
  await stream.reader.waitFor(1);
  // 5.txt is already announced; 9.txt is not: remove it, add 7.txt and 8.txt, change 8 later.
  await unlink(join(dir, '9.txt'));
  await writeFile(join(dir, '7.txt'), 'seven');
  await writeFile(join(dir, '8.txt'), 'eight');
  await stream.reader.waitFor(2);
  await writeFile(join(dir, '8.txt'), 'EIGHT, edited');
  await stream.ended;
  assert.deepEqual(stream.reader.parts.map((p) => p.body.toString()), ['one', 'five', 'seven', 'EIGHT, edited']);
});

test('natural file-name order: 2 before 10', async (t) => {
  const dir = await makeFolder({ 'img10.txt': '10', 'img2.txt': '2', 'img1.txt': '1' });
  t.after(() => removeFolder(dir));
  const { server, url } = await startServer({ dir, intervalMs: 10 });
  t.after(() => server.close());
  const stream = await openStream(new URL('stream', url));
  await stream.ended;
  assert.deepEqual(stream.reader.parts.map((p) => p.body.toString()), ['1', '2', '10']);
});

test('many clients share one read of each file (cached, revalidated)', async (t) => {
  const dir = await makeFolder({ 'a.txt': 'A'.repeat(1000), 'b.txt': 'B'.repeat(1000), 'c.txt': 'C'.repeat(1000) });
  t.after(() => removeFolder(dir));
  const { server, url } = await startServer({ dir, intervalMs: 100 });
  t.after(() => server.close());
  const streams = await Promise.all(Array.from({ length: 200 }, () => openStream(new URL('stream', url))));
  await Promise.all(streams.map((s) => s.ended));
  for (const s of streams) assert.equal(s.reader.parts.length, 3);
  const status = JSON.parse((await fetchText(new URL('status', url))).body);
  assert.equal(status.partsSent, 600);
  assert.equal(status.streams.default.folder.fileReads, 3, 'each file read once for 200 clients');
  assert.ok(status.streams.default.folder.listings < 60, `${status.streams.default.folder.listings} listings for 600 parts`);
});

test('a client that goes away releases its timer and listeners at once; /status shows it', async (t) => {
  const dir = await makeFolder({ 'a.txt': 'A', 'b.txt': 'B' });
  t.after(() => removeFolder(dir));
  const { server, url } = await startServer({ dir, intervalMs: 60_000, loop: true });
  t.after(() => server.close());
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  const streams = await Promise.all(Array.from({ length: 20 }, () => openStream(new URL('stream', url))));
  await Promise.all(streams.map((s) => s.reader.waitFor(1)));
  let status = JSON.parse((await fetchText(new URL('status', url))).body);
  assert.equal(status.clients, 20);
  assert.ok(timers() >= before + 20, 'each client waits on its own timer');
  for (const s of streams) s.close();
  assert.ok(await eventually(async () => JSON.parse((await fetchText(new URL('status', url))).body).clients === 0, 1000), 'clients back to 0 within a second');
  assert.ok(await eventually(() => timers() <= before, 1000), `timers released: ${timers()} > ${before}`);
  status = JSON.parse((await fetchText(new URL('status', url))).body);
  assert.equal(status.clientsTotal, 20);
  assert.equal(server.listenerCount('part'), 0);
});

test('GET /status answers JSON counters', async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 5 });
  t.after(() => server.close());
  const stream = await openStream(new URL('stream', url));
  await stream.ended;
  const { status, headers, body } = await fetchText(new URL('status', url));
  assert.equal(status, 200);
  assert.match(headers.get('content-type')!, /^application\/json/);
  const json = JSON.parse(body);
  assert.equal(json.clients, 0);
  assert.equal(json.partsSent, 10);
  const files = await exampleFiles();
  const bodies = files.reduce((n, f) => n + f.body.length, 0);
  assert.ok(json.bytesSent > bodies && json.bytesSent < bodies + 2000, `bytesSent ${json.bytesSent}`);
  assert.equal(typeof json.uptimeSeconds, 'number');
});

test('server.close() ends each open stream with its closing delimiter', async (t) => {
  const dir = await makeFolder({ 'a.txt': 'A', 'b.txt': 'B' });
  t.after(() => removeFolder(dir));
  const { server, url } = await startServer({ dir, intervalMs: 60_000, loop: true });
  const stream = await openStream(new URL('stream', url));
  await stream.reader.waitFor(1);
  await server.close();
  await stream.ended; // the strict reader throws unless the stream closed cleanly
  assert.deepEqual(stream.reader.parts.map((p) => p.body.toString()), ['A', 'B']);
});

test('?only=image narrows the stream to image documents', async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 5 });
  t.after(() => server.close());
  const stream = await openStream(new URL('stream?only=image', url));
  await stream.ended;
  assert.deepEqual(stream.reader.parts.map((p) => p.headers['content-type']), ['image/jpeg', 'image/gif', 'image/png', 'image/jpeg', 'image/gif', 'image/png']);
});

test('a folder with nothing to serve answers 503 with a code, and the stream starts once a document arrives', async (t) => {
  const dir = await makeFolder({ 'notes.md': 'not a document', '.hidden.txt': 'hidden' });
  t.after(() => removeFolder(dir));
  const { server, url } = await startServer({ dir, intervalMs: 50 });
  t.after(() => server.close());
  const response = await fetchText(new URL('stream', url));
  assert.equal(response.status, 503);
  assert.equal(JSON.parse(response.body).error, 'SP_ERR_NO_DOCUMENTS');
  await writeFile(join(dir, 'now.txt'), 'here');
  // The folder is read again after its cache time: wait until the snapshot has the new document.
  await eventually(async () => (await fetchText(new URL('snapshot', url))).status === 200, 3000, 'the new document in the snapshot');
  const stream = await openStream(new URL('stream', url));
  await stream.ended;
  assert.deepEqual(stream.reader.parts.map((p) => p.body.toString()), ['here']);
});

test('a looping show whose folder empties keeps its clients and goes on when documents return', async (t) => {
  const dir = await makeFolder({ 'a.txt': 'A' });
  t.after(() => removeFolder(dir));
  const { server, url } = await startServer({ dir, intervalMs: 80, loop: true });
  t.after(() => server.close());
  const stream = await openStream(new URL('stream', url));
  await stream.reader.waitFor(2);
  await unlink(join(dir, 'a.txt'));
  await sleep(400);
  const during = stream.reader.parts.length;
  await writeFile(join(dir, 'b.txt'), 'B');
  const parts = await stream.reader.waitFor(during + 2);
  assert.ok(during <= 4, `${during} parts before the folder emptied`);
  assert.deepEqual(parts.slice(during).map((p) => p.body.toString()), ['B', 'B']);
  stream.close();
});

test('GET / is a page whose <img> shows the image documents of the stream', async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 1000 });
  t.after(() => server.close());
  const { status, headers, body } = await fetchText(url);
  assert.equal(status, 200);
  assert.match(headers.get('content-type')!, /^text\/html/);
  assert.match(body, /<img id="stream" src="stream\?only=image"/);
  assert.match(body, /<title>slideshow — serverpush<\/title>/);
  assert.match(body, /also carries html, text or json documents/);
  const head = await fetch(url, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
});

test('a client that takes no data is dropped after the stall timeout; the others go on', async (t) => {
  const big = Buffer.alloc(4 * 1024 * 1024, 'x');
  const dir = await makeFolder({ 'a.txt': big, 'b.txt': big });
  t.after(() => removeFolder(dir));
  // The healthy reader shares this process's event loop with the server: on a busy 2-core machine
  // it may take a 4 MiB part in more than 400 ms (it was then dropped too); 2 s is far beyond that.
  const { server, url, logger } = await startServer({ dir, intervalMs: 20, loop: true, stallTimeoutMs: 2000 });
  t.after(() => server.close());
  const { connect } = await import('node:net');
  const stuck = connect(Number(url.port), url.hostname);
  stuck.on('error', () => {});
  stuck.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
  stuck.pause();
  const reader = await openStream(new URL('stream', url));
  await reader.reader.waitFor(20, 20_000);
  assert.ok(await eventually(() => server.status.droppedClients === 1, 5000), `stuck client dropped: ${JSON.stringify(server.status.toJSON())} ${logger.lines.join('; ')}`);
  assert.match(logger.lines.join('\n'), /warn SP_ERR_SLOW_CLIENT stream default: dropped a viewer \(127\.0\.0\.1\) that took no data for 2000 ms/);
  assert.ok(reader.reader.parts.every((p) => p.body.length === big.length));
  assert.equal(server.status.clients, 1);
  reader.close();
  stuck.destroy();
});
