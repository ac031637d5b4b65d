import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { chmod, cp, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { runCli, startCli } from './helpers/cli.ts';
import { makeFolder, removeFolder, openStream, fetchText, EXAMPLES } from './helpers/server.ts';
import { listenBacklog } from './helpers/sockets.ts';
import { needs } from './helpers/tools.ts';

test('serverpush --help and --version', async () => {
  const help = await runCli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: serverpush serve/);
  for (const option of ['--port', '--host', '--backlog', '--interval', '--loop', '--max-part-bytes', '--stall-timeout', '--quiet']) assert.ok(help.stdout.includes(option), option);
  const version = await runCli(['--version']);
  assert.equal(version.code, 0);
  const { version: expected } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
  assert.equal(version.stdout.trim(), expected);
});

test('a missing folder exits 2 with a message on stderr', async () => {
  const result = await runCli(['serve', '/nonexistent/serverpush-folder']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /folder not found: \/nonexistent\/serverpush-folder \(SP_ERR_DIR_NOT_FOUND\)/);
  assert.equal(result.stdout, '');
});

test('a file given as the folder exits 2', async (t) => {
  const dir = await makeFolder({ 'a.txt': 'A' });
  t.after(() => removeFolder(dir));
  const result = await runCli(['serve', join(dir, 'a.txt')]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /not a folder: .*a\.txt \(SP_ERR_NOT_A_DIRECTORY\)/);
});

test('bad options exit 2 with a message naming the option', async () => {
  for (const [args, pattern] of [
    [['serve', '.', '--interval', '0'], /--interval must be a number of seconds above 0/],
    [['serve', '.', '--interval', 'soon'], /--interval must be/],
    [['serve', '.', '--port', '70000'], /--port must be an integer from 0 to 65535/],
    [['serve', '.', '--backlog', '0'], /--backlog must be an integer from 1 to 65535/],
    [['serve', '.', '--max-part-bytes', '0'], /--max-part-bytes must be a positive integer/],
    [['serve', '.', '--frobnicate'], /unknown option --frobnicate/],
    [['launch'], /unknown command "launch"/],
    [[], /no command given/],
  ] as const) {
    const result = await runCli([...args]);
    assert.equal(result.code, 2, args.join(' '));
    assert.match(result.stderr, pattern);
  }
});

