/**
 * JSON Web Tokens as bearer tokens (issue 12, item 3's option): HS256 with a secret file, RS256
 * from a JWKS file, ES256 from a JWKS URL; the claim naming streams; expired, foreign, unsigned
 * (`alg: none`) and tampered tokens refused. Tokens made with jose, sent by curl and Node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { needs } from './helpers/tools.ts';
import { BOB, authServer, probe } from './helpers/auth.ts';
import { loadConfig } from '../src/cli/config.ts';
import { makeFolder, removeFolder } from './helpers/server.ts';

const run = promisify(execFile);

function jwt(claims: Record<string, unknown>, expires: string | number = '5m') {
  return new SignJWT(claims).setIssuedAt().setExpirationTime(expires).setSubject('dashboard');
}

test('JWT: HS256, RS256 (JWKS file) and ES256 (JWKS URL) tokens read the streams their claim names; expired, foreign and unsigned ones are refused', needs('curl'), async (t) => {
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  const hsSecret = randomBytes(32);
  await writeFile(join(dir, 'jwt.key'), hsSecret);
  const rsa = await generateKeyPair('RS256');
  await writeFile(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'rsa1', alg: 'RS256' }] }));
  const ec = await generateKeyPair('ES256');
  const jwks = createHttpServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    void exportJWK(ec.publicKey).then((key) => res.end(JSON.stringify({ keys: [{ ...key, kid: 'ec1', alg: 'ES256' }] })));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  t.after(() => { jwks.closeAllConnections(); jwks.close(); });
  const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
  // HS256 and the JWKS file in one server, the JWKS URL in another (one config each, as users would).
  const fx = await authServer({ jwt: { secretFile: join(dir, 'jwt.key'), jwksFile: join(dir, 'jwks.json'), issuer: 'https://id.example' }, streams: { cam: { read: ['alice'] }, lobby: { read: ['bob', 'scope:signage'] } } });
  t.after(() => fx.close());
  const remote = await authServer({ jwt: { jwksUrl, algorithms: ['ES256'] }, streams: { cam: { read: ['alice'] } } });
  t.after(() => remote.close());
  const bearer = (token: string) => ({ headers: { Authorization: `Bearer ${token}` } });
  const cam = new URL('stream/cam', fx.url);
  const lobby = new URL('stream/lobby', fx.url);

  const hs = await jwt({ streams: ['cam'] }).setIssuer('https://id.example').setProtectedHeader({ alg: 'HS256' }).sign(hsSecret);
  assert.equal((await probe(cam, bearer(hs))).status, 200, 'HS256, cam named in the claim');
  const { stdout } = await run('curl', ['-s', '-m', '1', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${hs}`, new URL('snapshot/cam', fx.url).href]);
  assert.equal(stdout, '200', 'curl with the token');
  assert.equal((await probe(lobby, bearer(hs))).status, 403, 'a stream the claim does not name');
  const rs = await jwt({ streams: ['lobby'] }).setIssuer('https://id.example').setProtectedHeader({ alg: 'RS256', kid: 'rsa1' }).sign(rsa.privateKey);
  assert.equal((await probe(lobby, bearer(rs))).status, 200, 'RS256 from the JWKS file');
  assert.equal((await probe(cam, bearer(rs))).status, 403);
  const scoped = await jwt({ scope: 'signage other' }).setIssuer('https://id.example').setProtectedHeader({ alg: 'HS256' }).sign(hsSecret);
  assert.equal((await probe(lobby, bearer(scoped))).status, 200, 'a scope the stream admits');
  const all = await jwt({ streams: '*' }).setIssuer('https://id.example').setProtectedHeader({ alg: 'HS256' }).sign(hsSecret);
  assert.equal((await probe(cam, bearer(all))).status, 200, '"*" names every stream');
  // A valid JWT is `authenticated`: /status lists what it may read (cam by its claim, default by "authenticated").
  const status = await probe(new URL('status', fx.url), bearer(hs));
  assert.equal(status.status, 200);
  assert.deepEqual(Object.keys((JSON.parse(status.body) as { streams: object }).streams).sort(), ['cam', 'default']);

  const expired = await jwt({ streams: ['cam'] }, Math.floor(Date.now() / 1000) - 60).setIssuer('https://id.example').setProtectedHeader({ alg: 'HS256' }).sign(hsSecret);
  const expiredAnswer = await probe(cam, bearer(expired));
  assert.equal(expiredAnswer.status, 401);
  assert.match(expiredAnswer.body, /SP_ERR_TOKEN_EXPIRED/);
  const refused: Record<string, string> = {
    'another secret': await jwt({ streams: ['cam'] }).setIssuer('https://id.example').setProtectedHeader({ alg: 'HS256' }).sign(randomBytes(32)),
    'another issuer': await jwt({ streams: ['cam'] }).setIssuer('https://evil.example').setProtectedHeader({ alg: 'HS256' }).sign(hsSecret),
    'alg none': `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ streams: ['cam'], iss: 'https://id.example', exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url')}.`,
    'claims edited': hs.replace(/\.([^.]+)\./, (_, payload: string) => `.${Buffer.from(Buffer.from(payload, 'base64url').toString().replace('"cam"', '"lobby"')).toString('base64url')}.`),
    // RS256's public key used as an HS256 secret (the classic algorithm confusion).
    'HS256 with the public key': await jwt({ streams: ['cam'] }).setIssuer('https://id.example').setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(JSON.stringify(await exportJWK(rsa.publicKey)))),
  };
  for (const [what, token] of Object.entries(refused)) {
    const answer = await probe(what === 'claims edited' ? lobby : cam, bearer(token));
    assert.equal(answer.status, 401, what);
    assert.match(answer.body, /SP_ERR_UNAUTHORIZED/, what);
  }

  const es = await jwt({ streams: ['cam'] }).setProtectedHeader({ alg: 'ES256', kid: 'ec1' }).sign(ec.privateKey);
  assert.equal((await probe(new URL('stream/cam', remote.url), bearer(es))).status, 200, 'ES256 from the JWKS URL');
  assert.equal((await probe(new URL('stream/cam', remote.url), bearer(hs))).status, 401, 'HS256 is not accepted there');
  assert.equal((await probe(new URL('stream/cam', remote.url), { auth: BOB })).status, 403, 'users still work beside JWTs');
  for (const line of [...fx.logger.lines, ...remote.logger.lines]) for (const token of [hs, rs, es, expired]) assert.ok(!line.includes(token.split('.')[2]!), line);
});

test('secret files: a text file loses its final line break, a binary one (which may end in 0x0a) is kept whole', async () => {
  const { secretBytes } = await import('../src/server/access/signed-link.ts');
  assert.deepEqual(secretBytes(Buffer.from('c2VjcmV0IHRleHQ=\n')), Buffer.from('c2VjcmV0IHRleHQ='));
  assert.deepEqual(secretBytes(Buffer.from('c2VjcmV0IHRleHQ=\r\n')), Buffer.from('c2VjcmV0IHRleHQ='));
  const binary = Buffer.concat([randomBytes(31).map((b) => (b < 0x20 ? b + 0x80 : b)), Buffer.from([0x01, 0x0a])]);
  assert.deepEqual(secretBytes(binary), binary);
});

test('JWT settings from the config file (paths relative to it) and their errors', async (t) => {
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  const file = join(dir, 'serverpush.json');
  await writeFile(file, JSON.stringify({ jwt: { secretFile: 'jwt.key', issuer: 'x', algorithms: ['HS256'] }, streams: { default: { type: 'push' } } }));
  assert.deepEqual((await loadConfig(file)).access?.jwt, { secretFile: join(dir, 'jwt.key'), issuer: 'x', algorithms: ['HS256'] });
  await writeFile(file, JSON.stringify({ jwt: { secret: 'inline' }, streams: { default: { type: 'push' } } }));
  await assert.rejects(loadConfig(file), /jwt: unknown key "secret"/);
  const { createAccessPolicy } = await import('../src/server/access/policy.ts');
  await assert.rejects(createAccessPolicy({ jwt: {} }), /jwt needs a key/);
  await writeFile(join(dir, 'short.key'), 'short');
  await assert.rejects(createAccessPolicy({ jwt: { secretFile: join(dir, 'short.key') } }), /at least 32 bytes/);
  await assert.rejects(createAccessPolicy({ jwt: { secretFile: join(dir, 'short.key'), algorithms: ['none' as 'HS256'] } }), /is not one of/);
});
