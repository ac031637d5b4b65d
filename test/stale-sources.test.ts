/**
 * Issue 11, items 2, 4/11, 5/11, 13 and 15: sources that say when they are stale. With real
 * processes: the built CLI, `sh` commands that write real JPEGs and then hang, a camera (a real
 * HTTP server) that a relay pauses and wakes, and `serverpush get --wait`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI, runCli, startCli } from './helpers/cli.ts';
import { eventually, fetchText, makeFolder, openStream, removeFolder, startServer } from './helpers/server.ts';
import { FRAMES, startCamera } from './helpers/camera.ts';
import { freePort } from './helpers/ports.ts';

const FRAME_DIR = fileURLToPath(new URL('./fixtures/frames/', import.meta.url));
const F1 = join(FRAME_DIR, 'frame-1.jpg');
const F2 = join(FRAME_DIR, 'frame-2.jpg');

type Status = { streams: Record<string, Record<string, unknown> & { source: string; command?: { pid: number | null; running: boolean; restarts: number; stalls: number }; latest: { ageSeconds: number; timestamp: number } | null }> };

async function status(base: URL): Promise<Status> {
  return JSON.parse((await fetchText(new URL('status', base))).body) as Status;
}

/** True while a process with this id exists (kill -0). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The processes of a process group, from /proc (the shell and whatever it started). */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(name));
    } catch {
      /* gone meanwhile */
    }
  }
  return members;
}

function count(text: string, pattern: RegExp): number {
  return text.split('\n').filter((line) => pattern.test(line)).length;
}

test('item 2: --watch of a missing path, and the config form, exit 2 with a coded error and no stack', async () => {
  const flag = await runCli(['serve', '--watch', '/nonexistent', '--port', '0']);
  assert.equal(flag.code, 2, flag.stderr);
  assert.match(flag.stderr, /^serverpush: cannot watch \/nonexistent: not found \(SP_ERR_DIR_NOT_FOUND\)\n$/);
  const dir = await makeFolder();
  try {
    const config = join(dir, 'config.json');
    await writeFile(config, JSON.stringify({ streams: { cam: { type: 'watch', path: 'nowhere/cam.jpg' } } }));
    const fromConfig = await runCli(['serve', '--config', config, '--port', '0']);
    assert.equal(fromConfig.code, 2, fromConfig.stderr);
    assert.match(fromConfig.stderr, /cannot watch .*nowhere\/cam\.jpg: not found \(SP_ERR_DIR_NOT_FOUND\)/);
    assert.doesNotMatch(flag.stderr + fromConfig.stderr, /\n\s+at |unexpected error/, 'no stack trace');
  } finally {
    await removeFolder(dir);
  }
});

test('items 4/11: a hung --exec child (frames, then sleep) is reported stalled, logged once, killed with its whole process group and restarted; up again on its next frame', async (t) => {
  const server = await startCli(['--exec', `cat ${F1} ${F2}; sleep 40`, '--source-stall', '1', '--port', '0']);
  t.after(() => server.stop());
  await eventually(async () => (await status(server.url)).streams.default!.source === 'up', 5000, 'the first frames');
  const first = (await status(server.url)).streams.default!.command!;
  assert.equal(first.running, true);
  const pid = first.pid!;
  assert.ok(groupMembers(pid).length >= 2, 'the shell and its sleep run in the command\'s process group');

  await eventually(async () => (await status(server.url)).streams.default!.source === 'stalled', 5000, 'the stall');
  const stalled = (await status(server.url)).streams.default!;
  assert.match(String(stalled['sourceError']), /no frame for 1 s|sent no frame for 1 s/);
  // A snapshot of a stalled source is refused, not the old frame passed off as current.
  const snapshot = await fetch(new URL('snapshot', server.url));
  assert.equal(snapshot.status, 503);
  assert.equal(((await snapshot.json()) as { error: string }).error, 'SP_ERR_SOURCE_DOWN');
  assert.equal(snapshot.headers.get('retry-after'), '1');

  // The hung child and everything it started are gone (SIGTERM to the group), and a new one runs.
  await eventually(() => !alive(pid) && groupMembers(pid).length === 0, 5000, `the hung command (pid ${pid}) and its sleep gone`);
  await eventually(async () => {
    const command = (await status(server.url)).streams.default!.command!;
    return command.restarts >= 1 && command.pid !== null && command.pid !== pid;
  }, 5000, 'a restarted command');
  // The restarted command's frames make the stream up again.
  await eventually(async () => (await status(server.url)).streams.default!.source === 'up', 5000, 'up again after the restart');
  const log = server.stderr();
  assert.match(log, /warn SP_ERR_SOURCE_STALLED stream default: command: no frame for 1 s/);
  // Logged once per stall (each restart that sends frames and hangs again is a new stall), never at every check.
  const stalls = (await status(server.url)).streams.default!.command!.stalls;
  assert.ok(count(log, /SP_ERR_SOURCE_STALLED/) <= stalls, `at most one warning per stall:\n${log}`);
});

