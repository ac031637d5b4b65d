/**
 * Access control with real clients (issue 12): users from an htpasswd file over HTTP Basic (curl,
 * ffmpeg, Node), per-stream rights that hide what may not be read, bearer tokens, signed links,
 * address lists, trusted proxies, the lockout, and no secret in any log line, body or `ps`.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile, stat, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { needs } from './helpers/tools.ts';
import { ALICE, BOB, authServer, probe, type AuthFixture } from './helpers/auth.ts';
import { makeFolder, removeFolder, startServer, eventually } from './helpers/server.ts';
import { CLI, runCli, startCli } from './helpers/cli.ts';
import { signLink } from '../src/server/access/signed-link.ts';
import { createAccessPolicy } from '../src/server/access/policy.ts';
import { FailureTracker } from '../src/server/access/failures.ts';
import { updateHtpasswd } from '../src/server/access/htpasswd.ts';
import { isServerPushError } from '../src/errors.ts';
import { loadConfig } from '../src/cli/config.ts';
import { AddressList, clientAddress } from '../src/server/access/address.ts';
import { accessAdmission } from '../src/server/access/guard.ts';
import { liveHandler } from '../src/adapters/node-http.ts';
import { LiveStream } from '../src/hub/live-stream.ts';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttp2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { FRAMES } from './helpers/camera.ts';

const run = promisify(execFile);
let fx: AuthFixture;
// The lockout has its own test: here many refusals come from one address.
before(async () => { fx = await authServer({ failures: { limit: 10_000 } }); });
after(async () => { await fx.close(); });

/** base64url's alphabet: in a 32-byte value's last character the two low bits are unused. */
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const CHALLENGE = 'Basic realm="serverpush", charset="UTF-8", Bearer realm="serverpush"';

test('curl -u: the right password gets the stream, a wrong one or none a 401 with the Basic challenge', needs('curl'), async () => {
  const url = new URL('stream', fx.url).href;
  const ok = await run('curl', ['-s', '-m', '1', '-o', '-', '-D', '-', '-u', `${ALICE.user}:${ALICE.password}`, url]).catch((error: { stdout: string }) => error);
  assert.match(ok.stdout, /^HTTP\/1\.1 200 /);
  assert.match(ok.stdout, /Content-Type: multipart\/x-mixed-replace; boundary=/i);
  assert.match(ok.stdout, /Content-Type: image\/jpeg\r\nContent-Length: \d+/);
  for (const args of [['-u', `${ALICE.user}:wrong`], ['-u', `nobody:${ALICE.password}`], []]) {
    const { stdout } = await run('curl', ['-s', '-D', '-', ...args, url]);
    assert.match(stdout, /^HTTP\/1\.1 401 /, `curl ${args.join(' ')}`);
    assert.ok(stdout.includes(`WWW-Authenticate: ${CHALLENGE}`), stdout);
    assert.match(stdout, /"error":"SP_ERR_UNAUTHORIZED"/);
  }
});

test('ffmpeg reads http://user:password@…/stream (it answers the Basic challenge) and gets real frames', needs('ffmpeg'), async () => {
  const out = await makeFolder();
  try {
    const url = new URL('stream/cam', fx.url);
    url.username = ALICE.user;
    url.password = encodeURIComponent(ALICE.password);
    await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', url.href, '-frames:v', '5', '-c', 'copy', '-f', 'image2', join(out, '%03d.jpg')], { timeout: 20_000 });
    const files = await readdir(out);
    assert.equal(files.length, 5);
    for (const file of files) assert.deepEqual([...(await readFile(join(out, file))).subarray(0, 2)], [0xff, 0xd8]);
    // And without the password ffmpeg is refused.
    const refused = await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', new URL('stream/cam', fx.url).href, '-frames:v', '1', '-f', 'null', '-'], { timeout: 20_000 }).then(() => undefined, (error: { stderr: string }) => error.stderr);
    assert.match(refused ?? '', /401|Unauthorized/i);
  } finally {
    await removeFolder(out);
  }
});

test('a user without the right gets 403 on every endpoint of that stream, and does not see it in / or /status', async () => {
  const camIndex = fx.server.streamNames.filter((n) => n !== 'default').indexOf('cam') + 1;
  const paths = ['stream/cam', 'stream/cam/', 'snapshot/cam', 'snapshot/cam/', 'view/cam', `?action=stream_${camIndex}`, `?action=snapshot_${camIndex}`, 'stream/cam?raw=1'];
  for (const path of paths) {
    for (const method of ['GET', 'HEAD']) {
      const bob = await probe(new URL(path, fx.url), { auth: BOB, method });
      assert.equal(bob.status, 403, `bob ${method} ${path}`);
      if (method === 'GET') assert.match(bob.body, /SP_ERR_FORBIDDEN/);
      const alice = await probe(new URL(path, fx.url), { auth: ALICE, method });
      assert.equal(alice.status, 200, `alice ${method} ${path}`);
      const anonymous = await probe(new URL(path, fx.url), { method });
      assert.equal(anonymous.status, 401, `anonymous ${method} ${path}`);
    }
  }
  const bobStatus = JSON.parse((await probe(new URL('status', fx.url), { auth: BOB })).body) as { streams: Record<string, unknown> };
  assert.deepEqual(Object.keys(bobStatus.streams).sort(), ['default', 'lobby']);
  const aliceStatus = JSON.parse((await probe(new URL('status', fx.url), { auth: ALICE })).body) as { streams: Record<string, unknown> };
  assert.deepEqual(Object.keys(aliceStatus.streams).sort(), ['cam', 'default', 'lobby']);
  const bobIndex = (await probe(fx.url, { auth: BOB })).body;
  assert.match(bobIndex, /lobby/);
  assert.doesNotMatch(bobIndex, /cam/);
  assert.match((await probe(fx.url, { auth: ALICE })).body, /stream\/cam/);
});

