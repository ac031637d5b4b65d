/**
 * The Redis bus's frame encoding (src/bus/frame-codec.ts) and its options as the CLI and the
 * config file give them (src/bus/redis-options.ts, args.ts, config.ts). The bus itself is tested
 * with a real redis-server in redis-bus.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { decodeBusFrame, encodeBusFrame, FRAME_HEADER_BYTES, newEpoch } from '../src/bus/frame-codec.ts';
import { redisBusOptions } from '../src/bus/redis-options.ts';
import { parseCommand } from '../src/cli/args.ts';
import { loadConfig } from '../src/cli/config.ts';
import { isServerPushError } from '../src/errors.ts';

test('a frame survives the bus byte for byte: type, timestamps, epoch, seq and body', () => {
  fc.assert(fc.property(
    fc.uint8Array({ minLength: 1, maxLength: 5000 }),
    fc.stringMatching(/^[a-z]{1,20}\/[a-z0-9.+-]{1,40}$/),
    fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    fc.double({ min: 0, max: 4e12, noNaN: true }),
    (body, contentType, seq, timestamp) => {
      const frame = { epoch: newEpoch(), seq, contentType, timestamp, publishedAt: timestamp + 1.5, body };
      const message = encodeBusFrame(frame);
      assert.equal(message.length, FRAME_HEADER_BYTES + contentType.length + body.length, 'the body as it is: no base64, no JSON');
      const decoded = decodeBusFrame(message);
      assert.deepEqual({ ...decoded, body: [...decoded.body] }, { ...frame, body: [...body] });
    },
  ), { numRuns: 200 });
});

test('the body is read in place, not copied', () => {
  const message = encodeBusFrame({ epoch: 'a1b2c3d4e5f60718', seq: 7, contentType: 'image/jpeg', timestamp: 1, publishedAt: 2, body: new Uint8Array([1, 2, 3]) });
  const decoded = decodeBusFrame(message);
  assert.equal(decoded.body.buffer, message.buffer);
  assert.equal(decoded.epoch, 'a1b2c3d4e5f60718');
});

test('a message that is not a frame of this version is refused with SP_ERR_BUS_BAD_FRAME', () => {
  const good = encodeBusFrame({ epoch: newEpoch(), seq: 1, contentType: 'image/jpeg', timestamp: 1, publishedAt: 2, body: new Uint8Array([9]) });
  const bad = [new Uint8Array(0), new TextEncoder().encode('hello, this is not a frame at all!!'), good.slice(0, FRAME_HEADER_BYTES + 5), Uint8Array.from(good, (byte, i) => (i === 1 ? 2 : byte))];
  for (const message of bad) assert.throws(() => decodeBusFrame(message), (error) => isServerPushError(error, 'SP_ERR_BUS_BAD_FRAME'));
});

test('a content type that cannot travel is refused with SP_ERR_INVALID_PART', () => {
  for (const contentType of ['', 'x'.repeat(256), 'image/jpeg\r\nX-Evil: 1', 'image/jpég']) {
    assert.throws(() => encodeBusFrame({ epoch: newEpoch(), seq: 1, contentType, timestamp: 1, publishedAt: 1, body: new Uint8Array([1]) }), (error) => isServerPushError(error, 'SP_ERR_INVALID_PART'));
  }
});

test('--redis takes redis:// and rediss:// URLs with a numeric database, and no password', () => {
  const ok = parseCommand(['serve', '--stdin', '--redis', 'rediss://cache.example:6380/2', '--redis-max-frame-bytes', '1000000'], 'examples');
  assert.equal(ok.command, 'serve');
  if (ok.command === 'serve') {
    assert.equal(ok.redis, 'rediss://cache.example:6380/2');
    assert.equal(ok.redisMaxFrameBytes, 1_000_000);
  }
  const refused: Array<[string[], RegExp]> = [
    [['--redis', 'http://127.0.0.1:6379'], /must be redis:\/\/HOST:PORT\/DB or rediss:\/\//],
    [['--redis', 'redis://127.0.0.1:6379/cache'], /database must be a number/],
    [['--redis', 'redis://:hunter22@127.0.0.1:6379/0'], /no password on the command line/],
    [['--redis', ''], /needs a value/],
    [['--redis-password-file', '/tmp/x'], /go with --redis URL/],
    [['--redis', 'redis://127.0.0.1', '--redis-max-frame-bytes', '0'], /positive integer/],
  ];
  for (const [args, message] of refused) {
    assert.throws(() => parseCommand(['serve', '--stdin', ...args], 'examples'), (error) => isServerPushError(error, 'SP_ERR_INVALID_OPTION') && message.test(error.message) && !error.message.includes('hunter22'), args.join(' '));
  }
});

test('the password comes from the URL (config file), a file, or SERVERPUSH_REDIS_PASSWORD, in that order', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sp-bus-'));
  try {
    const file = join(dir, 'pw');
    await writeFile(file, 'from-the-file\n');
    assert.equal((await redisBusOptions({ url: 'redis://h:1/0', passwordFile: file }, { SERVERPUSH_REDIS_PASSWORD: 'env' })).password, 'from-the-file');
    assert.equal((await redisBusOptions({ url: 'redis://h:1/0' }, { SERVERPUSH_REDIS_PASSWORD: 'from-env' })).password, 'from-env');
    const fromUrl = await redisBusOptions({ url: 'redis://user:p%40ss@h:1/0' }, {});
    assert.equal(fromUrl.password, 'p@ss');
    assert.ok(!fromUrl.url.includes('ss@'), 'the URL handed on holds no password');
    assert.equal((await redisBusOptions({ url: 'redis://h:1/0' }, {})).password, undefined);
    await assert.rejects(redisBusOptions({ url: 'redis://:x@h:1/0', passwordFile: file }, {}), /given twice/);
    await assert.rejects(redisBusOptions({ url: 'redis://h:1/0', passwordFile: join(dir, 'missing') }, {}), (error) => isServerPushError(error, 'SP_ERR_CONFIG'));
    await writeFile(file, '');
    await assert.rejects(redisBusOptions({ url: 'redis://h:1/0', passwordFile: file }, {}), /is empty/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the config file takes redis, redisPasswordFile (relative to it) and redisMaxFrameBytes, and checks them', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sp-bus-'));
  try {
    const file = join(dir, 'config.json');
    await writeFile(file, JSON.stringify({ redis: 'redis://127.0.0.1:6379/0', redisPasswordFile: 'pw', redisMaxFrameBytes: 1000, streams: { default: { type: 'push' } } }));
    const config = await loadConfig(file);
    assert.equal(config.redis, 'redis://127.0.0.1:6379/0');
    assert.equal(config.redisPasswordFile, join(dir, 'pw'));
    assert.equal(config.redisMaxFrameBytes, 1000);
    for (const [bad, message] of [
      [{ redis: 'http://x' }, /redis must be redis:\/\//],
      [{ redis: 'redis://x', redisMaxFrameBytes: -1 }, /redisMaxFrameBytes must be a positive integer/],
      [{ redisPasswordFile: 'pw' }, /go with redis/],
    ] as const) {
      await writeFile(file, JSON.stringify({ ...bad, streams: { default: { type: 'push' } } }));
      await assert.rejects(loadConfig(file), (error) => isServerPushError(error, 'SP_ERR_CONFIG') && message.test(error.message));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