test('items 4/11: a silent --stdin is stalled (logged once however long it stays silent), up again on its next frame; --exit-on-eof exits 0 after the viewer got the last frame and the closing delimiter', async (t) => {
  const child = spawn(process.execPath, [CLI, 'serve', '--stdin', '--source-stall', '0.5', '--exit-on-eof', '--port', '0'], { stdio: ['pipe', 'ignore', 'pipe'] });
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => { log += text; });
  await eventually(() => / at (http:\S+\/) /.test(log), 10_000, 'the server to listen');
  const base = new URL(/ at (http:\S+\/) /.exec(log)![1]!);
  child.stdin.write(readFileSync(F1));
  await eventually(async () => (await status(base)).streams.default!.source === 'up', 5000, 'the first frame');
  const viewer = await openStream(new URL('stream', base));
  await viewer.reader.waitFor(1, 5000);
  await eventually(async () => (await status(base)).streams.default!.source === 'stalled', 5000, 'the stall');
  // Silent for three more stall timeouts: still one warning.
  await new Promise((resolve) => setTimeout(resolve, 1600));
  assert.equal(count(log, /SP_ERR_SOURCE_STALLED/), 1, log);
  const input = (await status(base)).streams.default!['input'] as { stalls: number; ended: boolean };
  assert.ok(input.stalls >= 3 && !input.ended, `the stalls are counted: ${JSON.stringify(input)}`);
  child.stdin.write(readFileSync(F2));
  await eventually(async () => (await status(base)).streams.default!.source === 'up', 5000, 'up on the next frame');

  const exited = once(child, 'exit');
  child.stdin.end(readFileSync(F1));
  const [code] = (await exited) as [number];
  assert.equal(code, 0, log);
  await viewer.ended; // the strict reader checks the closing delimiter
  const parts = viewer.reader.parts;
  assert.ok(parts.at(-1)!.body.equals(readFileSync(F1)), 'the last frame reached the viewer');
  assert.match(log, /end of input: ending 1 stream\(s\) and exiting/);
});

