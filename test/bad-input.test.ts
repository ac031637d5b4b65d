import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile, unlink } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { FolderCatalog } from '../src/sources/folder-catalog.ts';
import { MultipartFraming } from '../src/protocol/encoder.ts';
import { makeFolder, removeFolder, startServer, openStream, fetchText, recordingLogger } from './helpers/server.ts';

/** A folder with good documents around one bad file; the stream must go on with the good ones. */
async function streamAround(t: { after(fn: () => unknown): void }, setup: (dir: string) => Promise<void>, options: { maxPartBytes?: number; boundary?: string } = {}) {
  const dir = await makeFolder({ '1-before.txt': 'before', '3-after.txt': 'after' });
  t.after(() => removeFolder(dir));
  await setup(dir);
  const { server, url, logger } = await startServer({ dir, intervalMs: 20, ...options });
  t.after(() => server.close());
  const stream = await openStream(new URL('stream', url));
  await stream.ended;
  return { bodies: stream.reader.parts.map((p) => p.body.toString()), warnings: logger.lines.filter((l) => l.startsWith('warn')) };
}

test('an empty file is skipped with a warning and the stream goes on', async (t) => {
  const { bodies, warnings } = await streamAround(t, (dir) => writeFile(join(dir, '2-empty.txt'), ''));
  assert.deepEqual(bodies, ['before', 'after']);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /SP_ERR_EMPTY_DOCUMENT .*2-empty\.txt is empty/);
});

test('a folder whose name looks like a document is skipped', async (t) => {
  const { bodies, warnings } = await streamAround(t, (dir) => mkdir(join(dir, '2-folder.jpg')));
  assert.deepEqual(bodies, ['before', 'after']);
  assert.match(warnings.join('\n'), /SP_ERR_NOT_A_FILE .*2-folder\.jpg is not a regular file/);
});

test('a symlink leading out of the folder is skipped; one inside it is served', async (t) => {
  const outside = await makeFolder({ 'secret.txt': 'SECRET' });
  t.after(() => removeFolder(outside));
  const { bodies, warnings } = await streamAround(t, async (dir) => {
    await symlink(join(outside, 'secret.txt'), join(dir, '2-escape.txt'));
    await symlink(join(dir, '1-before.txt'), join(dir, '4-inside.txt'));
    await symlink('../', join(dir, '5-parent.txt'));
  });
  assert.deepEqual(bodies, ['before', 'after', 'before']);
  assert.match(warnings.join('\n'), /SP_ERR_OUTSIDE_ROOT .*2-escape\.txt links outside the folder/);
  assert.match(warnings.join('\n'), /SP_ERR_OUTSIDE_ROOT .*5-parent\.txt/);
});

test('a file over --max-part-bytes is skipped with a warning', async (t) => {
  const { bodies, warnings } = await streamAround(t, (dir) => writeFile(join(dir, '2-big.txt', ), 'x'.repeat(1001)), { maxPartBytes: 1000 });
  assert.deepEqual(bodies, ['before', 'after']);
  assert.match(warnings.join('\n'), /SP_ERR_PART_TOO_LARGE .*2-big\.txt is 1001 bytes, over the 1000-byte part limit/);
});

