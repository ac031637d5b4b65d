import { test, describe } from 'node:test';
import { needs } from './helpers/tools.ts';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareFileNames } from '../src/sources/folder-catalog.ts';
import { EXAMPLES, startServer, sleep } from './helpers/server.ts';

// `serverpush get` as a user runs it: the built CLI (npm test builds first) in a child process.
const CLI = new URL('../dist/cli/main.js', import.meta.url).pathname;

interface Run { code: number | null; stdout: Buffer; stderr: string; ms: number }

async function get(args: string[], timeoutMs = 15_000): Promise<Run> {
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, 'get', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text; });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, stdout: Buffer.concat(stdout), stderr, ms: Date.now() - started };
}

async function examples(): Promise<Array<{ name: string; body: Buffer }>> {
  const names = (await readdir(EXAMPLES)).sort(compareFileNames);
  return Promise.all(names.map(async (name) => ({ name, body: await readFile(join(EXAMPLES, name)) })));
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'serverpush-get-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A small HTTP server written for one test. */
async function httpServer(t: { after: (fn: () => Promise<void>) => void }, handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/stream`;
}

describe('serverpush get against a serverpush server', () => {
  test('--count 3 prints three parts and exits 0 while the stream goes on', async (t) => {
    const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 50, loop: true });
    t.after(() => server.close());
    const run = await get([new URL('stream', url).href, '--count', '3']);
    assert.equal(run.code, 0, run.stderr);
    const files = await examples();
    assert.equal(run.stdout.toString(), files.slice(0, 3).map((f, i) => `${i + 1} ${f.name.endsWith('.html') ? 'text/html; charset=utf-8' : f.name.endsWith('.jpg') ? 'image/jpeg' : 'text/plain; charset=utf-8'} ${f.body.length}\n`).join(''));
  });

  test('--out DIR saves every part, numbered, with an extension from its type, until the stream ends', async (t) => {
    const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 20 });
    t.after(() => server.close());
    const dir = await tempDir(t);
    const run = await get([new URL('stream', url).href, '--out', join(dir, 'frames')]);
    assert.equal(run.code, 0, run.stderr);
    const files = await examples();
    const saved = (await readdir(join(dir, 'frames'))).sort();
    assert.deepEqual(saved, files.map((f, i) => `${String(i + 1).padStart(6, '0')}.${f.name.split('.').pop() === 'jpeg' ? 'jpg' : f.name.split('.').pop()}`));
    for (const [i, file] of files.entries()) assert.deepEqual(await readFile(join(dir, 'frames', saved[i]!)), file.body, file.name);
    assert.equal(run.stdout.toString().trim().split('\n').length, files.length, 'one path printed per part');
  });

  test('--snapshot FILE saves the first part and exits at once; --snapshot - writes it to standard output', async (t) => {
    const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 5000 });
    t.after(() => server.close());
    const dir = await tempDir(t);
    const [first] = await examples();
    const run = await get([new URL('stream', url).href, '--snapshot', join(dir, 'now.html')]);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.ms < 3000, `took ${run.ms} ms with a 5 s interval`);
    assert.deepEqual(await readFile(join(dir, 'now.html')), first!.body);
    assert.deepEqual(await readdir(dir), ['now.html'], 'no temporary file left');
    const piped = await get([new URL('stream', url).href, '--snapshot', '-']);
    assert.equal(piped.code, 0, piped.stderr);
    assert.deepEqual(piped.stdout, first!.body);
  });

  test('a stream that ends before --count parts exits 1 and says so', async (t) => {
    const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 10 });
    t.after(() => server.close());
    const run = await get([new URL('stream', url).href, '--count', '50', '--quiet']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /ended after 10 of 50 part/);
    assert.equal(run.stdout.length, 0, '--quiet');
  });
});

describe('serverpush get failures', () => {
  test('HTTP 404 exits 1 with the status', async (t) => {
    const url = await httpServer(t, (_q, response) => response.writeHead(404, { 'content-type': 'text/plain' }).end('not here'));
    const run = await get([url]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /answered HTTP 404 Not Found \(SP_ERR_HTTP_STATUS\)/);
  });

  test('a text/html page exits 1: not multipart', async (t) => {
    const url = await httpServer(t, (_q, response) => response.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>'));
    const run = await get([url]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /not a multipart response: Content-Type is "text\/html" \(SP_ERR_NOT_MULTIPART\)/);
  });

  test('a multipart Content-Type over a body that is not multipart exits 1: no delimiter', async (t) => {
    const url = await httpServer(t, (_q, response) => response.writeHead(200, { 'content-type': 'multipart/x-mixed-replace; boundary=frame' }).end('just some text\n'));
    const run = await get([url]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /SP_ERR_NO_DELIMITER/);
  });

  test('a refused connection exits 1', async () => {
    const probe = createNetServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    const run = await get([`http://127.0.0.1:${port}/stream`]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /ECONNREFUSED.*\(SP_ERR_CONNECTION\)/);
  });

  test('--timeout: a server that sends headers but no part exits 1 after the timeout', async (t) => {
    const url = await httpServer(t, (_q, response) => {
      response.writeHead(200, { 'content-type': 'multipart/x-mixed-replace; boundary=B' });
      response.write('--B\r\n');
    });
    const run = await get([url, '--timeout', '0.3']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /timed out after 0.3 s waiting for the response and its first part \(SP_ERR_TIMEOUT\)/);
    assert.ok(run.ms < 5000, `took ${run.ms} ms`);
  });

  test('bad usage exits 2', async () => {
    for (const args of [[], ['ftp://example.com/'], ['not a url'], ['http://127.0.0.1/', '--count', '0'], ['http://127.0.0.1/', '--snapshot', 'x', '--count', '2'], ['http://127.0.0.1/', '--bogus'], ['http://127.0.0.1/', '-H', 'nocolon']]) {
      const run = await get(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, /^serverpush get: .+\nRun `serverpush get --help` for the options\.\n$/, 'the error and one line of help, not the whole usage');
    }
  });
});