test('a stream that does not exist answers like one that may not be read, unless the client may read every stream', async () => {
  for (const path of ['stream/nothere', 'snapshot/nothere', 'view/nothere', '?action=stream_9']) {
    assert.equal((await probe(new URL(path, fx.url))).status, 401, `anonymous ${path}`);
    const bob = await probe(new URL(path, fx.url), { auth: BOB });
    assert.equal(bob.status, 403, `bob ${path}`);
    assert.doesNotMatch(bob.body, /cam/);
    const alice = await probe(new URL(path, fx.url), { auth: ALICE });
    assert.equal(alice.status, 404, `alice ${path}`);
  }
});

test('a bearer token reads the streams of its scope; a wrong one is a 401', async () => {
  const bearer = { Authorization: `Bearer ${fx.token}` };
  assert.equal((await probe(new URL('stream/cam', fx.url), { headers: bearer })).status, 200);
  assert.equal((await probe(new URL('snapshot/cam', fx.url), { headers: bearer })).status, 200);
  assert.equal((await probe(new URL('stream/lobby', fx.url), { headers: bearer })).status, 200, 'authenticated admits tokens');
  const wrong = await probe(new URL('stream/cam', fx.url), { headers: { Authorization: `Bearer ${fx.token}x` } });
  assert.equal(wrong.status, 401);
  assert.match(wrong.body, /SP_ERR_UNAUTHORIZED/);
});

test('a signed link works for its path until it expires; moved, extended or tampered it is refused', async () => {
  const link = new URL(signLink(new URL('stream/cam', fx.url), { secret: fx.linkSecret, expiresInSeconds: 60 }));
  const served = await probe(link);
  assert.equal(served.status, 200);
  assert.match(served.headers['content-type'] ?? '', /^multipart\/x-mixed-replace/);
  const slash = new URL(link);
  slash.pathname += '/';
  assert.equal((await probe(slash)).status, 200, 'the same resource with a trailing slash');
  const token = link.searchParams.get('token')!;
  const [expires, scope, mac] = token.split('.');
  const tries: Record<string, string> = {
    'another stream': new URL(`stream/lobby?token=${token}`, fx.url).href,
    'the snapshot of the stream': new URL(`snapshot/cam?token=${token}`, fx.url).href,
    'the viewer of the stream': new URL(`view/cam?token=${token}`, fx.url).href,
    'extended': new URL(`stream/cam?token=${Number(expires) + 3600}.${scope}.${mac}`, fx.url).href,
    'with a scope added': new URL(`stream/cam?token=${expires}.cams.${mac}`, fx.url).href,
    'a flipped signature': new URL(`stream/cam?token=${expires}.${scope}.${mac!.slice(0, -1)}${mac!.endsWith('A') ? 'B' : 'A'}`, fx.url).href,
    // base64url's last character has 2 unused bits: every other spelling of the same bytes is refused too.
    'the same signature spelt otherwise': new URL(`stream/cam?token=${expires}.${scope}.${mac!.slice(0, -1)}${BASE64URL[BASE64URL.indexOf(mac!.at(-1)!) + 1]}`, fx.url).href,
    'a flipped first character': new URL(`stream/cam?token=${expires}.${scope}.${mac!.startsWith('A') ? 'B' : 'A'}${mac!.slice(1)}`, fx.url).href,
    'signed with another secret': signLink(new URL('stream/cam', fx.url), { secret: Buffer.from('another secret, 32 bytes long...'), expiresInSeconds: 60 }),
  };
  for (const [what, href] of Object.entries(tries)) {
    const refused = await probe(href);
    assert.equal(refused.status, 401, what);
    assert.match(refused.body, /"SP_ERR_UNAUTHORIZED"/, what);
  }
  const expired = await probe(signLink(new URL('stream/cam', fx.url), { secret: fx.linkSecret, expiresInSeconds: 60, now: Date.now() - 120_000 }));
  assert.equal(expired.status, 401);
  assert.match(expired.body, /"SP_ERR_TOKEN_EXPIRED"/);
  // A link of scope `cams` reads cam (which admits the scope); one of another scope does not.
  assert.equal((await probe(signLink(new URL('snapshot/cam', fx.url), { secret: fx.linkSecret, expiresInSeconds: 60, scope: 'cams' }))).status, 200);
  assert.equal((await probe(signLink(new URL('snapshot/cam', fx.url), { secret: fx.linkSecret, expiresInSeconds: 60, scope: 'other' }))).status, 403);
  // mjpg-streamer's URLs can be signed too.
  assert.equal((await probe(signLink(new URL('?action=snapshot_1', fx.url), { secret: fx.linkSecret, expiresInSeconds: 60 }))).status, 200);
  assert.equal((await probe(signLink(new URL('?action=snapshot_1', fx.url), { secret: fx.linkSecret, expiresInSeconds: 60 }).replace('snapshot_1', 'snapshot_2'))).status, 401);
});

