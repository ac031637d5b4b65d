import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { readdir } from 'node:fs/promises';
import { EXAMPLES, startServer, eventually } from './helpers/server.ts';
import { StreamConnection, type ConnectionState, type ViewerPart } from '../src/viewer/connection.ts';
import { contentTypeForFileName } from '../src/protocol/content-type.ts';
import { compareFileNames } from '../src/sources/folder-catalog.ts';

/** A StreamConnection (in Node: the viewer's reader without the page) that records what it does. */
function record(url: URL | string, options: { raw?: boolean; reconnectOnEnd?: boolean; initialRetryMs?: number; maxRetryMs?: number } = {}) {
  const parts: ViewerPart[] = [];
  const states: Array<ConnectionState & { at: number }> = [];
  const connection = new StreamConnection({ url: String(url), ...options, onPart: (part) => parts.push(part), onState: (state) => states.push({ ...state, at: Date.now() }) });
  connection.start();
  return { connection, parts, states, names: () => states.map((s) => s.state) };
}

test('StreamConnection reads the raw variant of a slideshow part by part, and stops at the closing delimiter', async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 20 });
  t.after(() => server.close());
  const viewer = record(new URL('stream', url));
  t.after(() => viewer.connection.close());
  assert.ok(await eventually(() => viewer.names().includes('ended'), 5000), viewer.names().join(' '));
  const names = (await readdir(EXAMPLES)).sort(compareFileNames);
  assert.deepEqual(viewer.parts.map((p) => p.contentType), names.map((n) => contentTypeForFileName(n)));
  assert.deepEqual(viewer.parts.map((p) => p.seq), names.map((_, i) => i + 1));
  for (const part of viewer.parts) {
    assert.ok(part.timestamp !== undefined && Math.abs(part.receivedAt - part.timestamp) < 1000, `X-Timestamp ${part.timestamp} at ${part.receivedAt}`);
    assert.equal(part.chunks.reduce((n, c) => n + c.length, 0), part.size);
  }
  assert.deepEqual(viewer.names(), ['connecting', 'open', 'ended']);
  assert.equal(server.status.clientsTotal, 1, 'no reconnect after the end');
});

test('StreamConnection reads a plain multipart stream too (raw: false)', async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 10 });
  t.after(() => server.close());
  const viewer = record(new URL('stream?only=text/plain', url), { raw: false });
  assert.ok(await eventually(() => viewer.names().includes('ended'), 5000));
  assert.deepEqual(viewer.parts.map((p) => new TextDecoder().decode(p.chunks[0]).split('\n')[0]), ['serverpush 3/10 (text)', 'serverpush 10/10 (text)']);
});

test('StreamConnection reconnects after the end when asked (looping slideshows, live streams)', async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 5 });
  t.after(() => server.close());
  const viewer = record(new URL('stream?only=text/plain', url), { reconnectOnEnd: true, initialRetryMs: 20 });
  t.after(() => viewer.connection.close());
  assert.ok(await eventually(() => viewer.parts.length >= 6, 5000), `${viewer.parts.length} parts`);
  assert.ok(server.status.clientsTotal >= 3);
  assert.deepEqual(viewer.parts.slice(0, 6).map((p) => p.seq), [1, 2, 3, 4, 5, 6], 'numbered across connections');
});

test('StreamConnection retries a server that is not there with growing delays (backoff with jitter), until closed', async () => {
  // A port that was free a moment ago: connections are refused.
  const probe = createNetServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  const viewer = record(`http://127.0.0.1:${port}/stream`, { initialRetryMs: 40, maxRetryMs: 200 });
  assert.ok(await eventually(() => viewer.states.filter((s) => s.state === 'retrying').length >= 5, 5000));
  viewer.connection.close();
  const delays = viewer.states.flatMap((s) => (s.state === 'retrying' ? [s.retryInMs] : []));
  const expected = [40, 80, 160, 200, 200];
  delays.slice(0, 5).forEach((delay, i) => assert.ok(delay >= expected[i]! * 0.8 - 1 && delay <= expected[i]! * 1.2 + 1, `attempt ${i + 1}: ${delay} ms`));
  const retrying = viewer.states.find((s) => s.state === 'retrying');
  assert.match(retrying?.state === 'retrying' ? retrying.reason : '', /^cannot connect/);
  assert.equal(viewer.names().at(-1), 'stopped');
  const count = viewer.states.length;
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(viewer.states.length, count, 'nothing after close()');
});

