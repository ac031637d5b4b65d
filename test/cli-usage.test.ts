/**
 * Issue 11, defects 6 and 7: options that do not apply are refused, never silently ignored, and
 * every usage error says what is wrong in serverpush's words, with one line of help — through
 * the built CLI, as a user runs it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { readdir } from 'node:fs/promises';
import { runCli, startCli } from './helpers/cli.ts';
import { EXAMPLES, makeFolder, removeFolder, startServer, openStream, eventually } from './helpers/server.ts';

const SERVE_HINT = 'Run `serverpush serve --help` for the options.';

/** Runs `serverpush ARGS`, expects exit 2 with the message and the one-line hint, nothing else. */
async function refused(args: string[], message: RegExp): Promise<void> {
  const result = await runCli(args);
  assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 2, `the error and one line, not the whole help:\n${result.stderr}`);
  assert.match(lines[0]!, /^serverpush: /);
  assert.match(lines[0]!, message, args.join(' '));
  assert.equal(lines[1], SERVE_HINT);
  assert.doesNotMatch(result.stderr, /Usage:|ambiguous|after '--'/);
  assert.equal(result.stdout, '');
}

test('a per-client slideshow refuses --drop-duplicates and --serve-last (they apply to live streams, also DIR --sync)', async (t) => {
  await refused(['serve', EXAMPLES, '--drop-duplicates'], /^serverpush: --drop-duplicates does not apply to a slideshow per client \(DIR; with --sync it is a live stream\)$/);
  await refused(['serve', EXAMPLES, '--serve-last'], /--serve-last does not apply to a slideshow per client/);
  await refused(['serve', '--drop-duplicates', '--serve-last'], /--drop-duplicates, --serve-last do not apply to a slideshow per client \(the bundled examples;/);
  // With --sync they apply: the server starts.
  const server = await startCli([EXAMPLES, '--sync', '--drop-duplicates', '--serve-last', '--port', '0']);
  t.after(() => server.stop());
  // A synced show is a live stream: served once its first document is out.
  await eventually(async () => (await fetch(new URL('snapshot', server.url))).status === 200, 5000, 'the first document');
  const stream = await openStream(new URL('stream', server.url));
  await stream.reader.waitFor(1);
  stream.close();
});

test('--config refuses the per-stream flags it would have ignored', async (t) => {
  const dir = await makeFolder({ 'cfg.json': JSON.stringify({ streams: { default: { type: 'push' } } }) });
  t.after(() => removeFolder(dir));
  const config = join(dir, 'cfg.json');
  for (const flag of [['--loop'], ['--sync'], ['--drop-duplicates'], ['--serve-last'], ['--stall-timeout', '5'], ['--max-part-bytes', '100'], ['--interval', '2'], ['--format', 'mjpeg'], ['--relay-idle', '3']]) {
    await refused(['serve', '--config', config, ...flag], new RegExp(`^serverpush: ${flag[0]} does not apply to --config \\(set them per stream in the file\\)$`));
  }
  await refused(['serve', '--config', config, '--loop', '--sync', '--drop-duplicates', '--stall-timeout', '5', '--max-part-bytes', '9'], /--loop, --sync, --drop-duplicates, --stall-timeout, --max-part-bytes do not apply to --config/);
  // What applies to the server as a whole still does.
  const server = await startCli(['--config', config, '--port', '0', '--host', '127.0.0.1', '--backlog', '64', '--cors', '*']);
  t.after(() => server.stop());
  assert.equal((await fetch(new URL('status', server.url))).status, 200);
});

test('a negative or missing value says what the value must be, not "ambiguous"', async () => {
  await refused(['serve', '.', '--interval', '-1'], /^serverpush: --interval must be a number of seconds above 0 and at most 86400 \(fractions allowed\), got "-1"$/);
  await refused(['serve', '.', '--interval=-1'], /--interval must be a number of seconds above 0/);
  await refused(['serve', '.', '--stall-timeout', '-5'], /--stall-timeout must be a number of seconds above 0, got "-5"/);
  await refused(['serve', '--relay', 'http://cam/', '--relay-idle', '-2'], /--relay-idle must be a number of seconds \(0: never stop\), got "-2"/);
  await refused(['serve', '.', '--port'], /^serverpush: --port needs a value \(N\)$/);
  await refused(['serve', '.', '--port', '--loop'], /--port needs a value \(N\)/);
  await refused(['serve', '.', '--loop=yes'], /--loop takes no value, got "yes"/);
  await refused(['serve', '.', '--port', '1', '--port', '2'], /--port was given twice/);
});

test('an unknown option is named, with the closest one as a hint', async () => {
  await refused(['serve', '--bogus'], /^serverpush: unknown option --bogus$/);
  await refused(['serve', '.', '--intervall', '3'], /^serverpush: unknown option --intervall; did you mean --interval\?$/);
  await refused(['serve', '--relay', 'http://cam/', '--relay-pass', 'f'], /unknown option --relay-pass; did you mean --relay-password-file\?/);
  await refused(['serve', '.', '--stal-timeout', '3'], /did you mean --stall-timeout\?/);
  await refused(['serve', '-x'], /^serverpush: unknown option -x$/);
  await refused(['serve', '.', '-5'], /unknown option -5 \(a negative number must follow the option it is the value of\)/);
});

test('an empty command, URL, path or host is refused at once, not restarted for ever', async () => {
  await refused(['serve', '--exec', ''], /^serverpush: --exec needs a value \("CMD"\), got an empty string$/);
  await refused(['serve', '--exec', '   '], /--exec needs a value/);
  await refused(['serve', '--relay', ''], /--relay needs a value \(URL\), got an empty string/);
  await refused(['serve', '--watch', ''], /--watch needs a value \(PATH\)/);
  await refused(['serve', '--config', ''], /--config needs a value \(FILE\)/);
  await refused(['serve', '.', '--host', ''], /--host needs a value \(ADDR\)/);
});

test('get: --out that is a file, --snapshot in a missing folder: coded and clear, exit 2; an unwritable output exits 1 with SP_ERR_CANNOT_WRITE', async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 50 });
  t.after(() => server.close());
  const stream = new URL('stream', url).href;
  const file = await runCli(['get', stream, '--out', '/etc/passwd']);
  assert.equal(file.code, 2);
  assert.equal(file.stderr, 'serverpush get: --out /etc/passwd is not a folder; give a folder to save the parts in (it is made if missing) (SP_ERR_NOT_A_DIRECTORY)\n');
  const under = await runCli(['get', stream, '--out', '/etc/passwd/frames']);
  assert.equal(under.code, 2);
  assert.match(under.stderr, /--out \/etc\/passwd\/frames: a part of the path is not a folder \(ENOTDIR\) \(SP_ERR_NOT_A_DIRECTORY\)/);
  const missing = await runCli(['get', stream, '--snapshot', '/nonexistent-folder/now.jpg']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--snapshot \/nonexistent-folder\/now\.jpg: the folder \/nonexistent-folder does not exist \(SP_ERR_INVALID_OPTION\)/);
  const folder = await runCli(['get', stream, '--snapshot', '/tmp']);
  assert.equal(folder.code, 2);
  assert.match(folder.stderr, /--snapshot \/tmp is a folder; give the name of the file to write/);
  // /proc takes no new files, not even from root.
  const unwritable = await runCli(['get', stream, '--snapshot', '/proc/serverpush-now.jpg']);
  assert.equal(unwritable.code, 1);
  assert.match(unwritable.stderr, /^serverpush get: cannot write \/proc\/serverpush-now\.jpg: .+ \(E[A-Z]+\) \(SP_ERR_CANNOT_WRITE\)\n$/);
  assert.ok(!(await readdir('/proc')).some((name) => name.includes('serverpush-now')));
});

test('get against a multipart body sent as application/octet-stream points to --boundary', async (t) => {
  const server = createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end('--ffserver\r\nContent-Type: text/plain\r\n\r\nx\r\n--ffserver--\r\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  const run = await runCli(['get', url]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /not a multipart response: Content-Type is "application\/octet-stream"; if the body is a multipart stream all the same \(ffmpeg's HTTP output says application\/octet-stream\), give its boundary with --boundary B \(SP_ERR_NOT_MULTIPART\)/);
  const fixed = await runCli(['get', url, '--boundary', 'ffserver']);
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.equal(fixed.stdout, '1 text/plain 1\n');
});

test('get: usage errors print the error and one line of help; an unknown option gets a hint', async () => {
  const run = await runCli(['get', 'http://127.0.0.1:1/', '--cout', '3']);
  assert.equal(run.code, 2);
  assert.equal(run.stderr, 'serverpush get: unknown option --cout; did you mean --count?\nRun `serverpush get --help` for the options.\n');
  const negative = await runCli(['get', 'http://127.0.0.1:1/', '--timeout', '-1']);
  assert.equal(negative.code, 2);
  assert.match(negative.stderr, /^serverpush get: --timeout must be a number of seconds from 0 to 86400, got "-1"\n/);
});
