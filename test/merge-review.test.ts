/**
 * Defects found reading the merge of access control, operations (reload), stale sources and the
 * Redis bus, each shown on real servers, real sockets and a real redis-server:
 * - a reload that restarts a stream's source on the bus left the old link listening to the
 *   stream: a `push` stream then put every frame on the bus twice;
 * - a reload refused whole (a bad stream) dropped the running stream from the bus (`/status`'s
 *   `bus.streams`, down notices and demand from other processes);
 * - a reload that adds a stream with its access rules served that stream under the old policy
 *   while the reload waited for a restarted source to stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { createClient } from '@redis/client';
import { startRedis } from './helpers/redis.ts';
import { eventually, makeFolder, openStream, removeFolder, sleep, startServer } from './helpers/server.ts';
import { probe, ALICE, BOB } from './helpers/auth.ts';
import { FRAMES } from './helpers/camera.ts';
import { needs } from './helpers/tools.ts';
import { startCli } from './helpers/cli.ts';
import { updateHtpasswd } from '../src/server/access/htpasswd.ts';
import { createAccessPolicy } from '../src/server/access/policy.ts';
import { createServer } from '../src/server/server.ts';

const REDIS = needs('redis-server');

test('a reload that restarts a push stream on the bus publishes each frame once, and leaves no listener of the old link on the stream', REDIS, async () => {
  const redis = await startRedis();
  const { server, url } = await startServer({ streams: { p: { type: 'push' } }, redis: { url: redis.url } });
  const subscriber = createClient({ url: redis.url });
  try {
    await eventually(async () => ((await (await fetch(new URL('status', url))).json()) as { bus: { connected: boolean } }).bus.connected, 5000, 'bus connected');
    const live = server.live('p');
    const listenersBefore = live.listenerCount('part');
    for (let i = 0; i < 3; i++) {
      const changes = await server.applyStreams({ p: { type: 'push', snapshotMaxAgeMs: 1000 * (i + 1) } });
      assert.deepEqual(changes.restarted, ['p']);
    }
    assert.equal(live.listenerCount('part'), listenersBefore, 'each reload left a listener of the old link');
    const received: Buffer[] = [];
    await subscriber.connect();
    await subscriber.subscribe('serverpush:{p}:frames', (message) => received.push(message), true);
    live.push({ contentType: 'image/jpeg', body: FRAMES[0]! });
    await eventually(() => received.length >= 1, 5000, 'the frame on the bus');
    await sleep(500);
    assert.equal(received.length, 1, `one frame pushed, ${received.length} put on the bus`);
  } finally {
    await subscriber.close().catch(() => {});
    await server.close(100);
    await redis.kill();
  }
});

test('a reload refused whole keeps the running stream on the bus (/status bus.streams)', REDIS, async () => {
  const redis = await startRedis();
  const { server, url } = await startServer({ streams: { a: { type: 'push' } }, redis: { url: redis.url } });
  try {
    const busStreams = async () => ((await (await fetch(new URL('status', url))).json()) as { bus: { streams: Record<string, unknown> } }).bus.streams;
    assert.ok((await busStreams())['a'], 'stream a on the bus at start');
    await assert.rejects(server.applyStreams({ a: { type: 'push', snapshotMaxAgeMs: 1000 }, b: { type: 'slideshow', sync: true, dir: '/nonexistent/serverpush-review' } }), { code: 'SP_ERR_DIR_NOT_FOUND' });
    assert.ok((await busStreams())['a'], 'stream a dropped from the bus by a refused reload');
  } finally {
    await server.close(100);
    await redis.kill();
  }
});

test('a reload that adds a stream with access rules never serves it under the old (open) policy', async () => {
  const dir = await makeFolder();
  const htpasswd = join(dir, 'users.htpasswd');
  await updateHtpasswd(htpasswd, ALICE.user, ALICE.password, 4);
  const frame = join(dir, 'frame.jpg');
  await writeFile(frame, FRAMES[0]!);
  // A command that ignores SIGTERM: its restart waits for the kill grace (2 s).
  const command = (n: number) => `trap '' TERM; while :; do cat ${frame}; sleep 0.${n}; done`;
  const { server, url } = await startServer({ streams: { a: { type: 'exec', command: command(1), format: 'mjpeg' } } });
  try {
    const access = await createAccessPolicy({ htpasswd, read: { streams: ['alice'] } });
    const reloading = server.reload({ streams: { a: { type: 'exec', command: command(2), format: 'mjpeg' }, secret: { type: 'push' } }, access });
    await eventually(() => server.streamNames.includes('secret'), 5000, 'the new stream served');
    server.live('secret').push({ contentType: 'image/jpeg', body: FRAMES[0]! });
    const anonymous = await probe(new URL('snapshot/secret', url));
    await reloading;
    assert.equal(anonymous.status, 401, `the new stream was served without its access rules (${anonymous.status})`);
    assert.equal((await probe(new URL('snapshot/secret', url))).status, 401);
    assert.equal((await probe(new URL('snapshot/secret', url), { auth: ALICE })).status, 200);
  } finally {
    await server.close(100);
    await removeFolder(dir);
  }
});

test('/readyz of a process that takes a stream from the bus (another runs the source) is ready without a viewer of its own', REDIS, async () => {
  const redis = await startRedis();
  const dir = await makeFolder();
  const frame = join(dir, 'frame.jpg');
  await writeFile(frame, FRAMES[0]!);
  const streams = { a: { type: 'exec' as const, command: `while :; do cat ${frame}; sleep 0.1; done`, format: 'mjpeg' as const } };
  const owner = await startServer({ streams, redis: { url: redis.url }, sourceStartGraceMs: 300 });
  let follower: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    const bus = async (url: URL) => ((await (await fetch(new URL('status', url))).json()) as { bus: { streams: Record<string, { owner: boolean }> } }).bus.streams['a']!;
    await eventually(async () => (await bus(owner.url)).owner, 10_000, 'the first process runs the source');
    await eventually(async () => (await fetch(new URL('readyz', owner.url))).status === 200, 5000, 'the owner ready');
    follower = await startServer({ streams, redis: { url: redis.url }, sourceStartGraceMs: 300 });
    // The follower serves the stream: a viewer of it gets the owner's frames.
    assert.equal((await bus(follower.url)).owner, false);
    await sleep(1500);
    const ready = await fetch(new URL('readyz', follower.url));
    const body = await ready.text();
    assert.equal(ready.status, 200, `the follower is not ready: ${body}`);
    assert.equal((await probe(new URL('snapshot/a', follower.url))).status, 200);
  } finally {
    await follower?.server.close(100);
    await owner.server.close(100);
    await redis.kill();
    await removeFolder(dir);
  }
});

test('createServer refused for access rules of a stream it does not have leaves no connection to Redis open', REDIS, async () => {
  const redis = await startRedis();
  try {
    const clients = async () => String(await redis.command(['CLIENT', 'LIST'])).split('\n').filter((line) => / name=serverpush(-sub)? /.test(line)).length;
    await assert.rejects(createServer({ port: 0, streams: { a: { type: 'push' } }, access: { streams: { nope: { read: ['public'] } } }, redis: { url: redis.url } }), { code: 'SP_ERR_CONFIG' });
    await sleep(500);
    assert.equal(await clients(), 0, 'the refused server left its Redis connections open');
  } finally {
    await redis.kill();
  }
});

test('/readyz (public) names no stream the client may not read, and says why only to who may', async () => {
  const dir = await makeFolder();
  const htpasswd = join(dir, 'users.htpasswd');
  await updateHtpasswd(htpasswd, ALICE.user, ALICE.password, 4);
  const { server, url } = await startServer({
    streams: { 'door-cam-backyard': { type: 'exec', command: 'exit 3', format: 'mjpeg', restartDelayMs: 200 } },
    access: { htpasswd, streams: { 'door-cam-backyard': { read: ['alice'] } } },
    sourceStartGraceMs: 200,
  });
  try {
    await eventually(async () => (await probe(new URL('readyz', url))).status === 503, 5000, 'not ready');
    const anonymous = await probe(new URL('readyz', url));
    assert.equal(anonymous.status, 503, 'readiness itself is public');
    assert.doesNotMatch(anonymous.body, /door-cam-backyard|exited/, `an anonymous client learns a stream's name and state: ${anonymous.body}`);
    const alice = await probe(new URL('readyz', url), { auth: ALICE });
    assert.equal(alice.status, 503);
    assert.match(alice.body, /door-cam-backyard/);
    // The refusal of a stream's own request says no more.
    assert.equal((await probe(new URL('snapshot/door-cam-backyard', url))).status, 401);
  } finally {
    await server.close(100);
    await removeFolder(dir);
  }
});

test('a viewer of a process that takes the stream from the bus, while the owner\'s on-demand command is paused, gets a fresh frame first, not one from before the pause older than the snapshot bound', REDIS, async () => {
  const redis = await startRedis();
  const pump = new URL('./helpers/frame-pump.mjs', import.meta.url).pathname;
  const streams = { a: { type: 'exec' as const, command: `exec ${process.execPath} ${pump} 10`, format: 'mjpeg' as const, onDemand: true, idleTimeoutMs: 300 } };
  const owner = await startServer({ streams, redis: { url: redis.url } });
  let follower: Awaited<ReturnType<typeof startServer>> | undefined;
  const viewers: Array<{ close(): void }> = [];
  try {
    const status = async (url: URL) => ((await (await fetch(new URL('status', url))).json()) as { bus: { streams: Record<string, { owner: boolean }> }; streams: Record<string, { source: string }> });
    await eventually(async () => (await status(owner.url)).bus.streams['a']!.owner, 10_000, 'the first process runs the source');
    follower = await startServer({ streams, redis: { url: redis.url } });
    const first = await openStream(new URL('stream/a', owner.url));
    viewers.push(first);
    await first.reader.waitFor(3);
    first.close();
    await eventually(async () => (await status(owner.url)).streams['a']!.source === 'idle', 10_000, 'the command paused');
    // Longer than the snapshot bound of an exec stream (5 s): the newest frame on the bus is stale.
    await sleep(6000);
    const late = await openStream(new URL('stream/a', follower.url));
    viewers.push(late);
    await late.reader.waitFor(1);
    const age = Date.now() - Number(late.reader.parts[0]!.headers['x-timestamp']) * 1000;
    assert.ok(age < 3000, `the first frame is ${age} ms old: the picture from before the pause`);
  } finally {
    for (const viewer of viewers) viewer.close();
    await follower?.server.close(100);
    await owner.server.close(100);
    await redis.kill();
  }
});

test('SIGHUP with a config whose redis URL changed says a restart applies it (it was silently kept)', REDIS, async () => {
  const redis = await startRedis();
  const dir = await makeFolder();
  const file = join(dir, 'serverpush.json');
  await writeFile(file, JSON.stringify({ redis: redis.url, streams: { a: { type: 'push' } } }));
  const server = await startCli(['--config', file, '--port', '0']);
  try {
    await writeFile(file, JSON.stringify({ redis: redis.url.replace(/\/0$/, '/1'), streams: { a: { type: 'push' } } }));
    server.child.kill('SIGHUP');
    await eventually(() => /SIGHUP: reloaded/.test(server.stderr()), 5000, 'the reload line');
    assert.match(server.stderr(), /redis changed in .*serverpush\.json; a restart applies it/);
  } finally {
    await server.stop('SIGKILL');
    await redis.kill();
    await removeFolder(dir);
  }
});

test('a reload whose config no longer sets a viewer limit puts its default back (it kept the old limit)', async () => {
  const { server, url } = await startServer({ streams: { a: { type: 'push' } }, limits: { maxViewers: 1 } });
  try {
    server.live('a').push({ contentType: 'image/jpeg', body: FRAMES[0]! });
    await server.reload({ streams: { a: { type: 'push' } }, limits: {} });
    const viewer = await openStream(new URL('stream/a', url));
    try {
      const second = await probe(new URL('stream/a', url));
      assert.equal(second.status, 200, `maxViewers 1 kept after the reload: ${second.body}`);
    } finally {
      viewer.close();
    }
    // Limits not given at all (the library's reload({ streams })) are kept.
    await server.reload({ streams: { a: { type: 'push' } }, limits: { maxViewers: 1 } });
    await server.reload({ streams: { a: { type: 'push' } } });
    const kept = await openStream(new URL('stream/a', url));
    try {
      assert.equal((await probe(new URL('stream/a', url))).status, 503);
    } finally {
      kept.close();
    }
  } finally {
    await server.close(100);
  }
});

test('a reload that takes a stream\'s right away from a user ends that user\'s open session, and no other', async () => {
  const dir = await makeFolder();
  const htpasswd = join(dir, 'users.htpasswd');
  await updateHtpasswd(htpasswd, ALICE.user, ALICE.password, 4);
  await updateHtpasswd(htpasswd, BOB.user, BOB.password, 4);
  const streams = { cam: { type: 'push' as const } };
  const { server, url, logger } = await startServer({ streams, access: { htpasswd, streams: { cam: { read: ['alice', 'bob'] } } } });
  server.live('cam').push({ contentType: 'image/jpeg', body: FRAMES[0]! });
  const feed = setInterval(() => server.live('cam').push({ contentType: 'image/jpeg', body: FRAMES[0]! }), 50);
  const basic = (who: { user: string; password: string }) => ({ Authorization: `Basic ${Buffer.from(`${who.user}:${who.password}`).toString('base64')}` });
  const bob = await openStream(new URL('stream/cam', url), basic(BOB));
  const alice = await openStream(new URL('stream/cam', url), basic(ALICE));
  try {
    await bob.reader.waitFor(2, 5000);
    await alice.reader.waitFor(2, 5000);
    let bobEnded = false;
    bob.response.once('close', () => { bobEnded = true; });
    bob.ended.catch(() => {});
    await server.reload({ streams, access: await createAccessPolicy({ htpasswd, streams: { cam: { read: ['alice'] } } }) });
    await eventually(() => bobEnded, 5000, 'bob\'s session ended');
    const before = alice.reader.parts.length;
    await alice.reader.waitFor(before + 5, 5000);
    assert.equal((await probe(new URL('stream/cam', url), { auth: BOB })).status, 403);
    // A refusal on recheck is not a failed login: bob's address is not counted towards a lockout.
    assert.doesNotMatch(logger.lines.join('\n'), /SP_ERR_UNAUTHORIZED|TOO_MANY/);
  } finally {
    clearInterval(feed);
    bob.close();
    alice.close();
    await server.close(100);
    await removeFolder(dir);
  }
});
