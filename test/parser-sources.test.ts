import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readParts } from '../src/protocol/read-parts.ts';
import { fetchParts, HttpStatusError } from '../src/client/fetch-parts.ts';
import { isServerPushError } from '../src/errors.ts';
import { compareFileNames } from '../src/sources/folder-catalog.ts';
import { EXAMPLES, startServer, eventually, sleep } from './helpers/server.ts';
import { bytes, text } from './helpers/parts.ts';

const PART_1 = '--B\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\none';
const REST = '\r\n--B\r\nContent-Type: text/plain\r\n\r\ntwo\r\n--B--\r\n';

function code(expected: string) {
  return (error: unknown) => {
    assert.ok(isServerPushError(error), `expected a ServerPushError, got ${String(error)}`);
    assert.equal(error.code, expected, error.message);
    return true;
  };
}

async function collect(iterable: AsyncIterable<{ body: Uint8Array }>): Promise<string[]> {
  const out: string[] = [];
  for await (const part of iterable) out.push(text(part.body));
  return out;
}

/** A ReadableStream that sends `chunks`, then waits until cancelled; records the cancel. */
function hangingStream(chunks: string[]): { stream: ReadableStream<Uint8Array>; cancelled: () => boolean } {
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(bytes(chunk));
    },
    cancel() {
      cancelled = true;
    },
  });
  return { stream, cancelled: () => cancelled };
}

describe('readParts over each kind of source', () => {
  test('a web ReadableStream', async () => {
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (const ch of (PART_1 + REST).match(/.{1,5}/gs)!) c.enqueue(bytes(ch));
        c.close();
      },
    });
    assert.deepEqual(await collect(readParts(stream, { boundary: 'B' })), ['one', 'two']);
  });

  test('a Node Readable (Buffers), an async generator, and a fetch Response whose Content-Type gives the boundary', async () => {
    assert.deepEqual(await collect(readParts(Readable.from([Buffer.from(PART_1), Buffer.from(REST)]), { boundary: 'B' })), ['one', 'two']);
    async function* generate() {
      yield bytes(PART_1);
      yield bytes(REST);
    }
    assert.deepEqual(await collect(readParts(generate(), { boundary: 'B' })), ['one', 'two']);
    const response = new Response(PART_1 + REST, { headers: { 'content-type': 'multipart/x-mixed-replace; boundary="B"' } });
    assert.deepEqual(await collect(readParts(response)), ['one', 'two']);
  });

  test('a Response that is not multipart throws SP_ERR_NOT_MULTIPART; a Node stream of strings a TypeError', async () => {
    await assert.rejects(collect(readParts(new Response('<html></html>', { headers: { 'content-type': 'text/html' } }))), code('SP_ERR_NOT_MULTIPART'));
    await assert.rejects(collect(readParts(Readable.from(['text']), { boundary: 'B' })), TypeError);
  });

  test('yields a part while the source is still waiting for more, and break releases the source', async () => {
    const { stream, cancelled } = hangingStream([PART_1]);
    for await (const part of readParts(stream, { boundary: 'B' })) {
      assert.equal(text(part.body), 'one');
      break;
    }
    assert.equal(cancelled(), true);
  });

  test('an abort ends a pending read at once with the signal\'s reason and releases the source', async () => {
    const { stream, cancelled } = hangingStream([PART_1]);
    const controller = new AbortController();
    const got: string[] = [];
    const reason = new Error('enough');
    await assert.rejects(async () => {
      for await (const part of readParts(stream, { boundary: 'B', signal: controller.signal })) {
        got.push(text(part.body));
        setTimeout(() => controller.abort(reason), 10);
      }
    }, (error) => error === reason);
    assert.deepEqual(got, ['one']);
    assert.equal(cancelled(), true);
  });

  test('a source that ends inside a part throws SP_ERR_INCOMPLETE_PART after the complete parts', async () => {
    const got: string[] = [];
    await assert.rejects(async () => {
      for await (const part of readParts(Readable.from([Buffer.from(PART_1 + '\r\n--B\r\nContent-Type: text/plain\r\n\r\ntw')]), { boundary: 'B' })) got.push(text(part.body));
    }, code('SP_ERR_INCOMPLETE_PART'));
    assert.deepEqual(got, ['one']);
  });
});

