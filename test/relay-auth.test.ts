/**
 * Issue 11, defect 3 and item 10: a relay of a password-protected camera connects (Basic and
 * Digest, answered when the camera asks), and its password appears nowhere — not in a log line,
 * `/status`, a 503 body, the CLI's stderr, nor `ps`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer, openStream, fetchText, eventually, makeFolder, removeFolder } from './helpers/server.ts';
import { startCamera, withCredentials, FRAMES, type CameraOptions } from './helpers/camera.ts';
import { runCli, startCli } from './helpers/cli.ts';
import { authenticatingFetch, chooseChallenge, digestAuthorization, parseChallenges } from '../src/client/http-auth.ts';
import { isServerPushError } from '../src/errors.ts';
import { redactUrl } from '../src/redact.ts';

const USER = 'admin';
const PASSWORD = 'Sup3r:S3cret/pw';

async function camera(t: { after(fn: () => Promise<void>): void }, options: Partial<CameraOptions> & Pick<CameraOptions, 'scheme'>) {
  const cam = await startCamera({ username: USER, password: PASSWORD, ...options });
  t.after(() => cam.close());
  return cam;
}

/** Waits until the server at `base` has a frame of `stream` (its snapshot answers 200). */
async function frameAt(base: URL, stream = 'snapshot'): Promise<void> {
  await eventually(async () => (await fetch(new URL(stream, base))).status === 200, 5000, `a frame at ${stream}`);
}

/** Every place a secret could leak to, as text. */
function assertNoSecret(where: string, text: string): void {
  for (const form of [PASSWORD, encodeURIComponent(PASSWORD), 'S3cret']) assert.ok(!text.includes(form), `${where} shows the password (${JSON.stringify(form)}):\n${text}`);
}

for (const [name, options] of [
  ['Basic', { scheme: 'basic' }],
  ['Digest MD5 (Basic offered too: Digest is chosen)', { scheme: 'digest', algorithm: 'MD5', offerBasicToo: true }],
  ['Digest SHA-256', { scheme: 'digest', algorithm: 'SHA-256' }],
  ['Digest SHA-256-sess', { scheme: 'digest', algorithm: 'SHA-256-sess' }],
] as const) {
  test(`a relay of a camera that demands ${name} (credentials in the URL) serves its frames to a viewer`, async (t) => {
    const cam = await camera(t, options);
    const { server, url, logger } = await startServer({ streams: { default: { type: 'relay', url: withCredentials(cam.url, USER, PASSWORD), retryDelayMs: 100 } } });
    t.after(() => server.close());
    await frameAt(url);
    const viewer = await openStream(new URL('stream', url));
    t.after(() => viewer.close());
    const parts = await viewer.reader.waitFor(6, 5000);
    assert.ok(parts.every((part) => FRAMES.some((frame) => frame.equals(part.body))), 'the camera\'s frames, intact');
    assert.deepEqual(cam.requests.slice(0, 2).map((r) => r.verdict), ['no credentials', 'accepted'], 'challenged once, then accepted');
    const scheme = options.scheme === 'basic' ? /^Basic / : /^Digest /;
    assert.match(cam.requests[1]!.authorization!, scheme);
    const status = JSON.parse((await fetchText(new URL('status', url))).body);
    assert.deepEqual(status.streams.default.upstream, { url: `http://admin:***@127.0.0.1:${cam.url.port}/video.mjpg`, authentication: options.scheme, connections: 1 });
    assertNoSecret('the log', logger.lines.join('\n'));
  });
}

test('Digest credentials from username/password options; a stale nonce is answered with the new one, not taken for a wrong password', async (t) => {
  const cam = await camera(t, { scheme: 'digest', algorithm: 'SHA-256', nonceUses: 2 });
  const fetch = authenticatingFetch({ credentials: { username: USER, password: PASSWORD } });
  for (let i = 0; i < 5; i++) {
    const response = await fetch(cam.url);
    assert.equal(response.status, 200, `request ${i + 1}`);
    await response.body?.cancel();
  }
  // The first request is challenged; later ones answer at once with the nonce count raised; the
  // third use of a nonce is stale and gets a new nonce.
  assert.deepEqual(cam.requests.map((r) => r.verdict), ['no credentials', 'accepted', 'accepted', 'stale', 'accepted', 'accepted', 'stale', 'accepted']);
  assert.equal(fetch.scheme, 'digest');
  const ncs = cam.requests.slice(1, 3).map((r) => /nc=(\w+)/.exec(r.authorization!)![1]);
  assert.deepEqual(ncs, ['00000001', '00000002']);

  const { server, url } = await startServer({ streams: { default: { type: 'relay', url: cam.url.href, username: USER, password: PASSWORD } } });
  t.after(() => server.close());
  await frameAt(url);
  const viewer = await openStream(new URL('stream', url));
  t.after(() => viewer.close());
  await viewer.reader.waitFor(3, 5000);
});