test('item 5/11: an idle relay says "idle"; its snapshot wakes it and waits for a fresh frame; a woken upstream that sends nothing gives 503 SP_ERR_STALE_FRAME with Retry-After, also at ?action=snapshot', async (t) => {
  const cam = await startCamera({ scheme: 'basic', username: 'u', password: 'p4ssw0rd' });
  t.after(() => cam.close());
  const { server, url } = await startServer({ streams: { default: { type: 'relay', url: cam.url.href.replace('//', '//u:p4ssw0rd@'), idleTimeoutMs: 300, snapshotMaxAgeMs: 1000 } } });
  t.after(() => server.close());
  await eventually(async () => (await status(url)).streams.default!.latest !== null, 5000, 'the first frame');
  const viewer = await openStream(new URL('stream', url));
  await viewer.reader.waitFor(2, 5000);
  viewer.close();
  await eventually(async () => (await status(url)).streams.default!.source === 'idle', 5000, 'the relay paused, and /status saying so');
  await eventually(() => cam.streaming() === 0, 5000, 'the upstream connection closed');
  await eventually(async () => (await status(url)).streams.default!.latest!.ageSeconds > 1.2, 5000, 'the last frame older than the bound');
  const before = (await status(url)).streams.default!.latest!.timestamp;

  // mjpg-streamer's snapshot URL, as Home Assistant and OctoPrint poll it.
  const fresh = await fetch(new URL('?action=snapshot', url));
  assert.equal(fresh.status, 200);
  const body = Buffer.from(await fresh.arrayBuffer());
  assert.ok(FRAMES.some((frame) => frame.equals(body)), 'a camera frame');
  assert.ok(Number(fresh.headers.get('x-timestamp')) > before, 'a frame taken after the wake, not the one from before the pause');
  assert.equal(fresh.headers.get('age'), '0');
  assert.ok(Math.abs(Date.parse(fresh.headers.get('last-modified')!) - Date.now()) < 3000, 'Last-Modified tells when');

  // Paused again; the camera now hangs (answers, sends nothing): no fresh frame within 5 s.
  await eventually(async () => (await status(url)).streams.default!.source === 'idle', 5000, 'paused again');
  cam.hang = true;
  await eventually(async () => (await status(url)).streams.default!.latest!.ageSeconds > 1.2, 5000, 'the frame older than the bound');
  const started = Date.now();
  const stale = await fetch(new URL('snapshot', url));
  const waited = Date.now() - started;
  assert.equal(stale.status, 503);
  const error = (await stale.json()) as { error: string; message: string };
  assert.equal(error.error, 'SP_ERR_STALE_FRAME');
  assert.match(error.message, /newest is [\d.]+ s old, over the 1 s bound/);
  assert.equal(stale.headers.get('retry-after'), '1');
  assert.ok(stale.headers.get('last-modified'), 'says how old the frame it has is');
  assert.ok(waited >= 4000 && waited < 15_000, `waited for a fresh frame first (${waited} ms)`);
});

test('item 5/11: every snapshot says how old it is; a watched file is current until it changes (no bound), a --stdin frame older than --snapshot-max-age is not', async (t) => {
  const dir = await makeFolder({ 'now.jpg': readFileSync(F1) });
  t.after(() => removeFolder(dir));
  const { server, url } = await startServer({ streams: { default: { type: 'watch', path: join(dir, 'now.jpg') } } });
  t.after(() => server.close());
  await eventually(async () => (await fetch(new URL('snapshot', url))).status === 200, 5000);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const still = await fetch(new URL('snapshot', url));
  assert.equal(still.status, 200, 'a file that has not changed is still the current picture');
  assert.ok(Number(still.headers.get('age')) >= 1, `Age ${still.headers.get('age')}`);
  assert.ok(still.headers.get('last-modified'));

  const piped = await startCli(['--stdin', '--snapshot-max-age', '1', '--source-stall', '0', '--port', '0'], { stdin: `cat ${F1}; sleep 30` });
  t.after(() => piped.stop());
  await eventually(async () => (await fetch(new URL('snapshot', piped.url))).status === 200, 5000, 'the frame');
  await new Promise((resolve) => setTimeout(resolve, 1200));
  const old = await fetch(new URL('snapshot', piped.url));
  assert.equal(old.status, 503);
  assert.equal(((await old.json()) as { error: string }).error, 'SP_ERR_STALE_FRAME');
  assert.equal((await status(piped.url)).streams.default!['snapshotMaxAgeSeconds'], 1);
});

