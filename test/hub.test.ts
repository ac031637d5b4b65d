/** The hub alone (LiveStream, Subscriber, Viewer, EncodedPart) with fake sinks and a fake clock. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { LiveStream } from '../src/hub/live-stream.ts';
import { Emitter } from '../src/hub/emitter.ts';
import { Subscriber } from '../src/hub/subscriber.ts';
import { Viewer, type MultipartSink } from '../src/hub/viewer.ts';
import { encodePart } from '../src/hub/encoded-part.ts';
import { MultipartFraming } from '../src/protocol/encoder.ts';

/**
 * Fake setTimeout and performance.now() for the test `t`, moving together a millisecond at a time;
 * returns `advance(to)`, which moves both to `to` ms.
 */
function fakeClock(t: TestContext): (to: number) => void {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let now = 0;
  t.mock.method(performance, 'now', () => now);
  return (to) => {
    while (now < to) {
      now++;
      t.mock.timers.tick(1);
    }
  };
}

test('the stall timer: a viewer busy less than the timeout at a time is kept; one busy for the timeout is dropped', (t) => {
  const advance = fakeClock(t);
  const controller = new AbortController();
  let drain: () => void = () => {};
  let destroyed: string | undefined;
  let writes = 0;
  const sink: MultipartSink = {
    signal: controller.signal,
    write: () => { writes++; return false; }, // every write leaves the viewer busy until drain()
    onDrain: (listener) => { drain = listener; },
    destroy: (reason) => { destroyed = reason ?? 'closed'; controller.abort(); },
    end: () => {},
  };
  let stalls = 0;
  const framing = new MultipartFraming('b0undary');
  const viewer = new Viewer(sink, { stallTimeoutMs: 700, onStall: () => { stalls++; } });
  const subscriber = new Subscriber(viewer, framing, { eager: false, maxFps: 0 });
  let seq = 0;
  const offer = () => subscriber.offer(encodePart(framing, { contentType: 'text/plain', body: new Uint8Array([1]) }, ++seq));
  offer(); // busy from 0
  advance(500);
  drain(); // took it after 500 ms
  offer(); // busy again from 500
  advance(700); // the first timer fires: busy for 200 ms only, so it re-arms
  assert.equal(stalls, 0);
  advance(1000);
  drain();
  offer(); // busy from 1000, and never drained again
  offer(); // latest wins: replaces the pending part, no write
  assert.equal(writes, 3);
  assert.equal(subscriber.partsSkipped, 0);
  advance(1699);
  assert.equal(stalls, 0, 'busy for 699 ms: kept');
  assert.equal(destroyed, undefined);
  advance(1701);
  assert.equal(stalls, 1, 'busy for 701 ms: dropped');
  assert.equal(destroyed, 'stalled');
  assert.equal(viewer.endReason, 'stalled');
});

test('a part is encoded to the same bytes whether its body is copied into one buffer (small) or written as it is (large)', async (t) => {
  const { encodePart, CONTIGUOUS_MAX_BODY } = await import('../src/hub/encoded-part.ts');
  const { MultipartFraming } = await import('../src/protocol/encoder.ts');
  const framing = new MultipartFraming('b0undary');
  const join = (chunks: readonly Uint8Array[]) => Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.length)));
  for (const size of [1, CONTIGUOUS_MAX_BODY, CONTIGUOUS_MAX_BODY + 1, 300_000]) {
    const body = Buffer.alloc(size, 0x61);
    const part = encodePart(framing, { contentType: 'text/plain', body, timestamp: 1_700_000_000_000 }, 1);
    const head = `Content-Type: text/plain\r\nContent-Length: ${size}\r\nX-Timestamp: 1700000000.000000\r\n\r\n`;
    assert.equal(join(part.standard).toString('latin1'), `${head}${body.toString('latin1')}\r\n--b0undary\r\n`, `standard, ${size} bytes`);
    assert.equal(join(part.eager).toString('latin1'), `${body.toString('latin1')}\r\n--b0undary\r\nContent-Type: text/plain\r\n\r\n`, `eager, ${size} bytes`);
    assert.equal(part.standard.length, size > CONTIGUOUS_MAX_BODY ? 3 : 1, `one write for ${size} bytes only when small`);
    assert.ok(Buffer.from(part.body).equals(body));
    // A viewer of that part, standard and eager, gets exactly those bytes after the opening.
    const stream = new LiveStream({ boundary: 'b0undary', checkImages: false });
    stream.push({ contentType: 'text/plain', body, timestamp: 1_700_000_000_000 });
    for (const eager of [false, true]) {
      const got: Uint8Array[] = [];
      const closed = new AbortController();
      t.after(() => closed.abort());
      stream.subscribe({ write: (chunks) => { got.push(...chunks); return true; }, onDrain: () => {}, signal: closed.signal, destroy: () => closed.abort(), end: () => closed.abort() }, { eager });
      const expected = eager ? `--b0undary\r\n${head}${body.toString('latin1')}\r\n--b0undary\r\nContent-Type: text/plain\r\n\r\n` : `--b0undary\r\n${head}${body.toString('latin1')}\r\n--b0undary\r\n`;
      assert.equal(join(got).toString('latin1'), expected, `${eager ? 'eager' : 'standard'} viewer, ${size} bytes`);
    }
  }
});