test('a wrong password: SP_ERR_AUTH_FAILED logged and retried with backoff, viewers get a 503 — and the password is nowhere', async (t) => {
  const cam = await camera(t, { scheme: 'digest', algorithm: 'MD5' });
  const wrong = `${PASSWORD}-wrong`;
  const { server, url, logger } = await startServer({ streams: { default: { type: 'relay', url: withCredentials(cam.url, USER, wrong), retryDelayMs: 100, idleTimeoutMs: 0 } } });
  t.after(() => server.close());
  await eventually(() => logger.lines.filter((line) => line.includes('SP_ERR_AUTH_FAILED')).length >= 3, 5000, 'three failed attempts');
  const failures = logger.lines.filter((line) => line.startsWith('warn SP_ERR_AUTH_FAILED'));
  assert.match(failures[0]!, /^warn SP_ERR_AUTH_FAILED stream default: relay http:\/\/admin:\*\*\*@127\.0\.0\.1:\d+\/video\.mjpg: .* refused the credentials of user "admin" \(HTTP 401, Digest \(MD5\) realm "IP Camera"\); retrying in 100 ms$/);
  assert.deepEqual(failures.slice(0, 3).map((line) => Number(/retrying in (\d+) ms/.exec(line)![1])), [100, 200, 400], 'backoff doubles');
  // Each attempt: challenged, answered, refused; never a loop of answers.
  assert.deepEqual(cam.requests.slice(0, 4).map((r) => r.verdict), ['no credentials', 'wrong', 'no credentials', 'wrong']);
  const refused = await fetchText(new URL('stream', url));
  assert.equal(refused.status, 503);
  assert.match(JSON.parse(refused.body).error, /SP_ERR_(SOURCE_DOWN|NO_FRAME)/);
  const snapshot = await fetchText(new URL('snapshot', url));
  const status = await fetchText(new URL('status', url));
  assert.match(JSON.parse(status.body).streams.default.upstream.url, /^http:\/\/admin:\*\*\*@/);
  for (const [where, text] of [['the log', logger.lines.join('\n')], ['the 503 body', refused.body], ['the snapshot 503', snapshot.body], ['/status', status.body]] as const) {
    for (const form of [wrong, encodeURIComponent(wrong), 'S3cret']) assert.ok(!text.includes(form), `${where} shows the password:\n${text}`);
  }
});

test('a camera that asks for credentials none were given for: a clear SP_ERR_AUTH_FAILED', async (t) => {
  const cam = await camera(t, { scheme: 'basic' });
  const { server, logger } = await startServer({ streams: { default: { type: 'relay', url: cam.url.href, retryDelayMs: 100, idleTimeoutMs: 0 } } });
  t.after(() => server.close());
  await eventually(() => logger.lines.some((line) => line.includes('SP_ERR_AUTH_FAILED')), 3000);
  assert.match(logger.lines.join('\n'), /warn SP_ERR_AUTH_FAILED .*video\.mjpg needs credentials \(HTTP 401, asks for Basic realm "IP Camera"\); give them as user:password@ in the URL/);
});