test('allow and deny lists (per server and per stream, IPv4 and IPv4-mapped IPv6); --trust-proxy takes the rightmost untrusted hop', async () => {
  const local = await authServer({ deny: ['127.0.0.3/32'], streams: { cam: { read: ['alice'], allow: ['::ffff:127.0.0.2/128'] } }, trustProxy: ['127.0.0.4'] });
  try {
    const cam = new URL('stream/cam', local.url);
    assert.equal((await probe(cam, { auth: ALICE, localAddress: '127.0.0.2' })).status, 200, 'in the stream allow list');
    assert.equal((await probe(cam, { auth: ALICE, localAddress: '127.0.0.1' })).status, 403, 'not in it');
    assert.equal((await probe(new URL('stream/lobby', local.url), { auth: ALICE, localAddress: '127.0.0.1' })).status, 200, 'another stream has no list');
    const denied = await probe(new URL('stream/lobby', local.url), { auth: ALICE, localAddress: '127.0.0.3' });
    assert.equal(denied.status, 403, 'the server deny list');
    assert.match(denied.body, /SP_ERR_FORBIDDEN/);
    // From the trusted proxy, the client is the rightmost hop that is not a trusted proxy.
    const viaProxy = { 'X-Forwarded-For': '127.0.0.3, 127.0.0.2, 127.0.0.4' };
    assert.equal((await probe(cam, { auth: ALICE, localAddress: '127.0.0.4', headers: viaProxy })).status, 200, 'client 127.0.0.2 through the proxy');
    assert.equal((await probe(cam, { auth: ALICE, localAddress: '127.0.0.4', headers: { Forwarded: 'for=127.0.0.9, for="127.0.0.3:5000"' } })).status, 403, 'client 127.0.0.3 (denied) through the proxy');
    // The same header from a client that is not a trusted proxy is ignored.
    assert.equal((await probe(cam, { auth: ALICE, localAddress: '127.0.0.1', headers: { 'X-Forwarded-For': '127.0.0.2' } })).status, 403);
    assert.equal((await probe(cam, { auth: ALICE, localAddress: '127.0.0.3', headers: { 'X-Forwarded-For': '127.0.0.2' } })).status, 403);
    // Logs name the client address (the forwarded one behind the proxy).
    await probe(cam, { auth: { user: ALICE.user, password: 'nope' }, localAddress: '127.0.0.4', headers: { 'X-Forwarded-For': '198.51.100.7' } });
    assert.ok(local.logger.lines.some((line) => line.includes('SP_ERR_UNAUTHORIZED') && line.includes('198.51.100.7') && line.includes('"alice"')), local.logger.lines.join('\n'));
  } finally {
    await local.close();
  }
});

test('IPv6: allow lists match ::1, and IPv4 clients of a dual-stack server match IPv4 ranges', async () => {
  const dir = await makeFolder({ 'a.txt': 'a' });
  const { server, url } = await startServer({ host: '::', dir, access: { allow: ['::1/128', '127.0.0.0/8'], deny: ['127.0.0.5'] } });
  try {
    const v6 = new URL(`http://[::1]:${url.port}/status`);
    assert.equal((await probe(v6)).status, 200);
    assert.equal((await probe(`http://127.0.0.1:${url.port}/status`)).status, 200, '::ffff:127.0.0.1 is 127.0.0.1');
    assert.equal((await probe(`http://127.0.0.1:${url.port}/status`, { localAddress: '127.0.0.5' })).status, 403);
  } finally {
    await server.close(100);
    await removeFolder(dir);
  }
});

test('without users, a stream\'s allow list still applies (and the others stay open)', async () => {
  const dir = await makeFolder({ 'a.txt': 'a' });
  const { server, url } = await startServer({ streams: { default: { type: 'slideshow', dir }, inside: { type: 'slideshow', dir } }, access: { streams: { inside: { allow: ['127.0.0.8'] } } } });
  try {
    assert.equal((await probe(new URL('stream/inside', url), { localAddress: '127.0.0.1' })).status, 403);
    assert.equal((await probe(new URL('stream/inside', url), { localAddress: '127.0.0.8' })).status, 200);
    assert.equal((await probe(new URL('stream', url), { localAddress: '127.0.0.1' })).status, 200);
    assert.equal((await probe(new URL('status', url), { localAddress: '127.0.0.1' })).status, 200);
  } finally {
    await server.close(100);
    await removeFolder(dir);
  }
});

