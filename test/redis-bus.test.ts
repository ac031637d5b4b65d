/**
 * The Redis bus (issue 14) with a real redis-server and real `serverpush serve` processes (the
 * built CLI): frames pushed into one process reach viewers of another, exactly one process runs a
 * source, an owner killed with SIGKILL is replaced, Redis going away and coming back, a slow
 * subscriber cut by Redis's output-buffer limit, secrets, and no Redis code without `--redis`.
 * Timing bounds are generous (shared machine); the speed figures are in bench/redis-fanout.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedis, type RedisProcess } from './helpers/redis.ts';
import { runCli, startCli, type RunningServer } from './helpers/cli.ts';
import { eventually, openStream, sleep, type OpenStream } from './helpers/server.ts';
import { readSeq } from './helpers/camera-writer.ts';
import { needs } from './helpers/tools.ts';

const PUMP = fileURLToPath(new URL('./helpers/frame-pump.mjs', import.meta.url));
const REDIS = needs('redis-server');
let tags = 0;

/** A tag unique to one test, carried in its pumps' command lines. */
function newTag(): string {
  return `sp-redis-test-${process.pid}-${++tags}`;
}

function pump(tag: string, fps = 30, pad = 0): string {
  return `${process.execPath} ${PUMP} ${fps} ${pad} ${tag}`;
}

/** Processes whose command line holds `tag` (the pumps of one test), read from /proc. */
function pumpsRunning(tag: string): number {
  let count = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
      // The pump itself (node PUMP …), not the shell that started it nor a server whose --exec names it.
      if (argv[1] === PUMP && argv.includes(tag)) count++;
    } catch { /* gone */ }
  }
  return count;
}

interface BusStatus {
  connected: boolean;
  reconnects: number;
  streams: Record<string, { owner: boolean; subscribed: boolean; framesIn: number; framesOut: number; framesTooLarge: number; lagP99Ms: number }>;
}

async function status(server: RunningServer): Promise<{ bus: BusStatus; streams: Record<string, { viewers: number; source: string }> }> {
  return (await fetch(new URL('status', server.url))).json() as never;
}

async function owners(servers: RunningServer[]): Promise<RunningServer[]> {
  const states = await Promise.all(servers.map(async (server) => (await status(server)).bus.streams['default']!.owner));
  return servers.filter((_, i) => states[i]);
}

function serve(redis: RedisProcess, args: string[], env: Record<string, string> = {}): Promise<RunningServer> {
  return startCli(['--port', '0', '--redis', redis.url, ...args], { env });
}

/** The sequence numbers the pump stamped into the parts a viewer got. */
function seqs(stream: OpenStream, from = 0): number[] {
  return stream.reader.parts.slice(from).map((part) => readSeq(part.body) ?? -1);
}

async function cleanUp(servers: RunningServer[], redis: RedisProcess | undefined, viewers: OpenStream[] = []): Promise<void> {
  for (const viewer of viewers) viewer.close();
  await Promise.all(servers.map((server) => server.stop('SIGKILL')));
  await redis?.kill();
}