test('the CLI relaying a camera with a password in the URL shows it nowhere: stderr, /status, 503 bodies, ps', async (t) => {
  const cam = await camera(t, { scheme: 'digest', algorithm: 'SHA-256' });
  // First the wrong password (failures are what get logged), then the right one (the viewer's path).
  for (const password of [`${PASSWORD}x`, PASSWORD]) {
    const server = await startCli(['--relay', withCredentials(cam.url, USER, password), '--port', '0', '--relay-idle', '0']);
    t.after(() => server.stop());
    const cmdline = (await readFile(`/proc/${server.child.pid}/cmdline`, 'utf8')).split('\0').join(' ');
    assert.match(cmdline, /--relay http:\/\/admin:\*\*\*@127\.0\.0\.1:\d+\/video\.mjpg/, 'ps shows the redacted URL');
    const texts: Array<[string, string]> = [['ps', cmdline]];
    if (password === PASSWORD) {
      await frameAt(server.url);
      const viewer = await openStream(new URL('stream', server.url));
      await viewer.reader.waitFor(3, 5000);
      viewer.close();
    } else {
      await eventually(() => /SP_ERR_AUTH_FAILED/.test(server.stderr()), 5000, 'a logged failure');
      const refused = await fetchText(new URL('stream', server.url));
      assert.equal(refused.status, 503);
      texts.push(['the 503 of /stream', refused.body], ['the 503 of /snapshot', (await fetchText(new URL('snapshot', server.url))).body]);
      texts.push(['the 503 of /?action=stream', (await fetchText(new URL('?action=stream', server.url))).body]);
    }
    texts.push(['/status', (await fetchText(new URL('status', server.url))).body], ['the index page', (await fetchText(server.url)).body]);
    assert.equal(await server.stop(), 0);
    texts.push(['stderr', server.stderr()]);
    assert.match(server.stderr(), /stream default: relaying http:\/\/admin:\*\*\*@127\.0\.0\.1:\d+\/video\.mjpg, at http/, 'the start-up line shows the URL, redacted');
    for (const [where, text] of texts) {
      for (const form of [password, encodeURIComponent(password), 'S3cret']) assert.ok(!text.includes(form), `${where} shows the password:\n${text}`);
    }
  }
});