test('failed authentications lock an address out with 429 and Retry-After, even with the right password; others are not affected', async () => {
  const local = await authServer({ failures: { limit: 5, windowMs: 60_000, lockoutMs: 1500 } });
  try {
    const url = new URL('stream/lobby', local.url);
    for (let i = 0; i < 5; i++) assert.equal((await probe(url, { auth: { user: ALICE.user, password: `guess ${i}` }, localAddress: '127.0.0.6' })).status, 401);
    const locked = await probe(url, { auth: ALICE, localAddress: '127.0.0.6' });
    assert.equal(locked.status, 429);
    assert.match(locked.body, /SP_ERR_TOO_MANY_FAILURES/);
    assert.ok(Number(locked.headers['retry-after']) >= 1 && Number(locked.headers['retry-after']) <= 2, String(locked.headers['retry-after']));
    assert.equal((await probe(url, { localAddress: '127.0.0.6' })).status, 429, 'without credentials too');
    assert.equal((await probe(url, { auth: ALICE, localAddress: '127.0.0.7' })).status, 200, 'another address');
    assert.ok(local.logger.lines.some((line) => line.includes('SP_ERR_TOO_MANY_FAILURES') && line.includes('127.0.0.6')));
    await eventually(async () => (await probe(url, { auth: ALICE, localAddress: '127.0.0.6' })).status === 200, 5000, 'the lockout to end');
  } finally {
    await local.close();
  }
});

test('the failure counts are bounded: a flood of addresses keeps at most maxAddresses; a whole IPv6 /64 counts as one', () => {
  const tracker = new FailureTracker({ limit: 3, maxAddresses: 1000 });
  for (let i = 0; i < 50_000; i++) tracker.fail(`2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`);
  assert.equal(tracker.size, 1000);
  const rotating = new FailureTracker({ limit: 3 });
  for (const host of ['2001:db8:1:2::1', '2001:db8:1:2:ffff::9', '2001:db8:1:2:abcd:1:2:3']) rotating.fail(host);
  assert.ok(rotating.lockedFor('2001:db8:1:2::77') > 0, 'the /64 is locked');
  assert.equal(rotating.lockedFor('2001:db8:1:3::1'), 0, 'the next /64 is not');
  assert.ok(new FailureTracker({ limit: 1 }).fail('::ffff:10.1.2.3'));
});

test('htpasswd: non-bcrypt hashes are refused at load, naming the line and not the hash', async () => {
  const dir = await makeFolder();
  try {
    const file = join(dir, 'users');
    for (const hash of ['$apr1$Xz6x0HhS$3Wv0MB7S1jEksVXcTqM2M/', '{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=', 'rl8Y1eEtsJ9t6', 'plaintext']) {
      await writeFile(file, `# users\nalice:$2y$05$qNSBRNRLysrDc5Aqs/ACBOwUFNte3Gw6I8OM.J3gbYinR6QdvSw1C\ncarol:${hash}\n`);
      const error = await createAccessPolicy({ htpasswd: file }).then(() => undefined, (e: unknown) => e);
      assert.ok(isServerPushError(error, 'SP_ERR_CONFIG'), String(error));
      assert.match(error.message, /line 3 \(user "carol"\): only bcrypt/);
      assert.ok(!error.message.includes(hash), 'the hash is not shown');
    }
  } finally {
    await removeFolder(dir);
  }
});

test("a file of Apache's htpasswd -B ($2y$) works, and so do users added to it by serverpush passwd", needs('htpasswd'), async () => {
  const dir = await makeFolder();
  try {
    const file = join(dir, 'users');
    await new Promise<void>((resolve, reject) => {
      const child = spawn('htpasswd', ['-ciB', '-C', '5', file, 'alice'], { stdio: ['pipe', 'ignore', 'ignore'] });
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`htpasswd exited with ${code}`))));
      child.stdin.end('apache secret\n');
    });
    assert.match(await readFile(file, 'utf8'), /^alice:\$2y\$05\$/);
    await updateHtpasswd(file, 'bob', 'serverpush secret', 4);
    const policy = await createAccessPolicy({ htpasswd: file });
    const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    assert.deepEqual(await policy.authenticate(basic('alice', 'apache secret'), null, '/stream'), { ok: true, principal: { kind: 'user', name: 'alice' }, credentials: true });
    assert.equal((await policy.authenticate(basic('alice', 'Apache secret'), null, '/stream')).ok, false);
    assert.equal((await policy.authenticate(basic('bob', 'serverpush secret'), null, '/stream')).ok, true);
    // And Apache's own tool reads what serverpush wrote.
    await run('htpasswd', ['-vb', file, 'bob', 'serverpush secret']);
  } finally {
    await removeFolder(dir);
  }
});

test('read lists naming an unknown user, token or stream are refused', async () => {
  const dir = await makeFolder();
  try {
    const file = join(dir, 'users');
    await updateHtpasswd(file, 'alice', 'pw', 4);
    for (const [options, pattern] of [
      [{ htpasswd: file, read: { status: ['alicee'] } }, /no user "alicee"/],
      [{ read: { status: ['alice'] } }, /no htpasswd file/],
      [{ htpasswd: file, streams: { cam: { read: ['token:nope'] } } }, /no token named "nope"/],
      [{ htpasswd: file, read: { index: [] } }, /non-empty/],
      [{ allow: ['10.0.0.0/33'] }, /not an address or a CIDR range/],
    ] as const) {
      await assert.rejects(createAccessPolicy(options as never), (error: unknown) => isServerPushError(error, 'SP_ERR_CONFIG') && pattern.test(error.message));
    }
    await assert.rejects(startServer({ dir: dir, access: { htpasswd: file, streams: { cam: { read: ['alice'] } } } }), /stream "cam", which the server does not have/);
  } finally {
    await removeFolder(dir);
  }
});

