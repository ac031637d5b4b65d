/**
 * An attacker's suite against access control (issue 12): no way around the one check through
 * mjpg-streamer URLs, trailing or doubled slashes, percent-encoding, dot segments, HEAD, HTTP/1.0,
 * the absolute form, `Host` games, `basePath`, malformed credentials or tokens; and a wrong user
 * name takes as long as a wrong password.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, BOB, authServer, probe, rawRequest, type AuthFixture } from './helpers/auth.ts';
import { signLink } from '../src/server/access/signed-link.ts';
import { BcryptPool } from '../src/server/access/bcrypt-pool.ts';
import { isServerPushError } from '../src/errors.ts';
import { get } from 'node:http';

let fx: AuthFixture;
let based: AuthFixture;
before(async () => {
  fx = await authServer({ failures: { limit: 100_000 } });
  based = await authServer({ failures: { limit: 100_000 } }, { basePath: '/webcam' });
});
after(async () => {
  await fx.close();
  await based.close();
});

/** Paths that are, or look like, the protected stream `cam` (input 1 of mjpg-streamer's URLs). */
const CAM_VARIANTS = [
  '/stream/cam', '/stream/cam/', '/stream/cam//', '//stream/cam', '/stream//cam', '/%73tream/cam', '/stream/%63am', '/STREAM/cam',
  '/stream/cam%2F', '/stream/cam%00', '/stream/./cam', '/stream/../stream/cam', '/stream/%2e%2e/stream/cam', '/x/../stream/cam',
  '/snapshot/cam', '/snapshot/cam/', '/view/cam', '/view/%63am', '/view/cam/', '/view/%2e%2e%2fstream%2fcam',
  '/?action=stream_1', '/?action=snapshot_1', '/?action=stream_01', '/?action=stream_1&action=stream_0',
  '/stream/cam?raw=1', '/stream/cam?only=image&fps=1', '/stream/cam#x', '/stream/cam;x', '/status/', '/status?streams=cam',
];

function assertNothingOfCam(answer: { status: number; body: string }, who: string, path: string): void {
  assert.notEqual(answer.status, 200, `${who} ${path} answered 200`);
  assert.ok(answer.status >= 400 && answer.status < 500, `${who} ${path}: ${answer.status}`);
  assert.doesNotMatch(answer.body, /--serverpush|\xff\xd8|"cam"|streams.*cam/, `${who} ${path} leaked: ${answer.body.slice(0, 200)}`);
}

test('no bypass: every path that is or looks like a protected stream is refused to the anonymous and to a user without the right', async () => {
  for (const path of CAM_VARIANTS) {
    for (const method of ['GET', 'HEAD']) {
      const url = `http://${fx.url.host}${path}`;
      const anonymous = await probe(url, { method });
      assertNothingOfCam(anonymous, `anonymous ${method}`, path);
      const bob = await probe(url, { method, auth: BOB });
      // /status is bob's to read, without cam in it.
      if (path.startsWith('/status')) {
        assert.equal(bob.status, 200);
        assert.doesNotMatch(bob.body, /cam/);
        continue;
      }
      assertNothingOfCam(bob, `bob ${method}`, path);
    }
  }
  // The router and the check read the same (first) action: here it is the default stream, bob's to read.
  assert.equal((await probe(`http://${fx.url.host}/?action=stream_0&action=stream_1`, { auth: BOB })).status, 200);
  // The same paths that are the stream do serve alice (the check is not just refusing everything).
  for (const path of ['/stream/cam', '/stream/cam/', '/snapshot/cam', '/view/cam', '/view/%63am', '/?action=stream_1', '/?action=stream_01']) {
    assert.equal((await probe(`http://${fx.url.host}${path}`, { auth: ALICE })).status, 200, `alice ${path}`);
  }
});