test('StreamConnection: 503 with Retry-After waits as told; 404 fails for good', async (t) => {
  const { server, url } = await startServer({ streams: { cam: { type: 'push' } } });
  t.after(() => server.close());
  const waiting = record(new URL('stream/cam', url), { initialRetryMs: 10 });
  t.after(() => waiting.connection.close());
  assert.ok(await eventually(() => waiting.names().includes('retrying')));
  const retry = waiting.states.find((s) => s.state === 'retrying')!;
  assert.ok(retry.state === 'retrying' && retry.retryInMs >= 1000, JSON.stringify(retry));
  assert.match(retry.state === 'retrying' ? retry.reason : '', /HTTP 503.*SP_ERR_NO_FRAME|HTTP 503/);
  server.live('cam').push({ contentType: 'text/plain', body: new TextEncoder().encode('first') });
  assert.ok(await eventually(() => waiting.parts.length === 1, 3000));

  const missing = record(new URL('stream/nope', url));
  assert.ok(await eventually(() => missing.names().includes('failed')));
  const failed = missing.states.at(-1)!;
  assert.match(failed.state === 'failed' ? failed.reason : '', /HTTP 404.*no stream named "nope"/);
});

test('StreamConnection reconnects by default when a live stream ends (X-Stream-Kind: live): the server went away', async (t) => {
  const first = await startServer({ streams: { default: { type: 'push' } } });
  const port = Number(first.url.port);
  first.server.live().push({ contentType: 'text/plain', body: new TextEncoder().encode('before') });
  const viewer = record(new URL('stream', first.url), { initialRetryMs: 50 });
  t.after(() => viewer.connection.close());
  assert.ok(await eventually(() => viewer.parts.length === 1, 3000));
  await first.server.close(); // ends the stream cleanly, with its closing delimiter
  assert.ok(await eventually(() => viewer.names().includes('retrying'), 3000), viewer.names().join(' '));
  assert.ok(!viewer.names().includes('ended'), viewer.names().join(' '));
  const second = await startServer({ port, streams: { default: { type: 'push' } } });
  t.after(() => second.server.close());
  second.server.live().push({ contentType: 'text/plain', body: new TextEncoder().encode('after') });
  assert.ok(await eventually(() => viewer.parts.some((p) => new TextDecoder().decode(p.chunks[0]) === 'after'), 10_000), viewer.names().join(' '));
  // Told not to, it does not.
  const told = record(new URL('stream', second.url), { reconnectOnEnd: false });
  t.after(() => told.connection.close());
  assert.ok(await eventually(() => told.parts.length >= 1, 3000));
  second.server.live().closeViewers();
  assert.ok(await eventually(() => told.names().includes('ended'), 3000), told.names().join(' '));
});

/** A fetch that answers a multipart stream whose body fails before its first byte, as WebKit's does; it records each request's signal. */
function refusingFetch(signals: AbortSignal[], headers: Record<string, string> = { 'Content-Type': 'multipart/x-mixed-replace; boundary=b0undary' }): typeof fetch {
  return (async (_input: unknown, init?: RequestInit) => {
    signals.push(init!.signal!);
    const body = new ReadableStream<Uint8Array>({ pull: (controller) => controller.error(new TypeError('Load failed')) });
    return new Response(body, { headers });
  }) as typeof fetch;
}

test('StreamConnection: a multipart body that fails before its first byte twice in a row (WebKit\'s fetch) is unreadable; each request is aborted once over', async () => {
  const signals: AbortSignal[] = [];
  const states: ConnectionState[] = [];
  const connection = new StreamConnection({ url: 'http://127.0.0.1:9/cam', raw: false, initialRetryMs: 10, fetch: refusingFetch(signals), onPart: () => {}, onState: (state) => states.push(state) });
  connection.start();
  assert.ok(await eventually(() => states.at(-1)?.state === 'unreadable', 3000), states.map((s) => s.state).join(' '));
  assert.deepEqual(states.map((s) => s.state), ['connecting', 'open', 'retrying', 'connecting', 'open', 'unreadable']);
  const last = states.at(-1)!;
  assert.match(last.state === 'unreadable' ? last.reason : '', /fetch cannot read a multipart\/x-mixed-replace body \(the stream failed: Load failed\)/);
  assert.equal(signals.length, 2, 'no more requests');
  assert.ok(signals.every((signal) => signal.aborted), 'each request aborted');
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(signals.length, 2);
});

test('StreamConnection: a raw body (application/octet-stream) that fails is retried as any failure, never unreadable', async () => {
  const signals: AbortSignal[] = [];
  const states: ConnectionState[] = [];
  const raw = refusingFetch(signals, { 'Content-Type': 'application/octet-stream', 'X-Multipart-Boundary': 'b0undary' });
  const connection = new StreamConnection({ url: 'http://127.0.0.1:9/cam', initialRetryMs: 5, maxRetryMs: 5, fetch: raw, onPart: () => {}, onState: (state) => states.push(state) });
  connection.start();
  assert.ok(await eventually(() => states.filter((s) => s.state === 'retrying').length >= 4, 3000), states.map((s) => s.state).join(' '));
  connection.close();
  assert.ok(!states.some((s) => s.state === 'unreadable'), states.map((s) => s.state).join(' '));
  assert.ok(signals.every((signal) => signal.aborted), 'each request aborted, the last one by close()');
});
