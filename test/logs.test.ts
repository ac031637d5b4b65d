/**
 * Structured logs (issue 13): `--log-format json` (the default when stderr is not a terminal)
 * writes one JSON object a line, every line parses and has its fields; one line per viewer
 * session at its end; the "serving at" line whatever the level; secrets redacted in JSON too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { get } from 'node:http';
import { runCli, startCli, type RunningServer } from './helpers/cli.ts';
import { openStream, eventually, makeFolder, removeFolder, EXAMPLES } from './helpers/server.ts';

/** Every line of the server's stderr, parsed; fails on a line that is not a JSON object. */
function jsonLines(server: RunningServer): Array<Record<string, unknown>> {
  return server.stderr().split('\n').filter((line) => line !== '').map((line) => {
    let parsed: unknown;
    assert.doesNotThrow(() => { parsed = JSON.parse(line); }, `not JSON: ${line}`);
    assert.ok(parsed && typeof parsed === 'object' && !Array.isArray(parsed), `not an object: ${line}`);
    return parsed as Record<string, unknown>;
  });
}

/** Reads `count` parts of a stream with a given User-Agent, then leaves. */
async function watch(url: URL, count: number, userAgent: string): Promise<number> {
  const stream = await openStream(url, { 'User-Agent': userAgent });
  await stream.reader.waitFor(count, 5000);
  stream.close();
  return stream.reader.parts.length;
}