test('health is public and metrics/status need a user by default; server.setAccess swaps the policy at run time', async () => {
  const local = await authServer();
  try {
    assert.equal((await probe(new URL('status', local.url))).status, 401);
    assert.equal((await probe(local.url)).status, 401, 'the index page');
    assert.equal((await probe(new URL('viewer/player.js', local.url))).status, 200, 'the viewer script is the same for everyone');
    local.server.setAccess(await createAccessPolicy({ htpasswd: local.htpasswd, read: { status: ['public'], index: ['public'] }, streams: { cam: { read: ['bob'] } } }));
    const status = await probe(new URL('status', local.url));
    assert.equal(status.status, 200);
    assert.deepEqual(Object.keys((JSON.parse(status.body) as { streams: object }).streams), [], 'the anonymous see no stream');
    assert.equal((await probe(new URL('stream/cam', local.url), { auth: BOB })).status, 200);
    assert.equal((await probe(new URL('stream/cam', local.url), { auth: ALICE })).status, 403);
    assert.throws(() => local.server.setAccess(undefined as never));
  } finally {
    await local.close();
  }
});

test('serverpush passwd: password from stdin (never argv), file mode 0600, written atomically; --delete', async () => {
  const dir = await makeFolder();
  try {
    const file = join(dir, 'users');
    const passwd = (args: string[], input: string) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, 'passwd', ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (t: string) => { stderr += t; });
      child.on('exit', (code) => resolve({ code, stderr }));
      child.stdin.end(input);
    });
    assert.equal((await passwd([file, 'carol'], 'first secret\n')).code, 0);
    assert.equal((await passwd([file, 'dave'], 'dave secret\n')).code, 0);
    assert.equal((await passwd([file, 'carol'], 'second secret\n')).code, 0);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const text = await readFile(file, 'utf8');
    assert.match(text, /^carol:\$2b\$10\$.{53}\ndave:\$2b\$10\$.{53}\n$/);
    assert.ok(!text.includes('secret'));
    const policy = await createAccessPolicy({ htpasswd: file });
    assert.equal((await policy.authenticate(`Basic ${Buffer.from('carol:second secret').toString('base64')}`, null, '/')).ok, true);
    assert.equal((await policy.authenticate(`Basic ${Buffer.from('carol:first secret').toString('base64')}`, null, '/')).ok, false);
    assert.equal((await passwd([file, 'dave', '--delete'], '')).code, 0);
    assert.doesNotMatch(await readFile(file, 'utf8'), /dave/);
    assert.equal((await readdir(dir)).length, 1, 'no temporary file left');
    const empty = await passwd([file, 'erin'], '\n');
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /the password is empty/);
    const extra = await passwd([file, 'erin', 'hunter2'], '');
    assert.equal(extra.code, 2, 'a password in argv is refused');
    assert.ok(!extra.stderr.includes('hunter2'));
  } finally {
    await removeFolder(dir);
  }
});

test('the CLI server: no password, token or signature in ps, in any log line, in /status or in an error body', needs('curl'), async () => {
  const dir = await makeFolder();
  try {
    const htpasswd = join(dir, 'users');
    await updateHtpasswd(htpasswd, 'alice', ALICE.password, 4);
    const keyFile = join(dir, 'link.key');
    await writeFile(keyFile, 'a link secret of at least sixteen bytes\n');
    const token = await runCli(['token', 'ha', '--scope', 'cams']);
    const [tokenValue, entry] = token.stdout.trim().split('\n');
    await writeFile(join(dir, 'tokens.json'), `[${entry}]`);
    const config = join(dir, 'serverpush.json');
    await writeFile(config, JSON.stringify({ htpasswd: 'users', linkSecretFile: 'link.key', tokensFile: 'tokens.json', streams: { default: { type: 'push' }, cam: { type: 'slideshow', dir: join(dir, '..'), read: ['alice', 'scope:cams'] } } }));
    const server = await startCli(['--config', config, '--port', '0']);
    try {
      const signed = await runCli(['sign', new URL('stream/cam', server.url).href, '--expires', '1h', '--config', config]);
      assert.equal(signed.code, 0, signed.stderr);
      const link = signed.stdout.trim();
      const signature = new URL(link).searchParams.get('token')!.split('.')[2]!;
      const answers: string[] = [];
      for (const args of [
        ['-u', `alice:${ALICE.password}`, new URL('status', server.url).href],
        ['-u', `alice:${ALICE.password}x`, new URL('status', server.url).href],
        ['-H', `Authorization: Bearer ${tokenValue}`, new URL('snapshot/cam', server.url).href],
        ['-H', `Authorization: Bearer ${tokenValue}x`, new URL('status', server.url).href],
        [link.replace(signature, signature.slice(1) + 'A')],
        [link.replace('/stream/cam', '/stream')],
        [`${link}&x=%ZZ`],
      ]) {
        const { stdout } = await run('curl', ['-s', '-m', '1', '-D', '-', ...args]).catch((error: { stdout: string }) => error);
        answers.push(stdout);
      }
      const ps = (await run('ps', ['-eo', 'args'])).stdout;
      const secrets = [ALICE.password, tokenValue!, signature, 'a link secret of at least sixteen bytes'];
      for (const secret of secrets) {
        assert.ok(!ps.includes(secret), `ps shows ${secret}`);
        assert.ok(!server.stderr().includes(secret), `the log shows ${secret}:\n${server.stderr()}`);
        for (const answer of answers) assert.ok(!answer.replace(/^[\s\S]*?\r\n\r\n/, '').includes(secret), `an answer shows ${secret}`);
      }
      assert.match(server.stderr(), /token=\*\*\*/, 'the token of a refused link is logged as ***');
      assert.match(server.stderr(), /SP_ERR_UNAUTHORIZED access: .* from 127\.0\.0\.1/);
    } finally {
      await server.stop();
    }
  } finally {
    await removeFolder(dir);
  }
});