test('--relay-password-file keeps the password out of argv; --relay-user names the user', async (t) => {
  const cam = await camera(t, { scheme: 'digest', algorithm: 'MD5' });
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  const file = join(dir, 'camera.password');
  await writeFile(file, `${PASSWORD}\n`, { mode: 0o600 });
  const server = await startCli(['--relay', cam.url.href, '--relay-user', USER, '--relay-password-file', file, '--port', '0']);
  t.after(() => server.stop());
  await frameAt(server.url);
  const viewer = await openStream(new URL('stream', server.url));
  await viewer.reader.waitFor(3, 5000);
  viewer.close();
  assert.equal(cam.requests.at(-1)!.verdict, 'accepted');
  const missing = await runCli(['serve', '--relay', cam.url.href, '--relay-user', USER, '--relay-password-file', join(dir, 'nope')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read the password file .*nope: ENOENT \(SP_ERR_CONFIG\)/);
  const twice = await runCli(['serve', '--relay', withCredentials(cam.url, USER, PASSWORD), '--relay-password-file', file]);
  assert.equal(twice.code, 2);
  assert.match(twice.stderr, /credentials given twice/);
  assertNoSecret('stderr', twice.stderr);
});

test('a config file relay with username and passwordFile (relative to the file)', async (t) => {
  const cam = await camera(t, { scheme: 'basic' });
  const dir = await makeFolder({ 'pw.txt': PASSWORD, 'cfg.json': JSON.stringify({ streams: { door: { type: 'relay', url: cam.url.href, username: USER, passwordFile: 'pw.txt' } } }) });
  t.after(() => removeFolder(dir));
  const server = await startCli(['--config', join(dir, 'cfg.json'), '--port', '0']);
  t.after(() => server.stop());
  await frameAt(server.url, 'snapshot/door');
  const viewer = await openStream(new URL('stream/door', server.url));
  await viewer.reader.waitFor(3, 5000);
  viewer.close();
  const both = await makeFolder({ 'cfg.json': JSON.stringify({ streams: { door: { type: 'relay', url: cam.url.href, password: 'x', passwordFile: 'pw.txt' } } }) });
  t.after(() => removeFolder(both));
  const refused = await runCli(['serve', '--config', join(both, 'cfg.json')]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /streams\.door: give password or passwordFile, not both \(SP_ERR_CONFIG\)/);
});

test('serverpush get reads a Digest camera with user:password@ in the URL; a wrong password exits 1 with SP_ERR_AUTH_FAILED, unshown', async (t) => {
  const cam = await camera(t, { scheme: 'digest', algorithm: 'SHA-256' });
  const good = await runCli(['get', withCredentials(cam.url, USER, PASSWORD), '--count', '3']);
  assert.equal(good.code, 0, good.stderr);
  assert.deepEqual(good.stdout.trim().split('\n').map((line) => line.split(' ').slice(0, 2).join(' ')), ['1 image/jpeg', '2 image/jpeg', '3 image/jpeg']);
  const bad = await runCli(['get', withCredentials(cam.url, USER, 'nope-S3cret'), '--count', '3']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /refused the credentials of user "admin" \(HTTP 401, Digest \(SHA-256\) realm "IP Camera"\) \(SP_ERR_AUTH_FAILED\)/);
  assertNoSecret('get stderr', bad.stderr);
});

test('parseChallenges reads several challenges in one header, quoted strings with escapes, and token68', () => {
  const challenges = parseChallenges('Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple", Negotiate abc+/==, Digest realm="x", nonce="n,1", algorithm=SHA-256, qop="auth,auth-int"');
  assert.deepEqual(challenges.map((c) => c.scheme), ['newauth', 'basic', 'negotiate', 'digest']);
  assert.equal(challenges[0]!.params.get('title'), 'Login to "apps"');
  assert.equal(challenges[0]!.params.get('type'), '1');
  assert.equal(challenges[2]!.token68, 'abc+/==');
  assert.equal(challenges[3]!.params.get('nonce'), 'n,1');
  assert.equal(chooseChallenge(challenges), challenges[3], 'Digest is preferred to Basic');
  assert.equal(chooseChallenge(parseChallenges('Digest realm="x", nonce="n", qop="auth-int"')), undefined, 'auth-int only: cannot be answered');
});

test('digestAuthorization gives the responses of RFC 7616 §3.9.1 (MD5 and SHA-256)', () => {
  const credentials = { username: 'Mufasa', password: 'Circle of Life' };
  const request = { method: 'GET', uri: '/dir/index.html', nc: 1, cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ' };
  for (const [algorithm, expected] of [['MD5', '8ca523f5e9506fed4657c9700eebdbec'], ['SHA-256', '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1']]) {
    const [challenge] = parseChallenges(`Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=${algorithm}, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`);
    const header = digestAuthorization(challenge!, credentials, request);
    assert.match(header, new RegExp(`response="${expected}"`), algorithm);
    assert.match(header, /nc=00000001, cnonce="f2\/wE4q74E6zIJEtWaHKaf5wv\/H5QzzpXusqGemxURZJ", qop=auth/);
    assert.match(header, /opaque="FQhe\/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"/);
  }
});

test('credentials go to the first URL\'s origin only, not through a redirect to another host', async (t) => {
  const cam = await camera(t, { scheme: 'basic' });
  const { createServer } = await import('node:http');
  let seen: string | undefined = 'unset';
  const other = createServer((req, res) => { seen = req.headers.authorization; res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="other"' }).end(); });
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => other.close(() => resolve())));
  const redirector = createServer((_req, res) => res.writeHead(302, { Location: `http://localhost:${(other.address() as { port: number }).port}/x` }).end());
  await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => redirector.close(() => resolve())));
  const fetch = authenticatingFetch({ credentials: { username: USER, password: PASSWORD } });
  const response = await fetch(`http://127.0.0.1:${(redirector.address() as { port: number }).port}/`);
  assert.equal(response.status, 401, 'the other host\'s 401 is not answered');
  assert.equal(seen, undefined, 'no Authorization sent to the other host');
  await response.body?.cancel();
  await assert.rejects(authenticatingFetch()(cam.url), (error) => isServerPushError(error, 'SP_ERR_AUTH_FAILED'));
});