test('--log-format json: every line is a JSON object with time, level, msg; one session line per viewer with every field; secrets redacted', async (t) => {
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  const config = join(dir, 'serverpush.json');
  await writeFile(config, JSON.stringify({
    streams: {
      default: { type: 'slideshow', dir: EXAMPLES, interval: 0.05, loop: true },
      once: { type: 'slideshow', dir: EXAMPLES, interval: 0.02 },
      // A camera command that fails, quoting its URL with a password on stderr.
      cam: { type: 'exec', command: 'echo "cannot open rtsp://admin:hunter2@camera/live" >&2; exit 1', restartDelay: 5 },
    },
  }));
  const server = await startCli(['--config', config, '--port', '0', '--log-format', 'json']);
  t.after(() => server.stop());
  const got = await watch(new URL('stream?token=S3cretSignature', server.url), 3, 'logs-test/1.0 (json)');
  const finished = await openStream(new URL('stream/once', server.url));
  await finished.ended;
  await eventually(() => jsonLines(server).filter((line) => line['event'] === 'session').length === 2, 5000, 'two session lines');
  await eventually(() => /SP_ERR_SOURCE_FAILED/.test(server.stderr()), 5000, 'the failed command logged');
  assert.equal(await server.stop(), 0);

  const lines = jsonLines(server);
  for (const line of lines) {
    assert.match(String(line['time']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, `time of ${JSON.stringify(line)}`);
    assert.ok(['info', 'warn', 'error'].includes(String(line['level'])), `level of ${JSON.stringify(line)}`);
    assert.equal(typeof line['msg'], 'string');
    assert.equal(line['pid'], server.child.pid);
    if (line['level'] !== 'info') assert.match(String(line['code']), /^SP_ERR_[A-Z_]+$/, `a warning or error has its code: ${JSON.stringify(line)}`);
  }
  const listening = lines.find((line) => line['event'] === 'listening');
  assert.ok(listening, 'the serving-at line');
  assert.equal(listening['url'], server.url.href);

  const sessions = lines.filter((line) => line['event'] === 'session');
  const left = sessions.find((line) => line['stream'] === 'default')!;
  assert.equal(left['reason'], 'disconnected');
  assert.equal(left['client'], '127.0.0.1');
  assert.equal(left['user'], null);
  assert.equal(left['userAgent'], 'logs-test/1.0 (json)');
  assert.ok(Number(left['frames']) >= got, `frames ${left['frames']} >= ${got} received`);
  assert.ok(Number(left['bytes']) > 0);
  assert.equal(typeof left['durationMs'], 'number');
  assert.equal(left['skipped'], 0);
  const done = sessions.find((line) => line['stream'] === 'once')!;
  assert.equal(done['reason'], 'finished');
  assert.equal(done['frames'], finished.reader.parts.length);
  assert.ok(Number(done['durationMs']) >= 9 * 20 - 20, `the show of 10 documents 20 ms apart lasted ${done['durationMs']} ms`);

  const failed = lines.find((line) => line['code'] === 'SP_ERR_SOURCE_FAILED')!;
  assert.match(String(failed['msg']), /rtsp:\/\/admin:\*\*\*@camera\/live/);
  assert.doesNotMatch(server.stderr(), /hunter2/, 'no password in any line');
  assert.doesNotMatch(server.stderr(), /S3cretSignature/, 'no query (a signed link) in any line');
});

test('JSON lines are the default when stderr is not a terminal; --quiet and --log-level error still show the serving-at line', async (t) => {
  const byDefault = await startCli(['--port', '0', EXAMPLES], { env: { SERVERPUSH_LOG_FORMAT: '' } });
  t.after(() => byDefault.stop());
  assert.equal(jsonLines(byDefault).find((line) => line['event'] === 'listening')?.['url'], byDefault.url.href);
  await byDefault.stop();

  const dir = await makeFolder({ 'a.txt': 'a', 'b.txt': '' });
  t.after(() => removeFolder(dir));
  for (const args of [['--quiet'], ['--log-level', 'error']]) {
    const server = await startCli(['--port', '0', '--interval', '0.05', '--log-format', 'json', ...args, dir]);
    const stream = await openStream(new URL('stream', server.url));
    await stream.ended;
    await server.stop();
    const lines = jsonLines(server);
    assert.ok(lines.some((line) => line['event'] === 'listening'), `${args.join(' ')}: the serving-at line`);
    assert.ok(!lines.some((line) => line['event'] === 'session'), `${args.join(' ')}: no info lines`);
    const warned = lines.some((line) => line['code'] === 'SP_ERR_EMPTY_DOCUMENT');
    assert.equal(warned, args[0] === '--quiet', `${args.join(' ')}: the empty document's warning`);
  }
});

test('--log-format text: the session line as key=value', async (t) => {
  const server = await startCli(['--port', '0', '--interval', '0.05', '--loop', '--log-format', 'text', EXAMPLES]);
  t.after(() => server.stop());
  await new Promise<void>((resolve, reject) => {
    const request = get(new URL('stream', server.url), { headers: { 'User-Agent': 'curl/8 (text test)' } }, (response) => {
      response.once('data', () => { request.destroy(); resolve(); });
    });
    request.on('error', reject);
  });
  await eventually(() => /event=session/.test(server.stderr()), 5000, 'the session line');
  const line = server.stderr().split('\n').find((each) => each.includes('event=session'))!;
  assert.match(line, /^\S+ info stream default: viewer 127\.0\.0\.1 left after \d+\.\d s \(disconnected\), \d+ frames event=session stream=default client=127\.0\.0\.1 user=null userAgent="curl\/8 \(text test\)" durationMs=\d+ frames=\d+ bytes=\d+ skipped=0 reason=disconnected$/);
});

test('with JSON logs a fatal error is a JSON line too: a port in use exits 1, a folder that is missing exits 2', async (t) => {
  const first = await startCli(['--port', '0', EXAMPLES]);
  t.after(() => first.stop());
  const taken = await runCli(['serve', EXAMPLES, '--port', first.url.port, '--log-format', 'json']);
  assert.equal(taken.code, 1);
  const lines = taken.stderr.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.deepEqual(lines.map((line) => [line['level'], line['code']]), [['error', 'SP_ERR_ADDRESS_IN_USE']]);
  assert.match(String(lines[0]!['msg']), /already in use/);
  const missing = await runCli(['serve', '/nonexistent/serverpush-folder', '--log-format', 'json']);
  assert.equal(missing.code, 2);
  assert.equal((JSON.parse(missing.stderr) as Record<string, unknown>)['code'], 'SP_ERR_DIR_NOT_FOUND');
});