test('get sends -H headers, and user:pass@ in the URL as Basic auth when the server asks', async (t) => {
  let seen: IncomingMessage['headers'] = {};
  const url = await httpServer(t, (request, response) => {
    seen = request.headers;
    if (!request.headers.authorization) return void response.writeHead(401, { 'WWW-Authenticate': 'Basic realm="cam"' }).end();
    response.writeHead(200, { 'content-type': 'multipart/x-mixed-replace; boundary=B' }).end('--B\r\nContent-Type: text/plain\r\n\r\nok\r\n--B--\r\n');
  });
  const withCredentials = url.replace('http://', 'http://admin:s%3Acret@');
  const run = await get([withCredentials, '-H', 'X-Camera: 4', '--quiet']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(seen['x-camera'], '4');
  assert.equal(seen['authorization'], `Basic ${Buffer.from('admin:s:cret').toString('base64')}`);
});


test('get reads ffmpeg\'s own HTTP stream (-listen 1), whose Content-Type needs --boundary', needs('ffmpeg'), async (t) => {
  const probe = createNetServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  const ffmpeg = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc=size=96x72:rate=10', '-frames:v', '30', '-q:v', '8',
    '-f', 'mpjpeg', '-boundary_tag', 'ffserver', '-listen', '1', `http://127.0.0.1:${port}/cam.mjpg`], { stdio: 'ignore' });
  t.after(() => void ffmpeg.kill('SIGKILL'));
  const dir = await tempDir(t);
  let run: Run | undefined;
  // A refused connection does not use up ffmpeg's one listen; retry until it listens.
  for (let attempt = 0; attempt < 50; attempt++) {
    run = await get([`http://127.0.0.1:${port}/cam.mjpg`, '--boundary', 'ffserver', '--count', '5', '--out', dir]);
    if (!/ECONNREFUSED/.test(run.stderr)) break;
    await sleep(100);
  }
  assert.equal(run?.code, 0, run?.stderr);
  const saved = (await readdir(dir)).sort();
  assert.deepEqual(saved, ['000001.jpg', '000002.jpg', '000003.jpg', '000004.jpg', '000005.jpg']);
  for (const name of saved) {
    const jpeg = await readFile(join(dir, name));
    assert.deepEqual([jpeg[0], jpeg[1], jpeg.at(-2), jpeg.at(-1)], [0xff, 0xd8, 0xff, 0xd9], `${name} is one whole JPEG`);
  }
});
