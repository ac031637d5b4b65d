/**
 * Access control on serverpush's own HTTPS server (issue 12: items 1–5 together with item 6): the
 * one check guards HTTP/2 and HTTP/1.1 over TLS alike — curl over HTTP/2 with and without a user,
 * a user without the right, `/status` filtered, a signed link, `:authority` games, and ffmpeg
 * reading a protected stream over HTTPS with credentials in its URL.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:http2';
import { missing, needs } from './helpers/tools.ts';
import { ALICE, BOB, authServer, type AuthFixture } from './helpers/auth.ts';
import { makeCa, makeServerCert, type TestCa } from './helpers/tls.ts';
import { signLink } from '../src/server/access/signed-link.ts';

let dir = '';
let ca: TestCa;
let fixture: AuthFixture;

before(async () => {
  if (missing('openssl')) return; // the tests below skip, saying why
  dir = await mkdtemp(join(tmpdir(), 'serverpush-auth-tls-'));
  ca = await makeCa(dir);
  const cert = await makeServerCert(ca, 'server', '0A11');
  fixture = await authServer({}, { tls: { certFile: cert.certFile, keyFile: cert.keyFile } });
});

after(async () => {
  await fixture?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** curl's answer: status, HTTP version, the WWW-Authenticate header and the body's first bytes. */
function curl(path: string, args: string[] = []): Promise<{ status: number; version: string; challenge: string; body: string }> {
  const url = new URL(path, fixture.url);
  return new Promise((resolve, reject) => {
    execFile('curl', ['-s', '--cacert', ca.certFile, '--max-time', '2', '-D', '-', '-w', '\n%{http_code} %{http_version}', ...args, url.href], { encoding: 'latin1', maxBuffer: 64 * 1024 * 1024 }, (error, stdout) => {
      // --max-time ends an endless stream with exit 28: what it read is the answer.
      if (error && error.code !== 28) return reject(error);
      const tail = /\n(\d{3}) ([\d.]+)$/.exec(stdout);
      if (!tail) return reject(new Error(`no status from curl: ${stdout.slice(-200)}`));
      const challenge = /^www-authenticate: (.*)\r$/im.exec(stdout)?.[1] ?? '';
      resolve({ status: Number(tail[1]), version: tail[2]!, challenge, body: stdout });
    });
  });
}

test('over HTTP/2: no credentials 401 with the Basic challenge, a user reads the stream, a user without the right gets 403 and does not see the stream in /status', needs('curl', 'openssl'), async () => {
  const anonymous = await curl('stream/cam', ['--http2']);
  assert.equal(anonymous.version, '2');
  assert.equal(anonymous.status, 401);
  assert.match(anonymous.challenge, /^Basic realm="serverpush"/);
  assert.match(anonymous.body, /SP_ERR_UNAUTHORIZED/);

  const alice = await curl('stream/cam', ['--http2', '-u', `${ALICE.user}:${ALICE.password}`]);
  assert.equal(alice.version, '2');
  assert.equal(alice.status, 200);
  assert.ok((alice.body.match(/Content-Type: image\/jpeg/g) ?? []).length >= 5, 'alice got frames of cam over HTTP/2');

  const bob = await curl('stream/cam', ['--http2', '-u', `${BOB.user}:${BOB.password}`]);
  assert.equal(bob.status, 403);
  assert.match(bob.body, /SP_ERR_FORBIDDEN/);
  const bobStatus = await curl('status', ['--http2', '-u', `${BOB.user}:${BOB.password}`]);
  assert.equal(bobStatus.status, 200);
  assert.doesNotMatch(bobStatus.body, /"cam"/, 'bob does not learn that cam exists');
  assert.match(bobStatus.body, /"lobby"/);

  const wrong = await curl('stream', ['--http1.1', '-u', `${BOB.user}:not-his-password`]);
  assert.equal(wrong.version, '1.1');
  assert.equal(wrong.status, 401);
  for (const answer of [anonymous, alice, bob, bobStatus, wrong]) {
    assert.ok(!answer.body.includes(ALICE.password) && !answer.body.includes(BOB.password), 'no password in any answer');
  }
});

test('over HTTP/2: a signed link reads its stream, and only that one', needs('curl', 'openssl'), async () => {
  const signed = new URL(signLink(new URL('stream/cam', fixture.url).href, { secret: fixture.linkSecret, expiresInSeconds: 60 }));
  const good = await curl(`${signed.pathname.slice(1)}${signed.search}`, ['--http2']);
  assert.equal(good.status, 200);
  assert.ok((good.body.match(/Content-Type: image\/jpeg/g) ?? []).length >= 5);
  const moved = await curl(`stream/lobby${signed.search}`, ['--http2']);
  assert.equal(moved.status, 401);
});

test('over HTTP/2: an :authority that is not a valid host[:port] is refused with 400', needs('openssl'), async () => {
  const session = connect(fixture.url, { ca: ca.pem, servername: 'localhost' });
  session.on('error', () => {});
  try {
    // (A space or a slash never gets here: nghttp2 refuses such an :authority itself, on both ends.)
    for (const authority of ['localhost:99999', 'user@localhost', 'localhost:8a']) {
      const status = await new Promise<number>((resolve, reject) => {
        const stream = session.request({ ':path': '/status', ':authority': authority, authorization: `Basic ${Buffer.from(`${ALICE.user}:${ALICE.password}`).toString('base64')}` });
        stream.on('error', reject);
        stream.on('response', (headers) => resolve(Number(headers[':status'])));
        stream.resume();
      });
      assert.equal(status, 400, `:authority ${JSON.stringify(authority)}`);
    }
  } finally {
    session.close();
  }
});

test('ffmpeg reads a protected stream over HTTPS with the user in its URL', needs('ffmpeg', 'openssl'), async () => {
  const url = new URL('stream', fixture.url);
  url.username = BOB.user;
  url.password = BOB.password;
  const frames = await new Promise<number>((resolve, reject) => {
    execFile('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-ca_file', ca.certFile, '-tls_verify', '1', '-f', 'mpjpeg', '-i', url.href, '-frames:v', '5', '-f', 'null', '-'], { timeout: 20_000 }, (error, _stdout, stderr) => {
      if (error) return reject(new Error(`ffmpeg: ${stderr || error.message}`));
      resolve(5);
    });
  });
  assert.equal(frames, 5);
  const lines = fixture.logger.lines.join('\n');
  assert.ok(!lines.includes(BOB.password), 'no password in the log');
});