test('library users: liveHandler with hooks.admit = accessAdmission(policy) checks users, tokens and signed links of its stream', needs('curl'), async (t) => {
  const policy = await createAccessPolicy({ htpasswd: fx.htpasswd, linkSecretFile: fx.linkSecretFile, streams: { garden: { read: ['bob'] } } });
  const stream = new LiveStream({ name: 'garden' });
  stream.push({ contentType: 'image/jpeg', body: FRAMES[0]! });
  const http = createHttpServer(liveHandler(stream, { admit: accessAdmission(policy) }));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  t.after(() => { http.closeAllConnections(); http.close(); });
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/garden.mjpg`;
  const head = async (args: string[]) => (await run('curl', ['-s', '-m', '1', '-o', '/dev/null', '-D', '-', ...args, url]).catch((error: { stdout: string }) => error)).stdout;
  assert.match(await head(['-u', `${BOB.user}:${BOB.password}`]), /^HTTP\/1\.1 200 [\s\S]*multipart\/x-mixed-replace/);
  assert.match(await head(['-u', `${ALICE.user}:${ALICE.password}`]), /^HTTP\/1\.1 403 /);
  const anonymous = await head([]);
  assert.match(anonymous, /^HTTP\/1\.1 401 /);
  assert.match(anonymous, /WWW-Authenticate: Basic realm="serverpush", charset="UTF-8"/);
  const link = signLink(url, { secret: fx.linkSecret, expiresInSeconds: 60 });
  assert.equal((await probe(link)).status, 200);
  assert.equal((await probe(link.replace('garden.mjpg', 'other.mjpg'))).status, 401);
});

test('the CLI form: serve DIR --htpasswd FILE protects everything; bad access flags exit 2 with SP_ERR_CONFIG', needs('curl'), async () => {
  const dir = await makeFolder({ 'a.txt': 'hello' });
  try {
    const htpasswd = join(dir, 'users');
    await updateHtpasswd(htpasswd, 'alice', ALICE.password, 4);
    const server = await startCli([dir, '--port', '0', '--htpasswd', htpasswd, '--allow', '127.0.0.0/8', '--trust-proxy', '127.0.0.1']);
    try {
      for (const path of ['', 'stream', 'snapshot', 'view', 'status', '?action=stream']) {
        const { stdout } = await run('curl', ['-s', '-m', '1', '-o', '/dev/null', '-w', '%{http_code}', new URL(path, server.url).href]);
        assert.equal(stdout, '401', `/${path}`);
        const ok = await run('curl', ['-s', '-m', '1', '-o', '/dev/null', '-w', '%{http_code}', '-u', `alice:${ALICE.password}`, new URL(path, server.url).href]).catch((error: { stdout: string }) => error);
        assert.equal(ok.stdout, '200', `alice /${path}`);
      }
    } finally {
      await server.stop();
    }
    for (const [args, pattern] of [
      [['--allow', '10.0.0.0/33'], /allow: "10\.0\.0\.0\/33" is not an address/],
      [['--htpasswd', join(dir, 'missing')], /htpasswd .*missing: cannot read it \(ENOENT\)/],
      [['--link-secret-file', join(dir, 'a.txt')], /at least 16 bytes/],
      [['--htpasswd', ''], /--htpasswd needs a value/],
    ] as const) {
      const result = await runCli(['serve', dir, '--port', '0', ...args]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, pattern);
    }
  } finally {
    await removeFolder(dir);
  }
});

test('serverpush passwd on a terminal: the password is asked twice with echo off; two different ones change nothing', needs('python3'), async () => {
  const dir = await makeFolder();
  try {
    const file = join(dir, 'users');
    const driver = new URL('./helpers/tty-driver.py', import.meta.url).pathname;
    const typed = async (first: string, second: string) => run('python3', [driver, 'password for', first, 'Again', second, '--', process.execPath, CLI, 'passwd', file, 'erin']).then(
      ({ stdout }) => ({ code: 0, shown: stdout }), (error: { code: number; stdout: string }) => ({ code: error.code, shown: error.stdout }));
    const added = await typed('typed on a tty', 'typed on a tty');
    assert.equal(added.code, 0, added.shown);
    assert.match(added.shown, /New password for erin: \r?\n.*Again: /s);
    assert.ok(!added.shown.includes('typed on a tty'), `the terminal echoed the password: ${added.shown}`);
    const policy = await createAccessPolicy({ htpasswd: file });
    assert.equal((await policy.authenticate(`Basic ${Buffer.from('erin:typed on a tty').toString('base64')}`, null, '/')).ok, true);
    const before = await readFile(file, 'utf8');
    const differ = await typed('one password', 'another one');
    assert.equal(differ.code, 1);
    assert.match(differ.shown, /the passwords differ; nothing changed/);
    assert.equal(await readFile(file, 'utf8'), before);
  } finally {
    await removeFolder(dir);
  }
});

test('over HTTP/2 (compatibility API): the same check admits, refuses with 401/403 and its challenge (curl --http2-prior-knowledge)', needs('curl'), async (t) => {
  const policy = await createAccessPolicy({ htpasswd: fx.htpasswd, linkSecretFile: fx.linkSecretFile, streams: { porch: { read: ['alice'] } } });
  const stream = new LiveStream({ name: 'porch' });
  stream.push({ contentType: 'image/jpeg', body: FRAMES[0]! });
  const handler = liveHandler(stream, { admit: accessAdmission(policy) });
  const h2 = createHttp2Server((req, res) => handler(req as never, res as never));
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => { h2.close(() => resolve()); setTimeout(resolve, 200); }));
  const url = `http://127.0.0.1:${(h2.address() as AddressInfo).port}/porch`;
  const head = async (args: string[], target = url) => (await run('curl', ['-s', '--http2-prior-knowledge', '-m', '1', '-o', '/dev/null', '-D', '-', ...args, target]).catch((error: { stdout: string }) => error)).stdout;
  assert.match(await head(['-u', `${ALICE.user}:${ALICE.password}`]), /^HTTP\/2 200[\s\S]*content-type: multipart\/x-mixed-replace/i);
  assert.match(await head(['-u', `${BOB.user}:${BOB.password}`]), /^HTTP\/2 403/);
  const anonymous = await head([]);
  assert.match(anonymous, /^HTTP\/2 401/);
  assert.match(anonymous, /www-authenticate: Basic realm="serverpush", charset="UTF-8"/i);
  assert.match(await head([], signLink(url, { secret: fx.linkSecret, expiresInSeconds: 60 })), /^HTTP\/2 200/);
  assert.match(await head([], signLink(url, { secret: fx.linkSecret, expiresInSeconds: 60, now: Date.now() - 120_000 })), /^HTTP\/2 401/);
});