test('redactUrl hides the password and secret query values; a relay with ?pwd= in its URL logs it redacted', async (t) => {
  assert.equal(redactUrl('http://admin:p%40ss@cam:81/cgi-bin/CGIStream.cgi?cmd=GetMJStream&usr=admin&pwd=S3cretPwd&token=abc123'), 'http://admin:***@cam:81/cgi-bin/CGIStream.cgi?cmd=GetMJStream&usr=admin&pwd=***&token=***');
  assert.equal(redactUrl('http://cam/video.mjpg?resolution=640x480'), 'http://cam/video.mjpg?resolution=640x480', 'other URLs unchanged');
  assert.equal(redactUrl('not a url http://u:S3cret@x/'), 'not a url http://u:***@x/');
  const cam = await camera(t, { scheme: 'basic' });
  const { server, url, logger } = await startServer({ streams: { default: { type: 'relay', url: `${cam.url.href}?usr=admin&pwd=S3cretPwd`, retryDelayMs: 100, idleTimeoutMs: 0 } } });
  t.after(() => server.close());
  await eventually(() => logger.lines.some((line) => line.includes('SP_ERR_AUTH_FAILED')), 3000);
  const shown = logger.lines.join('\n') + (await fetchText(new URL('stream', url))).body + (await fetchText(new URL('status', url))).body;
  assert.match(shown, /video\.mjpg\?usr=admin&pwd=\*\*\*/);
  assert.ok(!shown.includes('S3cretPwd'), shown);
});

test('an --exec command with a password in its URL: not in the start-up line, the logged stderr of the command, nor ps', async (t) => {
  // A stand-in for `ffmpeg -i rtsp://admin:…@camera/live`, which prints its input URL when it fails.
  const command = `echo "rtsp://admin:${PASSWORD.replace(/\//g, '%2F')}@camera/live: Connection refused" >&2; exit 1`;
  const server = await startCli(['--exec', command, '--port', '0']);
  t.after(() => server.stop());
  await eventually(() => /SP_ERR_SOURCE_FAILED/.test(server.stderr()), 5000, 'the command\'s failure logged');
  const cmdline = (await readFile(`/proc/${server.child.pid}/cmdline`, 'utf8')).split('\0').join(' ');
  await server.stop();
  assert.match(server.stderr(), /rtsp:\/\/admin:\*\*\*@camera\/live: Connection refused/, 'the stderr line is logged, redacted');
  assert.match(server.stderr(), /frames from `echo "rtsp:\/\/admin:\*\*\*@camera\/live/);
  assert.match(cmdline, /rtsp:\/\/admin:\*\*\*@camera\/live/);
  for (const [where, text] of [['stderr', server.stderr()], ['ps', cmdline]] as const) assertNoSecret(where, text);
});

test('a source\'s reason for being down is shown in /status and 503 bodies without a URL\'s password, whatever the source quoted', async () => {
  const { LiveStream } = await import('../src/hub/live-stream.ts');
  const stream = new LiveStream({ name: 'cam' });
  stream.setSource({ up: false, reason: 'ffmpeg: rtsp://admin:S3cretPw@camera/live: 401 Unauthorized' });
  assert.equal(stream.toJSON().sourceError, 'ffmpeg: rtsp://admin:***@camera/live: 401 Unauthorized');
  assert.equal(stream.unavailable()!.message, 'the source of stream cam is down: ffmpeg: rtsp://admin:***@camera/live: 401 Unauthorized');
});

test('serverpush get: a token in the URL or an Authorization header is in neither its messages nor ps', async (t) => {
  const { createServer } = await import('node:http');
  const { spawn } = await import('node:child_process');
  const { CLI } = await import('./helpers/cli.ts');
  const server = createServer((_req, res) => setTimeout(() => res.writeHead(404).end(), 2000));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/video.mjpg?token=S3cretToken`;
  const child = spawn(process.execPath, [CLI, 'get', url, '-H', 'Authorization: Bearer S3cretBearer']);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text; });
  // The CLI rewrites its command line as it starts: wait for that (the server answers 2 s later).
  let cmdline = '';
  await eventually(async () => {
    cmdline = (await readFile(`/proc/${child.pid}/cmdline`, 'utf8')).split('\0').join(' ');
    return cmdline.startsWith('serverpush ');
  }, 1900, 'the rewritten command line');
  const [code] = await new Promise<[number | null]>((resolve) => child.once('close', (exit) => resolve([exit])));
  assert.equal(code, 1);
  assert.match(stderr, /video\.mjpg\?token=\*\*\* answered HTTP 404 .*\(SP_ERR_HTTP_STATUS\)/);
  assert.match(cmdline, /get http:\/\/127\.0\.0\.1:\d+\/video\.mjpg\?token=\*\*\* -H Authorization: \*\*\*/);
  for (const text of [stderr, cmdline]) assert.ok(!/S3cretToken|S3cretBearer/.test(text), text);
});