test('item 13: --on-demand exec starts at the first viewer and is really gone --exec-idle seconds after the last one left; a snapshot starts it too', async (t) => {
  const server = await startCli(['--exec', `while true; do cat ${F1}; sleep 0.1; done`, '--on-demand', '--exec-idle', '1', '--port', '0']);
  t.after(() => server.stop());
  const idle = (await status(server.url)).streams.default!;
  assert.equal(idle.source, 'idle');
  assert.deepEqual({ running: idle.command!.running, pid: idle.command!.pid }, { running: false, pid: null }, 'nothing runs for nobody');
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal((await status(server.url)).streams.default!.command!.running, false);

  // The first viewer waits for the command's first frame (no 503).
  const viewer = await openStream(new URL('stream', server.url));
  assert.equal(viewer.response.statusCode, 200);
  await viewer.reader.waitFor(3, 5000);
  const running = (await status(server.url)).streams.default!;
  assert.equal(running.source, 'up');
  const pid = running.command!.pid!;
  assert.ok(alive(pid), 'the command runs');
  viewer.close();
  await eventually(() => !alive(pid) && groupMembers(pid).length === 0, 6000, `the command (pid ${pid}) and its loop gone after the idle timeout`);
  const after = (await status(server.url)).streams.default!;
  assert.equal(after.source, 'idle');
  assert.equal(after.command!.running, false);
  assert.match(server.stderr(), /nobody watched for 1 s; command stopped until someone asks for the stream/);

  const snapshot = await fetch(new URL('snapshot', server.url));
  assert.equal(snapshot.status, 200, 'a snapshot starts it and gets a fresh frame');
  assert.ok(Buffer.from(await snapshot.arrayBuffer()).equals(readFileSync(F1)));
  assert.equal((await status(server.url)).streams.default!.command!.restarts, 1);
});