test('serverpush itself as a client: get with user:password@ or a signed link, and a relay of a protected serverpush (passwordFile)', async (t) => {
  const withPassword = new URL('stream/cam', fx.url);
  withPassword.username = ALICE.user;
  withPassword.password = encodeURIComponent(ALICE.password);
  const got = await runCli(['get', withPassword.href, '--count', '3']);
  assert.equal(got.code, 0, got.stderr);
  assert.equal(got.stdout.trim().split('\n').length, 3);
  assert.ok(!got.stdout.includes(ALICE.password) && !got.stderr.includes(ALICE.password));
  const refused = await runCli(['get', new URL('stream/cam', fx.url).href, '--count', '1']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /SP_ERR_AUTH_FAILED|401/);
  const link = signLink(new URL('stream/cam', fx.url), { secret: fx.linkSecret, expiresInSeconds: 60 });
  const linked = await runCli(['get', link, '--count', '2']);
  assert.equal(linked.code, 0, linked.stderr);

  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  await writeFile(join(dir, 'password'), `${ALICE.password}\n`);
  const { server: relay, url } = await startServer({ streams: { door: { type: 'relay', url: new URL('stream/cam', fx.url).href, username: ALICE.user, passwordFile: join(dir, 'password') } } });
  t.after(() => relay.close(100));
  // The relay pulls on demand: the first request wakes it (503 SP_ERR_NO_FRAME until a frame came).
  let through = await probe(new URL('stream/door', url));
  await eventually(async () => (through = await probe(new URL('stream/door', url))).status === 200, 10_000, 'the relay to get a frame through the password');
  assert.match(through.body, /Content-Type: image\/jpeg/);
});