test('a port in use exits non-zero with a clear message', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const result = await runCli(['serve', EXAMPLES, '--port', String(port)]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use; choose another with --port \\(SP_ERR_ADDRESS_IN_USE\\)`));
});

test('serve without a folder serves the bundled examples; SIGTERM ends streams cleanly and exits 0', async () => {
  const server = await startCli(['--port', '0', '--interval', '30', '--loop']);
  const stream = await openStream(new URL('stream', server.url));
  await stream.reader.waitFor(1);
  assert.equal(stream.reader.parts[0]!.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(await server.stop('SIGTERM'), 0);
  await stream.ended;
  assert.equal(stream.reader.parts.length, 2);
  assert.match(server.stderr(), /SIGTERM: ending 1 stream/);
});

test('--interval accepts fractions and --max-part-bytes skips large documents', async (t) => {
  const dir = await makeFolder({ 'a.txt': 'small', 'b.txt': 'x'.repeat(50), 'c.txt': 'tiny' });
  t.after(() => removeFolder(dir));
  const server = await startCli([dir, '--port', '0', '--interval', '0.05', '--max-part-bytes', '10']);
  t.after(() => server.stop());
  const stream = await openStream(new URL('stream', server.url));
  await stream.ended;
  assert.deepEqual(stream.reader.parts.map((p) => p.body.toString()), ['small', 'tiny']);
  assert.match(server.stderr(), /warn SP_ERR_PART_TOO_LARGE skipped b\.txt is 50 bytes, over the 10-byte part limit/);
});

test('an unreadable file is skipped with a warning and the stream goes on', async (t) => {
  const dir = await makeFolder({ '1.txt': 'one', '2.txt': 'locked', '3.txt': 'three' });
  t.after(() => removeFolder(dir));
  await chmod(join(dir, '2.txt'), 0o000);
  // root reads any file: run the server as an unprivileged user then.
  let prefix: string[] = [];
  let cli: string | undefined;
  if (process.getuid?.() === 0) {
    const nobody = execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim();
    const group = execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim();
    prefix = ['setpriv', `--reuid=${nobody}`, `--regid=${group}`, '--clear-groups'];
    await chmod(dir, 0o755);
    // The clone may sit where nobody cannot read (e.g. under /root): run a copy of the built CLI
    // and its runtime dependencies from a folder anyone can read.
    const copy = await makeFolder();
    t.after(() => removeFolder(copy));
    await cp(new URL('../dist', import.meta.url), join(copy, 'dist'), { recursive: true });
    await cp(new URL('../package.json', import.meta.url), join(copy, 'package.json'));
    const root = new URL('..', import.meta.url).pathname;
    const runtime = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: root, encoding: 'utf8' }).split('\n').filter((path) => path.includes('/node_modules/'));
    for (const path of runtime) await cp(path, join(copy, path.slice(path.indexOf('node_modules/'))), { recursive: true });
    execFileSync('chmod', ['-R', 'a+rX', copy]);
    cli = join(copy, 'dist', 'cli', 'main.js');
  }
  const server = await startCli([dir, '--port', '0', '--interval', '0.05'], { prefix, ...(cli ? { cli } : {}) });
  t.after(() => server.stop());
  const stream = await openStream(new URL('stream', server.url));
  await stream.ended;
  assert.deepEqual(stream.reader.parts.map((p) => p.body.toString()), ['one', 'three']);
  assert.match(server.stderr(), /warn SP_ERR_UNREADABLE skipped 2\.txt cannot be read: EACCES/);
});

test('--quiet logs warnings only; --host chooses the address', async (t) => {
  const dir = await makeFolder({ 'a.txt': 'A', 'b.txt': '' });
  t.after(() => removeFolder(dir));
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise((resolve) => probe.close(resolve));
  const result = runCli(['serve', dir, '--port', String(port), '--host', '127.0.0.1', '--quiet', '--interval', '0.05'], { timeoutMs: 3000 });
  let stream;
  for (let i = 0; i < 100 && !stream; i++) {
    stream = await openStream(`http://127.0.0.1:${port}/stream`).catch(() => new Promise<undefined>((resolve) => setTimeout(resolve, 50)));
  }
  assert.ok(stream, 'server answered on the chosen address and port');
  await stream.ended;
  const { stderr } = await result;
  assert.doesNotMatch(stderr, / info /);
  assert.match(stderr, / warn SP_ERR_EMPTY_DOCUMENT /);
});

test('--config serves several named streams from a JSON file (paths relative to it)', async (t) => {
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  const { mkdir, writeFile: write } = await import('node:fs/promises');
  await mkdir(join(dir, 'slides'), { recursive: true });
  await write(join(dir, 'slides', 'a.txt'), 'A');
  await write(join(dir, 'slides', 'b.txt'), 'B');
  await write(join(dir, 'serverpush.json'), JSON.stringify({
    host: '127.0.0.1',
    streams: {
      default: { type: 'slideshow', dir: 'slides', interval: 0.05 },
      lobby: { type: 'slideshow', dir: 'slides', interval: 0.1, sync: true, dropDuplicates: false },
    },
  }));
  const server = await startCli(['--config', join(dir, 'serverpush.json'), '--port', '0']);
  t.after(() => server.stop());
  const stream = await openStream(new URL('stream', server.url));
  await stream.ended;
  assert.deepEqual(stream.reader.parts.map((p) => p.body.toString()), ['A', 'B']);
  const lobby = await openStream(new URL('stream/lobby', server.url));
  await lobby.reader.waitFor(3);
  lobby.close();
  const status = JSON.parse((await fetchText(new URL('status', server.url))).body);
  assert.deepEqual(Object.keys(status.streams), ['default', 'lobby']);
  assert.equal(status.streams.lobby.type, 'live');
  assert.match(server.stderr(), /stream lobby: at http:\/\/127\.0\.0\.1:\d+\/stream\/lobby/);
});