test('item 15: get --wait retries a refused connection (a server still starting) and a 503 with Retry-After (no frame yet), within its bound', async (t) => {
  const port = await freePort();
  const get = spawn(process.execPath, [CLI, 'get', `http://127.0.0.1:${port}/stream`, '--wait', '20', '--count', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => { if (get.exitCode === null) get.kill('SIGKILL'); });
  let out = '';
  let err = '';
  get.stdout.setEncoding('utf8').on('data', (text: string) => { out += text; });
  get.stderr.setEncoding('utf8').on('data', (text: string) => { err += text; });
  await eventually(() => /connection refused/.test(err), 5000, 'a refused connection, retried');
  // The server comes, its command's first frame 1.5 s later: 503 SP_ERR_NO_FRAME meanwhile.
  const server = await startCli(['--exec', `sleep 1.5; cat ${F1}; sleep 30`, '--port', String(port)]);
  t.after(() => server.stop());
  const [code] = (await once(get, 'exit')) as [number];
  assert.equal(code, 0, err);
  assert.match(err, /HTTP 503 SP_ERR_NO_FRAME; trying again in \d+ ms \(--wait\)/);
  assert.match(out, /^1 image\/jpeg \d+\n$/);

  // Without --wait, and past the bound: the 503 is an error at once.
  const gave = await runCli(['get', new URL('stream/none', server.url).href, '--wait', '0.5']);
  assert.equal(gave.code, 1);
  const refused = await runCli(['get', `http://127.0.0.1:${await freePort()}/stream`, '--wait', '0.5']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /SP_ERR_CONNECTION/);
});

test('items 4/11: --watch with a source stall: a file that stops changing is stalled (logged once), up again at its next version', async (t) => {
  const dir = await makeFolder({ 'now.jpg': readFileSync(F1) });
  t.after(() => removeFolder(dir));
  const { server, url, logger } = await startServer({ streams: { default: { type: 'watch', path: join(dir, 'now.jpg'), sourceStallMs: 800 } } });
  t.after(() => server.close());
  await eventually(async () => (await status(url)).streams.default!.latest !== null, 5000, 'the first version');
  await eventually(async () => (await status(url)).streams.default!.source === 'stalled', 5000, 'the stall');
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.equal(logger.lines.filter((line) => line.startsWith('warn SP_ERR_SOURCE_STALLED')).length, 1, logger.lines.join('\n'));
  assert.match(logger.lines.find((line) => line.includes('SP_ERR_SOURCE_STALLED'))!, /watch .*now\.jpg: no frame for 0\.8 s \(stalled\); waiting for the next frame/);
  await writeFile(join(dir, 'now.jpg'), readFileSync(F2));
  await eventually(async () => (await status(url)).streams.default!.source === 'up', 5000, 'up at the next version');
  assert.ok(((await status(url)).streams.default!['watch'] as { stalls: number }).stalls >= 2, 'stalls counted');
});

test('the new options from a config file, and their refusals: sourceStall, snapshotMaxAge, onDemand, idleTimeout, exitOnEof, upstreamBoundary, a poll stream', async (t) => {
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  const config = join(dir, 'config.json');
  const { loadConfig } = await import('../src/cli/config.ts');
  await writeFile(config, JSON.stringify({ streams: {
    cam: { type: 'exec', command: 'true', onDemand: true, idleTimeout: 5, sourceStall: 0, snapshotMaxAge: 2 },
    pipe: { type: 'stdin', exitOnEof: true, sourceStall: 3 },
    ff: { type: 'relay', url: 'http://127.0.0.1:1/feed', upstreamBoundary: 'ffmpeg' },
    still: { type: 'poll', url: 'http://127.0.0.1:1/snapshot.jpg', interval: 2, username: 'u', passwordFile: 'pw' },
  } }));
  const loaded = await loadConfig(config);
  assert.deepEqual(loaded.streams['cam'], { type: 'exec', command: 'true', onDemand: true, idleTimeoutMs: 5000, sourceStallMs: 0, snapshotMaxAgeMs: 2000 });
  assert.deepEqual(loaded.streams['pipe'], { type: 'stdin', exitOnEof: true, sourceStallMs: 3000 });
  assert.deepEqual(loaded.streams['ff'], { type: 'relay', url: 'http://127.0.0.1:1/feed', upstreamBoundary: 'ffmpeg' });
  assert.deepEqual(loaded.streams['still'], { type: 'poll', url: 'http://127.0.0.1:1/snapshot.jpg', intervalMs: 2000, username: 'u', passwordFile: join(dir, 'pw') });
  for (const [stream, message] of [
    [{ type: 'exec', command: 'x', sourceStall: -1 }, /sourceStall must be a number of seconds/],
    [{ type: 'relay', url: 'http://x/', onDemand: true }, /unknown key "onDemand" for a relay stream/],
    [{ type: 'watch', path: '.', exitOnEof: true }, /unknown key "exitOnEof" for a watch stream/],
    [{ type: 'exec', command: 'x', onDemand: 'yes' }, /onDemand must be true or false/],
  ] as const) {
    await writeFile(config, JSON.stringify({ streams: { a: stream } }));
    await assert.rejects(loadConfig(config), (error: Error & { code?: string }) => error.code === 'SP_ERR_CONFIG' && message.test(error.message));
  }
  // On the command line, an option for another source is refused, never ignored.
  for (const [args, message] of [
    [['--stdin', '--on-demand'], /--on-demand does not apply to --stdin/],
    [['--exec', 'true', '--exec-idle', '5'], /--exec-idle does not apply to --exec/],
    [['--relay', 'http://x/', '--exit-on-eof'], /--exit-on-eof does not apply to --relay/],
    [['--poll', 'http://x/', '--relay-boundary', 'b'], /--relay-boundary does not apply to --poll/],
    [['--exec', 'true', '--source-stall', '-1'], /--source-stall must be a number of seconds/],
  ] as const) {
    const result = await runCli(['serve', ...args, '--port', '0']);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, message);
  }
});

test('items 4/11: a hung command that ignores SIGTERM is killed with SIGKILL 2 s later, its whole process group gone', async (t) => {
  const server = await startCli(['--exec', `trap '' TERM; cat ${F1}; sleep 40`, '--source-stall', '1', '--port', '0']);
  t.after(() => server.stop());
  await eventually(async () => (await status(server.url)).streams.default!.command!.running, 5000, 'the command');
  const pid = (await status(server.url)).streams.default!.command!.pid!;
  await eventually(async () => (await status(server.url)).streams.default!.source === 'stalled', 5000, 'the stall');
  const stalledAt = Date.now();
  // SIGTERM is ignored by the shell and its sleep: still there for a moment, gone after the grace.
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.ok(alive(pid), 'SIGTERM alone did not end it');
  await eventually(() => !alive(pid) && groupMembers(pid).length === 0, 6000, `pid ${pid} and its group killed`);
  const took = Date.now() - stalledAt;
  assert.ok(took >= 1500, `SIGKILL came after the 2 s grace (${took} ms after the stall)`);
  assert.match(server.stderr(), /stalled command killed by SIGKILL/);
});