/** A small HTTP server for one test; `handler` answers every request. */
async function httpServer(handler: (response: ServerResponse) => void): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const server = createServer((_request, response) => handler(response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/stream`,
    server,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('fetchParts over real sockets', () => {
  test('reads every document of a serverpush slideshow, exactly', async (t) => {
    const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 20 });
    t.after(() => server.close());
    const parts = [];
    for await (const part of fetchParts(new URL('stream', url))) parts.push(part);
    const names = (await readdir(EXAMPLES)).sort(compareFileNames);
    assert.equal(parts.length, names.length);
    for (const [i, name] of names.entries()) assert.deepEqual(Buffer.from(parts[i]!.body), await readFile(join(EXAMPLES, name)), name);
  });

  test('yields a part the moment it is sent, not when the next one begins', async (t) => {
    const { url, close } = await httpServer((response) => {
      response.writeHead(200, { 'content-type': 'multipart/x-mixed-replace; boundary=B' });
      // ffmpeg-style: the delimiter before each part only; the next part comes much later.
      response.write('--B\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\none\r\n');
    });
    t.after(close);
    const started = Date.now();
    for await (const part of fetchParts(url)) {
      assert.equal(text(part.body), 'one');
      assert.ok(Date.now() - started < 1000);
      break;
    }
  });

  test('an AbortSignal stops the stream; the server sees the client go', async (t) => {
    const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 5000 });
    t.after(() => server.close());
    const controller = new AbortController();
    const got: string[] = [];
    await assert.rejects(async () => {
      for await (const part of fetchParts(new URL('stream', url), { signal: controller.signal })) {
        got.push(part.headers['content-type']!);
        controller.abort(new Error('stop'));
      }
    }, /stop/);
    assert.deepEqual(got, ['text/html; charset=utf-8']);
    assert.ok(await eventually(() => server.status.clients === 0, 1000), 'the server dropped the client');
  });

  test('an abort before the response arrives rejects with the signal\'s reason', async (t) => {
    const { url, close } = await httpServer(() => {});
    t.after(close);
    await assert.rejects(collect(fetchParts(url, { signal: AbortSignal.timeout(100) })), (error: Error) => error.name === 'TimeoutError');
  });

  test('HTTP 404 throws SP_ERR_HTTP_STATUS carrying the status', async (t) => {
    const { url, close } = await httpServer((response) => response.writeHead(404, { 'content-type': 'text/plain' }).end('nope'));
    t.after(close);
    await assert.rejects(collect(fetchParts(url)), (error) => error instanceof HttpStatusError && error.status === 404 && error.code === 'SP_ERR_HTTP_STATUS');
  });

  test('a text/html answer throws SP_ERR_NOT_MULTIPART; multipart without a boundary SP_ERR_NO_BOUNDARY', async (t) => {
    let type = 'text/html';
    const { url, close } = await httpServer((response) => response.writeHead(200, { 'content-type': type }).end('<html></html>'));
    t.after(close);
    await assert.rejects(collect(fetchParts(url)), code('SP_ERR_NOT_MULTIPART'));
    type = 'multipart/x-mixed-replace';
    await assert.rejects(collect(fetchParts(url)), code('SP_ERR_NO_BOUNDARY'));
  });

  test('the boundary option reads a stream sent with a wrong Content-Type (ffmpeg -listen sends application/octet-stream)', async (t) => {
    const { url, close } = await httpServer((response) => response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(PART_1 + REST));
    t.after(close);
    assert.deepEqual(await collect(fetchParts(url, { boundary: 'B' })), ['one', 'two']);
  });

  test('a connection reset mid-stream throws SP_ERR_CONNECTION after the complete parts; a refused connection too', async () => {
    const { url, server, close } = await httpServer((response) => {
      response.writeHead(200, { 'content-type': 'multipart/x-mixed-replace; boundary=B' });
      response.write(`${PART_1}\r\n--B\r\nContent-Type: text/plain\r\n\r\nhal`);
      setTimeout(() => response.socket?.destroy(), 50);
    });
    const got: string[] = [];
    await assert.rejects(async () => {
      for await (const part of fetchParts(url)) got.push(text(part.body));
    }, code('SP_ERR_CONNECTION'));
    assert.deepEqual(got, ['one']);
    await close();
    assert.equal(server.listening, false);
    await sleep(10);
    await assert.rejects(collect(fetchParts(url)), code('SP_ERR_CONNECTION'));
  });
});