test('no bypass through HTTP/1.0, HEAD, the absolute form or odd Host headers (raw sockets)', async () => {
  const basic = (auth: { user: string; password: string }) => `Authorization: Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}\r\n`;
  const cases: Array<[string, RegExp]> = [
    ['GET /stream/cam HTTP/1.0\r\n\r\n', /^HTTP\/1\.1 401 /],
    ['HEAD /stream/cam HTTP/1.0\r\n\r\n', /^HTTP\/1\.1 401 /],
    [`GET /stream/cam HTTP/1.0\r\n${basic(BOB)}\r\n`, /^HTTP\/1\.1 403 /],
    ['GET /?action=stream_1 HTTP/1.0\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 401 /],
    [`GET http://${fx.url.host}/stream/cam HTTP/1.1\r\nHost: ${fx.url.host}\r\nConnection: close\r\n\r\n`, /^HTTP\/1\.1 401 /],
    [`GET http://elsewhere/stream/cam HTTP/1.1\r\nHost: elsewhere\r\nConnection: close\r\n\r\n`, /^HTTP\/1\.1 401 /],
    ['GET /stream/cam HTTP/1.1\r\nHost: [::1]:80\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 401 /],
    // RFC 9112 §3.2: a Host that is not host[:port] is a 400 (must-have 7).
    ['GET /stream/cam HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 400 .*SP_ERR_BAD_REQUEST/s],
    ['GET /status HTTP/1.1\r\nHost: example.com/stream\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 400 .*SP_ERR_BAD_REQUEST/s],
    ['GET /status HTTP/1.1\r\nHost: example.com:99999\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 400 .*SP_ERR_BAD_REQUEST/s],
    ['GET /status HTTP/1.1\r\nHost: example.com:8o\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 400 .*SP_ERR_BAD_REQUEST/s],
    ['GET /status HTTP/1.1\r\nHost: user@example.com\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 400 .*SP_ERR_BAD_REQUEST/s],
    ['GET /status HTTP/1.1\r\nHost: [::1\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 400 .*SP_ERR_BAD_REQUEST/s],
    ['GET /status HTTP/1.1\r\nHost: x\r\nHost: y\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 400 .*SP_ERR_BAD_REQUEST/s],
    [`GET /status HTTP/1.1\r\nHost: localhost:${fx.url.port}\r\n${basic(BOB)}Connection: close\r\n\r\n`, /^HTTP\/1\.1 200 /],
  ];
  for (const [request, expected] of cases) {
    const answer = await rawRequest(fx.url, request);
    assert.match(answer, expected, JSON.stringify(request));
    assert.doesNotMatch(answer, /--serverpush|"cam"/, JSON.stringify(request));
  }
});

test('malformed credentials and tokens are a 401, never a 500 and never a way in', async () => {
  const url = new URL('stream/cam', fx.url);
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const link = new URL(signLink(url, { secret: fx.linkSecret, expiresInSeconds: 60 }));
  const token = link.searchParams.get('token')!;
  const authorizations = ['Basic', 'Basic ', 'Basic !!!!', `Basic ${b64('alice')}`, `Basic ${b64('alice:')}`, `Basic ${b64(':' + ALICE.password)}`, `basic ${b64(`${ALICE.user}:${ALICE.password.toUpperCase()}`)}`,
    `Basic ${b64(`${ALICE.user}:${ALICE.password}`)}=`, 'Bearer', 'Bearer ', `Bearer ${fx.token.slice(0, -1)}`, 'Digest username="alice"', 'Negotiate abc', `${b64(`${ALICE.user}:${ALICE.password}`)}`];
  for (const authorization of authorizations) {
    const answer = await probe(url, { headers: { Authorization: authorization } });
    assert.equal(answer.status, 401, authorization);
    assert.match(answer.body, /SP_ERR_UNAUTHORIZED/);
  }
  // Case of the scheme does not matter (RFC 9110 §11.1).
  assert.equal((await probe(url, { headers: { Authorization: `bAsIc ${b64(`${ALICE.user}:${ALICE.password}`)}` } })).status, 200);
  for (const query of ['token=', 'token=abc', `token=${token}x`, `token=${token.replace(/^\d+/, '99999999999')}`, `token=${token}.x`, `token=x&token=${token}`, 'token=1.%00.AAAA']) {
    const answer = await probe(`${url.href}?${query}`);
    assert.equal(answer.status, 401, query);
  }
  // A wrong Authorization is not rescued by a valid link, nor a valid user by a wrong link.
  assert.equal((await probe(link, { headers: { Authorization: `Basic ${b64('alice:wrong')}` } })).status, 401);
  assert.equal((await probe(`${url.href}?token=bad`, { auth: ALICE })).status, 200, 'the Authorization header decides when both are given');
  // A link is for a stream only: it does not open /status.
  const statusLink = signLink(new URL('status', fx.url), { secret: fx.linkSecret, expiresInSeconds: 60 });
  assert.equal((await probe(statusLink)).status, 403);
});

test('basePath: the paths under it are guarded, the ones beside it are not served at all', async () => {
  const host = `http://${based.url.host}`;
  for (const path of ['/webcam/stream/cam', '/webcam/stream/cam/', '/webcam//stream/cam', '/webcam/./stream/cam', '/webcam?action=stream_1', '/webcam/?action=stream_1', '/webcam/view/cam', '/webcam/status']) {
    const anonymous = await probe(`${host}${path}`);
    assert.ok(anonymous.status === 401 || anonymous.status === 404, `anonymous ${path}: ${anonymous.status}`);
    assertNothingOfCam(anonymous, 'anonymous', path);
  }
  for (const path of ['/stream/cam', '/WEBCAM/stream/cam', '/webcam%2fstream/cam', '/webcamx/stream/cam', '/webcam/../stream/cam']) {
    const answer = await probe(`${host}${path}`, { auth: ALICE });
    assert.equal(answer.status, 404, path);
  }
  assert.equal((await probe(`${host}/webcam/stream/cam`, { auth: ALICE })).status, 200);
  assert.equal((await probe(`${host}/webcam?action=stream_1`, { auth: ALICE })).status, 200);
  // A link signed for the path below the base works, and cannot be moved.
  const link = signLink(`${host}/webcam/stream/cam`, { secret: based.linkSecret, expiresInSeconds: 60, basePath: '/webcam' });
  assert.equal((await probe(link)).status, 200);
  assert.equal((await probe(link.replace('/stream/cam', '/snapshot/cam'))).status, 401);
});

/** Median of numbers. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

test('timing: an unknown user takes as long as a known user with a wrong password (one bcrypt check each)', async () => {
  // Cost 10, as serverpush passwd makes them: ~50–100 ms a check.
  const timed = await authServer({ failures: { limit: 100_000 } }, {}, 10);
  try {
    const url = new URL('status', timed.url);
    const unknown: number[] = [];
    const wrong: number[] = [];
    const right: number[] = [];
    for (let i = 0; i < 10; i++) {
      for (const [list, auth] of [[unknown, { user: `nobody${i}`, password: 'guess' }], [wrong, { user: ALICE.user, password: `guess${i}` }], [right, ALICE]] as const) {
        const started = performance.now();
        const answer = await probe(url, { auth });
        list.push(performance.now() - started);
        assert.equal(answer.status, auth === ALICE ? 200 : 401);
      }
    }
    const ratio = median(unknown) / median(wrong);
    console.log(`# unknown user ${median(unknown).toFixed(1)} ms, wrong password ${median(wrong).toFixed(1)} ms (ratio ${ratio.toFixed(2)}), right password (cached) ${median(right).toFixed(1)} ms`);
    assert.ok(median(wrong) > 10, 'a wrong password costs a bcrypt check');
    assert.ok(ratio > 0.5 && ratio < 2, `unknown/wrong = ${ratio.toFixed(2)}`);
    assert.ok(median(right) < median(wrong), 'the right password is remembered (cached) after the first check');
  } finally {
    await timed.close();
  }
});

test('a password-guessing flood does not stall the streams: bcrypt runs in a worker thread, and a full queue answers 503 SP_ERR_AUTH_BUSY', async (t) => {
  const flood = await authServer({ failures: { limit: 1e9 }, streams: { cam: { read: ['public'] } } }, {}, 10);
  t.after(() => flood.close());
  // A viewer of a stream fed 20 frames a second (authServer's feed), counting what arrives.
  let chunks = 0;
  const viewer = get(new URL('stream/cam', flood.url), (res) => res.on('data', () => { chunks++; }));
  t.after(() => viewer.destroy());
  await eventuallyChunks(() => chunks > 0);
  const statuses = new Map<number, number>();
  let stop = false;
  const attackers = Array.from({ length: 8 }, async (_, k) => {
    for (let n = 0; !stop; n++) {
      const answer = await probe(new URL('status', flood.url), { auth: { user: ALICE.user, password: `guess ${k} ${n}` } });
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    }
  });
  const before = chunks;
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const during = chunks - before;
  stop = true;
  await Promise.all(attackers);
  console.log(`# viewer got ${during} writes in 3 s (about 60 frames pushed) while wrong passwords were checked: ${[...statuses].map(([s, n]) => `${s}×${n}`).join(' ')}`);
  assert.ok((statuses.get(401) ?? 0) > 5, 'the guesses were checked');
  // On the event loop itself bcrypt dropped such a viewer to a sixth of its frames; here it keeps at least half.
  assert.ok(during >= 30, `the viewer got ${during} writes in 3 s`);

  // 80 checks at once: the queue (64) is full for some of them, who get 503 with Retry-After, never a 500.
  const burst = await Promise.all(Array.from({ length: 80 }, (_, i) => probe(new URL('status', flood.url), { auth: { user: ALICE.user, password: `burst ${i}` } })));
  const busy = burst.filter((answer) => answer.status === 503);
  assert.ok(busy.length > 0, `some were refused as busy: ${burst.map((a) => a.status).join(' ')}`);
  assert.ok(burst.every((answer) => answer.status === 401 || answer.status === 503));
  for (const answer of busy) {
    assert.match(answer.body, /SP_ERR_AUTH_BUSY/);
    assert.equal(answer.headers['retry-after'], '1');
  }
  assert.equal((await probe(new URL('status', flood.url), { auth: ALICE })).status, 200, 'and right after, the right password works');
});

async function eventuallyChunks(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('the viewer got nothing');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('BcryptPool: checks run off the event loop; past maxQueue a check is refused at once with SP_ERR_AUTH_BUSY', async (t) => {
  const pool = new BcryptPool(2);
  t.after(() => pool.close());
  const hash = await pool.hash('secret', 8);
  assert.match(hash, /^\$2b\$08\$/);
  const checks = [pool.compare('secret', hash), pool.compare('wrong', hash), pool.compare('third', hash)];
  const [right, wrong, third] = await Promise.allSettled(checks);
  assert.deepEqual(right, { status: 'fulfilled', value: true });
  assert.deepEqual(wrong, { status: 'fulfilled', value: false });
  assert.equal(third!.status, 'rejected');
  assert.ok(isServerPushError((third as PromiseRejectedResult).reason, 'SP_ERR_AUTH_BUSY'));
  // A hash (loading a file of users) is never refused, even when the queue is full.
  const hashes = await Promise.all([pool.compare('a', hash), pool.compare('b', hash), pool.hash('c', 4)]);
  assert.match(hashes[2] as string, /^\$2b\$04\$/);
  // The event loop stays free while a check runs (cost 12: ~300 ms of bcrypt).
  const slow = pool.hash('x', 12);
  const started = performance.now();
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 10);
  await slow;
  clearInterval(timer);
  const elapsed = performance.now() - started;
  assert.ok(ticks >= elapsed / 10 / 4, `${ticks} timer ticks in ${elapsed.toFixed(0)} ms`);
});