test('the config file: access keys (paths relative to it), per-stream read/allow/deny, and their errors', async () => {
  const dir = await makeFolder();
  try {
    const file = join(dir, 'serverpush.json');
    await writeFile(file, JSON.stringify({
      htpasswd: 'users', tokensFile: 'tokens.json', linkSecretFile: 'link.key', allow: ['10.0.0.0/8'], deny: ['10.0.0.9'], trustProxy: ['127.0.0.1'],
      tokens: [{ name: 'ha', sha256: 'a'.repeat(64), scopes: ['cams'] }],
      access: { index: ['public'], status: ['alice'] }, authFailures: { limit: 3, window: 10, lockout: 30 }, credentialCache: 5,
      streams: { cam: { type: 'push', read: ['alice', 'scope:cams'], allow: ['192.168.0.0/16'], deny: ['192.168.1.1'] }, lobby: { type: 'push' } },
    }));
    const config = await loadConfig(file);
    assert.deepEqual(config.streams['cam'], { type: 'push' });
    assert.deepEqual(config.access, {
      htpasswd: join(dir, 'users'), tokensFile: join(dir, 'tokens.json'), linkSecretFile: join(dir, 'link.key'),
      tokens: [{ name: 'ha', sha256: 'a'.repeat(64), scopes: ['cams'] }],
      allow: ['10.0.0.0/8'], deny: ['10.0.0.9'], trustProxy: ['127.0.0.1'],
      read: { index: ['public'], status: ['alice'] }, failures: { limit: 3, windowMs: 10_000, lockoutMs: 30_000 }, credentialCacheMs: 5000,
      streams: { cam: { read: ['alice', 'scope:cams'], allow: ['192.168.0.0/16'], deny: ['192.168.1.1'] } },
    });
    for (const [bad, pattern] of [
      [{ access: { everything: ['public'] } }, /access: unknown key "everything"/],
      [{ access: { status: 'alice' } }, /status must be a list of strings/],
      [{ allow: '10.0.0.0/8' }, /allow must be a list of strings/],
      [{ authFailures: { limit: 0 } }, /authFailures.limit must be a positive integer/],
      [{ htpasswd: 7 }, /htpasswd must be a file name/],
      [{ streams: { cam: { type: 'push', read: 'alice' } } }, /streams.cam: read must be a list of strings/],
    ] as const) {
      await writeFile(file, JSON.stringify({ streams: { cam: { type: 'push' } }, ...bad }));
      await assert.rejects(loadConfig(file), (error: unknown) => isServerPushError(error, 'SP_ERR_CONFIG') && pattern.test(error.message), JSON.stringify(bad));
    }
    await writeFile(file, JSON.stringify({ tokens: [{ name: 'ha', token: 'plain' }], streams: { cam: { type: 'push' } } }));
    await assert.rejects(createAccessPolicy((await loadConfig(file)).access!), /store the token's sha256, never the token/);
  } finally {
    await removeFolder(dir);
  }
});

test('client address behind proxies: Forwarded (quoted, IPv6, ports) and X-Forwarded-For, rightmost untrusted hop, garbage stops the walk', () => {
  const trusted = new AddressList(['10.0.0.0/8', '2001:db8:ffff::/48'], 'trustProxy');
  assert.equal(clientAddress('203.0.113.5', { 'x-forwarded-for': '198.51.100.1' }, trusted), '203.0.113.5', 'an untrusted peer is the client');
  assert.equal(clientAddress('10.0.0.1', { 'x-forwarded-for': '198.51.100.1, 192.0.2.9, 10.0.0.2' }, trusted), '192.0.2.9');
  assert.equal(clientAddress('::ffff:10.0.0.1', { forwarded: 'for=198.51.100.1;proto=https, for="[2001:db8::7]:4711";by=x' }, trusted), '2001:db8::7');
  assert.equal(clientAddress('2001:db8:ffff::1', { forwarded: 'for="192.0.2.60:8080"' }, trusted), '192.0.2.60');
  assert.equal(clientAddress('10.0.0.1', { forwarded: 'for=unknown, for=10.0.0.3' }, trusted), '10.0.0.3', 'garbage stops at the last trusted hop');
  assert.equal(clientAddress('10.0.0.1', { 'x-forwarded-for': 'not-an-address' }, trusted), '10.0.0.1');
  assert.equal(clientAddress('10.0.0.1', { forwarded: 'for=198.51.100.1', 'x-forwarded-for': '192.0.2.1' }, trusted), '198.51.100.1', 'Forwarded wins');
  assert.equal(clientAddress('10.0.0.1', {}, trusted), '10.0.0.1');
  assert.ok(new AddressList(['::ffff:10.0.0.0/104'], 'x').has('10.1.2.3'), 'a mapped range is an IPv4 range');
  assert.ok(new AddressList(['2001:db8::/32'], 'x').has('2001:DB8:0:1::5'));
  assert.ok(!new AddressList(['2001:db8::/32'], 'x').has('2001:db9::1'));
});

test('/metrics, like /status, shows a user only the series of the streams they may read', async () => {
  const f = await authServer();
  try {
    const bob = await probe(new URL('metrics', f.url), { auth: BOB });
    assert.equal(bob.status, 200);
    assert.match(bob.body, /^serverpush_viewers_total\{stream="lobby"\} \d+$/m);
    assert.doesNotMatch(bob.body, /stream="cam"/, 'bob may not read cam: its name is not in his /metrics');
    assert.match(bob.body, /^# TYPE serverpush_frames_in_total counter$/m, 'the families are all there');
    const alice = await probe(new URL('metrics', f.url), { auth: ALICE });
    assert.match(alice.body, /^serverpush_viewers_total\{stream="cam"\} \d+$/m);
  } finally {
    await f.close();
  }
});