test('end(): a viewer that does not take its last bytes is dropped after the stall timeout; one that does is not', (t) => {
  const advance = fakeClock(t);
  const framing = new MultipartFraming('b0undary');
  const viewer = () => {
    const controller = new AbortController();
    const seen = { destroyed: undefined as string | undefined, ended: [] as Uint8Array[], stalls: 0 };
    const sink: MultipartSink = {
      signal: controller.signal,
      write: () => false, // busy until it drains, which it never does
      onDrain: () => {},
      destroy: (reason) => { seen.destroyed = reason ?? 'closed'; controller.abort(); },
      end: (chunks) => { seen.ended.push(...chunks); },
    };
    const subscriber = new Subscriber(new Viewer(sink, { stallTimeoutMs: 700, onStall: () => { seen.stalls++; } }), framing, { eager: false, maxFps: 0 });
    return { subscriber, seen, controller };
  };
  const part = encodePart(framing, { contentType: 'text/plain', body: new Uint8Array([7]) }, 1);
  const stuck = viewer();
  const taking = viewer();
  stuck.subscriber.offer(part); // busy from 0
  taking.subscriber.offer(part);
  advance(300);
  stuck.subscriber.end(part);
  taking.subscriber.end(part);
  taking.controller.abort(); // this one's response finished and closed
  assert.equal(Buffer.concat(stuck.seen.ended).toString('latin1').endsWith('\r\n--b0undary--\r\n'), true);
  advance(699);
  assert.equal(stuck.seen.destroyed, undefined, 'busy for 699 ms: kept');
  advance(701);
  assert.equal(stuck.seen.destroyed, 'stalled', 'busy for 701 ms, end included: dropped');
  assert.equal(stuck.seen.stalls, 1);
  assert.equal(taking.seen.destroyed, undefined);
  assert.equal(taking.seen.stalls, 0);
});

test('the stall timer of a slideshow client is the same Viewer: busy for the timeout, dropped with a reset; drained() tells the player', async (t) => {
  const advance = fakeClock(t);
  const controller = new AbortController();
  let drain: () => void = () => {};
  let destroyed: string | undefined;
  const sink: MultipartSink = {
    signal: controller.signal,
    write: () => false,
    onDrain: (listener) => { drain = listener; },
    destroy: (reason) => { destroyed = reason ?? 'closed'; controller.abort(); },
    end: () => {},
  };
  const viewer = new Viewer(sink, { stallTimeoutMs: 400 });
  viewer.write([new Uint8Array([1, 2, 3])]);
  assert.equal(viewer.busy, true);
  assert.equal(viewer.bytesSent, 3);
  assert.equal(viewer.partsSent, 1);
  const first = viewer.drained();
  advance(100);
  drain();
  assert.equal(await first, true, 'took it: the player goes on');
  viewer.write([new Uint8Array([4])]);
  const second = viewer.drained();
  advance(499); // busy since 100
  assert.equal(destroyed, undefined);
  advance(501);
  assert.equal(destroyed, 'stalled');
  assert.equal(await second, false, 'dropped: the player stops');
  assert.equal(await viewer.ended, 'stalled');
});

test('Viewer.end() says why the response ended; a client that goes away is "disconnected"', async () => {
  const make = () => {
    const controller = new AbortController();
    const sink: MultipartSink = { signal: controller.signal, write: () => true, onDrain: () => {}, destroy: () => controller.abort(), end: () => controller.abort() };
    return { viewer: new Viewer(sink, { stallTimeoutMs: 1000 }), controller };
  };
  const finished = make();
  finished.viewer.end([new Uint8Array([1])], 'finished');
  assert.equal(await finished.viewer.ended, 'finished');
  assert.equal(finished.viewer.partsSent, 1);
  const gone = make();
  gone.controller.abort();
  assert.equal(await gone.viewer.ended, 'disconnected');
  const shut = make();
  shut.viewer.close('shutdown');
  assert.equal(await shut.viewer.ended, 'shutdown');
});

test('the hub emitter calls every listener in order, once() only once, and off() removes one', () => {
  const emitter = new Emitter<{ tick: [number] }>();
  const seen: string[] = [];
  const a = (n: number) => seen.push(`a${n}`);
  emitter.on('tick', a);
  emitter.once('tick', (n) => seen.push(`once${n}`));
  emitter.on('tick', (n) => seen.push(`c${n}`));
  assert.equal(emitter.emit('tick', 1), true);
  emitter.off('tick', a);
  emitter.emit('tick', 2);
  assert.deepEqual(seen, ['a1', 'once1', 'c1', 'c2']);
  assert.equal(emitter.listenerCount('tick'), 1);
  assert.equal(new Emitter<{ x: [] }>().emit('x'), false);
});