test('exactly one of three processes with the same config runs the source; viewers of the others get its frames, a late joiner at once', REDIS, async (t) => {
  const tag = newTag();
  const redis = await startRedis();
  const servers: RunningServer[] = [];
  const viewers: OpenStream[] = [];
  try {
    for (let i = 0; i < 3; i++) servers.push(await serve(redis, ['--exec', pump(tag)]));
    await eventually(async () => (await owners(servers)).length === 1, 5000, 'one owner');
    // Settled: one owner, one pump, for a while.
    for (let i = 0; i < 10; i++) {
      assert.equal((await owners(servers)).length, 1, 'one process holds the lease');
      assert.equal(pumpsRunning(tag), 1, 'one source command runs');
      await sleep(100);
    }
    const [owner] = await owners(servers);
    const others = servers.filter((server) => server !== owner);
    const viewer = await openStream(new URL('stream', others[0]!.url));
    viewers.push(viewer);
    await viewer.reader.waitFor(40, 15_000);
    const got = seqs(viewer);
    for (let i = 1; i < got.length; i++) assert.ok(got[i]! > got[i - 1]!, `frames in order: ${got.join(',')}`);
    assert.ok(got[got.length - 1]! - got[0]! <= got.length + 3, `few frames skipped on loopback: ${got.join(',')}`);
    // X-Timestamp is when the owner took the frame; the viewer got it in another process.
    const lags = viewer.reader.parts.slice(5).map((part) => part.receivedAt - Number(part.headers['x-timestamp']) * 1000).sort((a, b) => a - b);
    const p99 = lags[Math.floor(lags.length * 0.99)]!;
    t.diagnostic(`publish → viewer on another process: p50 ${lags[Math.floor(lags.length / 2)]} ms, p99 ${p99} ms over ${lags.length} frames`);
    assert.ok(p99 < 500, `publish → viewer p99 ${p99} ms on loopback (bench/redis-fanout.ts measures it properly)`);
    const seen = await status(others[0]!);
    assert.equal(seen.bus.connected, true);
    assert.equal(seen.bus.streams['default']!.subscribed, true);
    assert.ok(seen.bus.streams['default']!.framesIn >= 40);
    assert.ok((await status(owner!)).bus.streams['default']!.framesOut >= 40);
    // The same figures in /metrics.
    const metrics = await (await fetch(new URL('metrics', others[0]!.url))).text();
    assert.match(metrics, /^serverpush_bus_connected 1$/m);
    const framesIn = Number(/^serverpush_bus_frames_in_total\{stream="default"\} (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(framesIn >= 40, `serverpush_bus_frames_in_total ${framesIn}`);
    assert.match(metrics, /^serverpush_bus_lag_p99_seconds\{stream="default"\} [0-9.e-]+$/m);

    // A late joiner on the third process, which had no viewer and no subscription: its first
    // frame comes from the latest-frame key at once, and is the newest.
    const newestBefore = seqs(viewer).at(-1)!;
    const late = await openStream(new URL('stream', others[1]!.url));
    viewers.push(late);
    const [first] = await late.reader.waitFor(1, 5000);
    assert.ok(first!.receivedAt - late.connectedAt < 1500, `first frame after ${first!.receivedAt - late.connectedAt} ms`);
    assert.ok(readSeq(first!.body)! >= newestBefore, `the newest frame (${readSeq(first!.body)} ≥ ${newestBefore}), no backlog`);
    await late.reader.waitFor(10, 5000);
    // Served exactly as a local stream: ?fps caps this viewer's rate on the follower.
    const capped = await openStream(new URL('stream?fps=5', others[0]!.url));
    viewers.push(capped);
    await sleep(2000);
    const cappedCount = capped.reader.parts.length;
    assert.ok(cappedCount >= 5 && cappedCount <= 13, `?fps=5 for 2 s: ${cappedCount} parts`);
    // A snapshot from a process with no viewers is the newest frame too.
    const snapshot = await fetch(new URL('snapshot', others[1]!.url));
    assert.equal(snapshot.status, 200);
    assert.ok(readSeq(new Uint8Array(await snapshot.arrayBuffer()))! >= newestBefore);
  } finally {
    await cleanUp(servers, redis, viewers);
  }
});

test('the owner killed with SIGKILL: another process takes the source over within 5 s, viewers elsewhere keep their connections', REDIS, async (t) => {
  const tag = newTag();
  const redis = await startRedis();
  const servers: RunningServer[] = [];
  const viewers: OpenStream[] = [];
  try {
    for (let i = 0; i < 3; i++) servers.push(await serve(redis, ['--exec', pump(tag)]));
    await eventually(async () => (await owners(servers)).length === 1, 5000, 'one owner');
    const [owner] = await owners(servers);
    const survivors = servers.filter((server) => server !== owner);
    for (const server of survivors) viewers.push(await openStream(new URL('stream', server.url)));
    for (const viewer of viewers) await viewer.reader.waitFor(10, 10_000);
    const killedAt = Date.now();
    await owner!.stop('SIGKILL');
    // The first frame of the new owner's source (frames in flight at the kill arrive within ms).
    const tookOver = async (viewer: OpenStream) => {
      await eventually(() => viewer.reader.parts.some((part) => part.receivedAt > killedAt + 200), 10_000, 'a frame after the kill');
      return viewer.reader.parts.find((part) => part.receivedAt > killedAt + 200)!.receivedAt - killedAt;
    };
    const delays = await Promise.all(viewers.map(tookOver));
    t.diagnostic(`frames again ${delays.join(' and ')} ms after the owner was killed`);
    for (const delay of delays) assert.ok(delay < 5000, `frames again ${delay} ms after the owner was killed`);
    const counts = viewers.map((viewer) => viewer.reader.parts.length);
    await eventually(() => viewers.every((viewer, i) => viewer.reader.parts.length > counts[i]! + 10), 5000, 'frames keep coming');
    for (const viewer of viewers) assert.equal(viewer.response.complete, false, 'the viewer kept its connection');
    assert.equal((await owners(survivors)).length, 1, 'one new owner');
    await eventually(() => pumpsRunning(tag) === 1, 5000, 'one source command (the dead owner\'s exited)');
  } finally {
    await cleanUp(servers, redis, viewers);
  }
});

test('Redis stopped for 5 s and started again: viewers keep their connections and last frame, then resume without reconnecting', REDIS, async (t) => {
  const tag = newTag();
  const redis = await startRedis();
  const servers: RunningServer[] = [];
  const viewers: OpenStream[] = [];
  try {
    servers.push(await serve(redis, ['--exec', pump(tag)]));
    await eventually(async () => (await owners(servers)).length === 1, 5000, 'the first process owns the source');
    servers.push(await serve(redis, ['--exec', pump(tag)]));
    const [owner, follower] = servers as [RunningServer, RunningServer];
    const onOwner = await openStream(new URL('stream', owner.url));
    const onFollower = await openStream(new URL('stream', follower.url));
    viewers.push(onOwner, onFollower);
    await onFollower.reader.waitFor(10, 10_000);
    await redis.kill();
    const stoppedAt = Date.now();
    await eventually(async () => !(await status(follower)).bus.connected, 3000, 'the follower sees the bus down');
    await sleep(5000 - (Date.now() - stoppedAt));
    const atRestart = onFollower.reader.parts.length;
    // The owner's own viewers are served by its source all along; the follower's wait.
    assert.ok(onOwner.reader.parts.some((part) => part.receivedAt > stoppedAt + 3000), 'the owner\'s viewer got frames while Redis was away');
    assert.ok(!onFollower.reader.parts.some((part) => part.receivedAt > stoppedAt + 1000), 'no frame reached the follower while Redis was away');
    await redis.start();
    const restartedAt = Date.now();
    await eventually(() => onFollower.reader.parts.length > atRestart + 10, 10_000, 'frames on the follower again');
    const resumedAfter = onFollower.reader.parts[atRestart]!.receivedAt - restartedAt;
    t.diagnostic(`the follower's viewer had frames again ${resumedAfter} ms after Redis was back`);
    const follows = await status(follower);
    assert.equal(follows.bus.connected, true);
    assert.ok(follows.bus.reconnects >= 1);
    assert.equal(follows.streams['default']!.viewers, 1, 'the same viewer, never reconnected');
    for (const viewer of viewers) assert.equal(viewer.response.complete, false);
    assert.match(follower.stderr(), /SP_ERR_BUS_DOWN/);
    assert.match(follower.stderr(), /connected again/);
    assert.equal((await owners(servers)).length, 1, 'still one owner');
    assert.equal(pumpsRunning(tag), 1);
    assert.ok(resumedAfter < 5000, `resumed ${resumedAfter} ms after Redis was back`);
  } finally {
    await cleanUp(servers, redis, viewers);
  }
});

test('a subscriber cut by Redis\'s pubsub output-buffer limit reconnects and catches up with the newest frame', REDIS, async () => {
  const tag = newTag();
  const redis = await startRedis();
  const servers: RunningServer[] = [];
  const viewers: OpenStream[] = [];
  try {
    await redis.command(['CONFIG', 'SET', 'client-output-buffer-limit', 'pubsub 256kb 0 0']);
    servers.push(await serve(redis, ['--exec', pump(tag, 30, 100_000)]));
    await eventually(async () => (await owners(servers)).length === 1, 5000, 'the first process owns the source');
    servers.push(await serve(redis, ['--exec', pump(tag, 30, 100_000)]));
    const [owner, slow] = servers as [RunningServer, RunningServer];
    const onOwner = await openStream(new URL('stream', owner.url));
    const onSlow = await openStream(new URL('stream', slow.url));
    viewers.push(onOwner, onSlow);
    await onSlow.reader.waitFor(5, 10_000);
    // The slow process takes nothing for 3 s (SIGSTOP): ~9 MB of frames pile up for it.
    slow.child.kill('SIGSTOP');
    await sleep(3000);
    const clients = String(await redis.command(['CLIENT', 'LIST']));
    assert.equal((clients.match(/name=serverpush-sub/g) ?? []).length, 1, `Redis cut the stopped subscriber:\n${clients}`);
    const before = onSlow.reader.parts.length;
    slow.child.kill('SIGCONT');
    const resumedAt = Date.now();
    const newest = seqs(onOwner).at(-1)!;
    await eventually(() => seqs(onSlow, before).some((seq) => seq >= newest), 5000, `the slow process's viewer gets frame ${newest} or newer`);
    const caughtUp = onSlow.reader.parts.slice(before).find((part) => readSeq(part.body)! >= newest)!;
    assert.ok(caughtUp.receivedAt - resumedAt < 3000, `caught up ${caughtUp.receivedAt - resumedAt} ms after it ran again`);
    await eventually(async () => (await status(slow)).bus.reconnects >= 1, 5000, 'the slow process reconnected');
    assert.equal(onSlow.response.complete, false, 'its viewer kept the connection');
  } finally {
    servers[1]?.child.kill('SIGCONT');
    await cleanUp(servers, redis, viewers);
  }
});

test('a frame over --redis-max-frame-bytes stays in its process, with a warning', REDIS, async () => {
  const tag = newTag();
  const redis = await startRedis();
  const servers: RunningServer[] = [];
  const viewers: OpenStream[] = [];
  try {
    servers.push(await serve(redis, ['--exec', pump(tag, 10, 100_000), '--redis-max-frame-bytes', '50000']));
    await eventually(async () => (await owners(servers)).length === 1, 5000, 'the first process owns the source');
    servers.push(await serve(redis, ['--exec', pump(tag, 10, 100_000), '--redis-max-frame-bytes', '50000']));
    const onOwner = await openStream(new URL('stream', servers[0]!.url));
    viewers.push(onOwner);
    await onOwner.reader.waitFor(5, 10_000);
    const elsewhere = await fetch(new URL('stream', servers[1]!.url));
    assert.equal(elsewhere.status, 503);
    assert.equal(((await elsewhere.json()) as { error: string }).error, 'SP_ERR_NO_FRAME');
    assert.match(servers[0]!.stderr(), /SP_ERR_BUS_FRAME_TOO_LARGE stream default: a frame of \d+ bytes is over the bus's 50000-byte limit/);
    assert.equal((servers[0]!.stderr().match(/SP_ERR_BUS_FRAME_TOO_LARGE/g) ?? []).length, 1, 'warned once, not per frame');
    assert.ok((await status(servers[0]!)).bus.streams['default']!.framesTooLarge >= 5);
  } finally {
    await cleanUp(servers, redis, viewers);
  }
});

test('Redis\'s password comes from a file or the environment, never argv, and shows nowhere', REDIS, async () => {
  const password = 'redis-Secret-7f3a9c';
  const tag = newTag();
  const redis = await startRedis({ requirePass: password });
  const dir = await mkdtemp(join(tmpdir(), 'sp-redis-'));
  const servers: RunningServer[] = [];
  const viewers: OpenStream[] = [];
  try {
    const file = join(dir, 'redis-password');
    await writeFile(file, `${password}\n`);
    servers.push(await serve(redis, ['--exec', pump(tag), '--redis-password-file', file]));
    await eventually(async () => (await owners(servers)).length === 1, 5000, 'the first process owns the source');
    servers.push(await serve(redis, ['--exec', pump(tag)], { SERVERPUSH_REDIS_PASSWORD: password }));
    const viewer = await openStream(new URL('stream', servers[1]!.url));
    viewers.push(viewer);
    await viewer.reader.waitFor(5, 10_000);
    for (const server of servers) {
      const shown = [server.stderr(), JSON.stringify(await status(server)), readFileSync(`/proc/${server.child.pid}/cmdline`, 'latin1')].join('\n');
      assert.ok(!shown.includes(password), 'the password is in no log line, no /status, no argv');
    }
    // A password on the command line is refused (without echoing it); a wrong one is a clear error.
    const inArgv = await runCli(['serve', '--exec', pump(tag), '--redis', `redis://:${password}@127.0.0.1:${redis.port}/0`]);
    assert.equal(inArgv.code, 2);
    assert.match(inArgv.stderr, /no password on the command line.*--redis-password-file/);
    assert.ok(!inArgv.stderr.includes(password));
    await writeFile(file, 'wrong-password-123\n');
    const wrong = await runCli(['serve', '--port', '0', '--exec', pump(tag), '--redis', redis.url, '--redis-password-file', file], { timeoutMs: 15_000 });
    assert.equal(wrong.code, 2, wrong.stderr);
    assert.match(wrong.stderr, /refused the credentials.*SP_ERR_CONFIG/);
    assert.ok(!wrong.stderr.includes('wrong-password-123'));
  } finally {
    await cleanUp(servers, redis, viewers);
    await rm(dir, { recursive: true, force: true });
  }
});

test('without --redis no Redis code is loaded; with it, it is', REDIS, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sp-redis-'));
  const redis = await startRedis();
  try {
    // A module hook that records every module the process loads.
    const hook = join(dir, 'hook.mjs');
    const log = join(dir, 'loaded.txt');
    await writeFile(join(dir, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) { appendFileSync(${JSON.stringify(log)}, url + '\\n'); return next(url, context); }\n`);
    await writeFile(hook, `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${join(dir, 'hooks.mjs')}`)});\n`);
    const loaded = async (args: string[]) => {
      await writeFile(log, '');
      const server = await startCli(['--port', '0', '--stdin', ...args], { prefix: [] , nodeArgs: ['--import', hook] });
      await server.stop();
      return readFileSync(log, 'utf8');
    };
    const without = await loaded([]);
    assert.match(without, /server\/server\.js/, 'the hook saw the server load');
    assert.doesNotMatch(without, /@redis|\/bus\/redis-bus\.js|\/bus\/stream-link\.js/);
    const withBus = await loaded(['--redis', redis.url]);
    assert.match(withBus, /@redis\/client/);
    assert.match(withBus, /\/bus\/redis-bus\.js/);
  } finally {
    await redis.kill();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a relay runs in one process and pulls while some process, not only its own, has viewers', REDIS, async () => {
  const tag = newTag();
  const redis = await startRedis();
  const upstream = await startCli(['--port', '0', '--exec', pump(tag)]);
  const servers: RunningServer[] = [];
  const viewers: OpenStream[] = [];
  const pulling = async () => ((await fetch(new URL('status', upstream.url))).json() as Promise<{ clients: number }>).then((s) => s.clients);
  try {
    const args = ['--relay', new URL('stream', upstream.url).href, '--relay-idle', '1'];
    servers.push(await serve(redis, args));
    await eventually(async () => (await owners(servers)).length === 1, 5000, 'the first process owns the relay');
    servers.push(await serve(redis, args));
    const [owner, other] = servers as [RunningServer, RunningServer];
    // Nobody watches: the relay lets the upstream go after its idle time.
    await eventually(async () => (await pulling()) === 0, 8000, 'the idle relay lets go');
    // A viewer on the other process: the owner's relay pulls again, and keeps pulling past its idle time.
    const viewer = await openStream(new URL('stream', other.url)).catch(async () => {
      await sleep(1000); // 503 while the relay reconnects (Retry-After: 1), as a local relay
      return openStream(new URL('stream', other.url));
    });
    viewers.push(viewer);
    await viewer.reader.waitFor(10, 10_000);
    await sleep(2500);
    assert.equal(await pulling(), 1, 'one upstream connection, from the owner only');
    assert.equal((await status(owner)).streams['default']!.viewers, 0, 'no viewer on the owner itself');
    const got = viewer.reader.parts.length;
    await eventually(() => viewer.reader.parts.length > got + 20, 5000, 'frames keep coming');
    // The last viewer leaves: the relay lets go again.
    viewer.close();
    await eventually(async () => (await pulling()) === 0, 8000, 'the relay lets go once no process has viewers');
  } finally {
    await cleanUp([...servers, upstream], redis, viewers);
  }
});

test('a process started while Redis is not there serves, and joins the bus once Redis comes', REDIS, async () => {
  const tag = newTag();
  const redis = await startRedis();
  await redis.kill();
  const servers: RunningServer[] = [];
  const viewers: OpenStream[] = [];
  try {
    const startedAt = Date.now();
    servers.push(await serve(redis, ['--exec', pump(tag)]));
    servers.push(await serve(redis, ['--exec', pump(tag)]));
    assert.ok(Date.now() - startedAt < 15_000, 'both started without Redis');
    for (const server of servers) assert.match(server.stderr(), /SP_ERR_BUS_DOWN redis: cannot reach redis:\/\/127\.0\.0\.1:\d+\/0 yet/);
    assert.equal((await status(servers[0]!)).bus.connected, false);
    assert.equal((await fetch(new URL('stream', servers[1]!.url))).status, 503, 'no frame anywhere yet');
    await redis.start();
    await eventually(async () => (await owners(servers)).length === 1, 8000, 'one owner once Redis is there');
    const [owner] = await owners(servers);
    const follower = servers.find((server) => server !== owner)!;
    await eventually(async () => (await fetch(new URL('snapshot', follower.url))).status === 200, 5000, 'a frame on the follower');
    const viewer = await openStream(new URL('stream', follower.url));
    viewers.push(viewer);
    await viewer.reader.waitFor(10, 10_000);
    assert.equal(pumpsRunning(tag), 1);
  } finally {
    await cleanUp(servers, redis, viewers);
  }
});

test('the owner\'s source going down is seen by the other processes: their new viewers get 503 SP_ERR_SOURCE_DOWN, as with a local stream', REDIS, async () => {
  const tag = newTag();
  const redis = await startRedis();
  const dir = await mkdtemp(join(tmpdir(), 'sp-redis-'));
  const servers: RunningServer[] = [];
  try {
    // A command that sends ~10 frames and exits; restarted only after 30 s.
    const config = join(dir, 'config.json');
    await writeFile(config, JSON.stringify({ redis: redis.url, streams: { default: { type: 'exec', command: `${pump(tag)} | head -c 60000`, restartDelay: 30 } } }));
    servers.push(await startCli(['--port', '0', '--config', config]));
    await eventually(async () => (await owners(servers)).length === 1, 5000, 'the first process owns the source');
    servers.push(await startCli(['--port', '0', '--config', config]));
    const follower = servers[1]!;
    await eventually(async () => (await status(servers[0]!)).streams['default']!.source === 'down', 10_000, 'the command exited');
    await eventually(async () => (await status(follower)).streams['default']!.source === 'down', 5000, 'the follower sees the source down');
    const answer = await fetch(new URL('stream', follower.url));
    assert.equal(answer.status, 503);
    const body = (await answer.json()) as { error: string; message: string };
    assert.equal(body.error, 'SP_ERR_SOURCE_DOWN');
    assert.match(body.message, /command/);
  } finally {
    await cleanUp(servers, redis);
    await rm(dir, { recursive: true, force: true });
  }
});

test('an owner stopped cleanly (SIGTERM) releases its lease: another process takes over at once', REDIS, async () => {
  const tag = newTag();
  const redis = await startRedis();
  const servers: RunningServer[] = [];
  const viewers: OpenStream[] = [];
  try {
    servers.push(await serve(redis, ['--exec', pump(tag)]));
    await eventually(async () => (await owners(servers)).length === 1, 5000, 'the first process owns the source');
    servers.push(await serve(redis, ['--exec', pump(tag)]));
    const [owner, follower] = servers as [RunningServer, RunningServer];
    const viewer = await openStream(new URL('stream', follower.url));
    viewers.push(viewer);
    await viewer.reader.waitFor(5, 10_000);
    assert.equal(await owner.stop('SIGTERM'), 0);
    const exitedAt = Date.now();
    // Without the release the lease would run out 2.5-3 s after the owner's last renewal.
    await eventually(async () => (await owners([follower])).length === 1, 3000, 'the follower took the lease');
    const tookOver = Date.now() - exitedAt;
    assert.ok(tookOver < 2000, `taken over ${tookOver} ms after the owner exited, sooner than its lease would have run out`);
    await eventually(() => viewer.reader.parts.some((part) => part.receivedAt > exitedAt + 200), 5000, 'frames from the new owner');
    assert.equal(await redis.command(['EXISTS', 'serverpush:{default}:watchers']), 1, 'the follower\'s presence is there');
    assert.equal(viewer.response.complete, false);
  } finally {
    await cleanUp(servers, redis, viewers);
  }
});

test('a process that finds its lease held by another stops its source', REDIS, async () => {
  const tag = newTag();
  const redis = await startRedis();
  const servers: RunningServer[] = [];
  try {
    servers.push(await serve(redis, ['--exec', pump(tag)]));
    await eventually(async () => (await owners(servers)).length === 1, 5000, 'it owns the source');
    await eventually(() => pumpsRunning(tag) === 1, 3000, 'its command runs');
    // Another holder (as after a partition): the owner's next renewal fails.
    await redis.command(['SET', 'serverpush:{default}:lease', 'someone-else', 'PX', '3000']);
    await eventually(() => /SP_ERR_LEASE_LOST stream default: stopped the source here: another process holds the lease/.test(servers[0]!.stderr()), 3000, 'the loss logged');
    await eventually(() => pumpsRunning(tag) === 0, 3000, 'its command stopped');
    assert.equal((await owners(servers)).length, 0);
    // Once that lease runs out, the process takes the source again.
    await eventually(async () => (await owners(servers)).length === 1, 6000, 'the lease taken again');
    await eventually(() => pumpsRunning(tag) === 1, 3000, 'the command runs again');
    assert.equal((await status(servers[0]!)).bus.streams['default']!.owner, true);
  } finally {
    await cleanUp(servers, redis);
  }
});