test('a document containing the boundary delimiter is refused, never sent corrupt', async (t) => {
  const { bodies, warnings } = await streamAround(t, (dir) => writeFile(join(dir, '2-evil.html'), 'a\r\n--fixedboundary\r\nContent-Type: text/plain\r\n\r\nforged'), { boundary: 'fixedboundary' });
  assert.deepEqual(bodies, ['before', 'after']);
  assert.match(warnings.join('\n'), /SP_ERR_BOUNDARY_IN_BODY .*2-evil\.html contains the stream's boundary delimiter/);
});

test('a skipped file is warned about once per version, not once per client', async (t) => {
  const dir = await makeFolder({ '1.txt': 'one', '2.txt': '' });
  t.after(() => removeFolder(dir));
  const { server, url, logger } = await startServer({ dir, intervalMs: 10 });
  t.after(() => server.close());
  const streams = await Promise.all(Array.from({ length: 10 }, () => openStream(new URL('stream', url))));
  await Promise.all(streams.map((s) => s.ended));
  assert.equal(logger.lines.filter((l) => l.includes('SP_ERR_EMPTY_DOCUMENT')).length, 1);
});

test('a file that vanishes between listing and reading is skipped as vanished', async (t) => {
  const dir = await makeFolder({ 'a.txt': 'A', 'b.txt': 'B' });
  t.after(() => removeFolder(dir));
  const logger = recordingLogger();
  const catalog = await FolderCatalog.open(dir, { framing: new MultipartFraming('b'), logger, freshnessMs: 60_000 });
  assert.deepEqual(await catalog.list(), ['a.txt', 'b.txt']);
  await unlink(join(dir, 'a.txt'));
  assert.deepEqual(await catalog.load('a.txt'), { skip: 'SP_ERR_VANISHED' });
  assert.equal((await catalog.next(undefined, false))?.name, 'b.txt');
  assert.match(logger.lines.join('\n'), /SP_ERR_VANISHED .*a\.txt vanished/);
});

test('FolderCatalog.open refuses a missing folder and a file with coded errors', async (t) => {
  const dir = await makeFolder({ 'file.txt': 'x' });
  t.after(() => removeFolder(dir));
  const framing = new MultipartFraming('b');
  await assert.rejects(FolderCatalog.open(join(dir, 'nope'), { framing }), { code: 'SP_ERR_DIR_NOT_FOUND' });
  await assert.rejects(FolderCatalog.open(join(dir, 'file.txt'), { framing }), { code: 'SP_ERR_NOT_A_DIRECTORY' });
});

/** Sends raw request bytes and returns the raw response text. */
function raw(url: URL, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.end(text));
    let out = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => { out += chunk; });
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}

test('any other path answers 404 and no request reads a file, in or outside the folder', async (t) => {
  const dir = await makeFolder({ 'a.txt': 'INSIDE' });
  t.after(() => removeFolder(dir));
  const { server, url } = await startServer({ dir, intervalMs: 10 });
  t.after(() => server.close());
  // (`/stream/` is `/stream`, as mjpg-streamer's clients expect; two slashes are not.)
  for (const path of ['/a.txt', '/stream//', '/stream/a.txt', '/stream/a.txt/', '/../../../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2fetc%2fpasswd', '/%E0%A4%A', '/favicon.ico', '/status/x']) {
    const response = await raw(url, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(response, /^HTTP\/1\.1 404 /, path);
    assert.match(response, /"error":"SP_ERR_(NOT_FOUND|UNKNOWN_STREAM)"/, path);
    assert.doesNotMatch(response, /INSIDE|root:/, path);
  }
});

test('methods other than GET and HEAD answer 405 with Allow', async (t) => {
  const { server, url } = await startServer({ dir: await makeFolder({ 'a.txt': 'A' }), intervalMs: 10 });
  t.after(() => server.close());
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
    const response = await fetchText(new URL('stream', url), { method });
    assert.equal(response.status, 405, method);
    assert.equal(response.headers.get('allow'), 'GET, HEAD');
    assert.equal(JSON.parse(response.body).error, 'SP_ERR_METHOD_NOT_ALLOWED');
  }
});

test('malformed requests answer 400: duplicate Host, no Host on HTTP/1.1, bad target', async (t) => {
  const { server, url } = await startServer({ dir: await makeFolder({ 'a.txt': 'A' }), intervalMs: 10 });
  t.after(() => server.close());
  assert.match(await raw(url, 'GET /status HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400 .*SP_ERR_BAD_REQUEST/s);
  assert.match(await raw(url, 'GET /status HTTP/1.1\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400 /);
  assert.match(await raw(url, 'GET status HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400 .*SP_ERR_BAD_REQUEST/s);
  // Absolute form, as sent to proxies, is understood.
  assert.match(await raw(url, `GET http://${url.host}/status HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`), /^HTTP\/1\.1 200 /);
});

test('a bad request beside a running stream does not disturb it', async (t) => {
  const dir = await makeFolder({ '1.txt': 'one', '2.txt': 'two', '3.txt': 'three' });
  t.after(() => removeFolder(dir));
  const { server, url } = await startServer({ dir, intervalMs: 100 });
  t.after(() => server.close());
  const stream = await openStream(new URL('stream', url));
  await raw(url, 'GET /../x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
  await raw(url, 'BREW /stream HTTP/1.1\r\nHost: a\r\n\r\n');
  await raw(url, 'garbage\r\n\r\n');
  await new Promise<void>((resolve) => {
    const req = request(new URL('stream', url), (res) => { res.destroy(); resolve(); });
    req.end();
  });
  await stream.ended;
  assert.deepEqual(stream.reader.parts.map((p) => p.body.toString()), ['one', 'two', 'three']);
});