test('a bad config file exits 2 with SP_ERR_CONFIG naming the file and the key', async (t) => {
  const dir = await makeFolder({
    'typo.json': JSON.stringify({ streams: { default: { type: 'slideshow', dir: '.', intervall: 5 } } }),
    'broken.json': '{ "streams": ',
    'type.json': JSON.stringify({ streams: { cam: { type: 'camera' } } }),
    'name.json': JSON.stringify({ streams: { 'bad name': { type: 'push' } } }),
    'backlog.json': JSON.stringify({ backlog: 'lots', streams: { default: { type: 'push' } } }),
  });
  t.after(() => removeFolder(dir));
  for (const [file, pattern] of [
    ['typo.json', /typo\.json: streams\.default: unknown key "intervall" for a slideshow stream \(SP_ERR_CONFIG\)/],
    ['broken.json', /broken\.json: not valid JSON/],
    ['type.json', /type must be one of slideshow, watch, stdin, exec, relay, poll, push/],
    ['name.json', /invalid stream name "bad name"/],
    ['missing.json', /missing\.json: not found \(SP_ERR_CONFIG\)/],
    ['backlog.json', /backlog\.json: backlog must be an integer from 1 to 65535 \(SP_ERR_CONFIG\)/],
  ] as const) {
    const result = await runCli(['serve', '--config', join(dir, file)]);
    assert.equal(result.code, 2, file);
    assert.match(result.stderr, pattern);
  }
});

test('source flags: one source at a time, and options only where they apply', async () => {
  for (const [args, pattern] of [
    [['serve', '.', '--watch', '.'], /give one source, not DIR and --watch/],
    [['serve', '--stdin', '--relay', 'http://x/'], /give one source, not --stdin and --relay/],
    [['serve', '--exec', 'true', '--interval', '1'], /--interval does not apply to --exec/],
    [['serve', '--relay', 'http://x/', '--format', 'mjpeg'], /--format does not apply to --relay/],
    [['serve', '--stdin', '--format', 'gif'], /--format must be auto, mjpeg or multipart/],
    [['serve', '.', '--relay-idle', '5'], /--relay-idle does not apply to a slideshow per client/],
    [['serve', '--relay', 'ftp://camera/'], /relay URL must be http or https \(ftp:\/\/camera\/\) \(SP_ERR_CONFIG\)/],
  ] as const) {
    const result = await runCli([...args]);
    assert.equal(result.code, 2, args.join(' '));
    assert.match(result.stderr, pattern);
  }
});

test('--backlog and the config file\'s backlog set the accept queue (the flag wins); the default is 4096, capped by somaxconn', needs('ss'), async (t) => {
  const somaxconn = Number((await readFile('/proc/sys/net/core/somaxconn', 'utf8')).trim());
  const dir = await makeFolder({ 'a.txt': 'A', 'cfg.json': JSON.stringify({ backlog: 300, streams: { default: { type: 'push' } } }) });
  t.after(() => removeFolder(dir));
  const byDefault = await startCli([dir, '--port', '0']);
  t.after(() => byDefault.stop());
  assert.equal(listenBacklog(Number(byDefault.url.port)), Math.min(4096, somaxconn));
  const flagged = await startCli([dir, '--port', '0', '--backlog', '777']);
  t.after(() => flagged.stop());
  assert.equal(listenBacklog(Number(flagged.url.port)), Math.min(777, somaxconn));
  const configured = await startCli(['--config', join(dir, 'cfg.json'), '--port', '0']);
  t.after(() => configured.stop());
  assert.equal(listenBacklog(Number(configured.url.port)), Math.min(300, somaxconn));
  const overridden = await startCli(['--config', join(dir, 'cfg.json'), '--port', '0', '--backlog', '200']);
  t.after(() => overridden.stop());
  assert.equal(listenBacklog(Number(overridden.url.port)), Math.min(200, somaxconn));
});
