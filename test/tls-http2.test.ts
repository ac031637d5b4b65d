/**
 * HTTPS and HTTP/2 (issue 12 item 6, decision 0017): a CA and server certificates made here with
 * openssl; curl (--cacert, --http2 and --http1.1), ffmpeg (https://, -ca_file) and Node's HTTP/2
 * client read the streams; stalled HTTP/2 viewers, the certificate reloaded on SIGHUP, start-up
 * errors, a clean close and the warning for an unprotected exposed host.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { unsentLimitOf, unsentLimitSupport } from '../src/adapters/socket-buffer.ts';
import { DEFAULT_MAX_UNSENT_BYTES, HTTP2_MAX_CONCURRENT_STREAMS, IDLE_CONNECTION_TIMEOUT_MS } from '../src/defaults.ts';
import { get as httpsGet } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { missing, needs } from './helpers/tools.ts';
import { makeJpegFrames } from './helpers/frames.ts';
import { startServer, eventually, sleep, recordingLogger, boundaryOf, EXAMPLES } from './helpers/server.ts';
import { StrictMultipartReader } from './helpers/multipart-reader.ts';
import { makeCa, makeServerCert, peerCertificate, type TestCa, type TestCert } from './helpers/tls.ts';
import { h2Get, h2Session } from './helpers/h2.ts';
import { runCli, startCli } from './helpers/cli.ts';
import { createServer } from '../src/server/server.ts';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { createServer as createHttpsServer, Server as HttpsServer } from 'node:https';
import { createSecureServer } from 'node:http2';
import { LiveStream } from '../src/hub/live-stream.ts';
import { liveHandler } from '../src/adapters/node-http.ts';
import { exposedWithoutProtection, isLoopback } from '../src/server/tls.ts';
import { isServerPushError } from '../src/errors.ts';

let dir = '';
let ca: TestCa;
let certA: TestCert;
let certB: TestCert;
let frames: Buffer[] = [];
before(async () => {
  if (missing('openssl', 'ffmpeg')) return;
  dir = await mkdtemp(join(tmpdir(), 'serverpush-tls-'));
  ca = await makeCa(dir);
  certA = await makeServerCert(ca, 'server-a', '0A0A01');
  certB = await makeServerCert(ca, 'server-b', '0B0B02');
  frames = await makeJpegFrames(20);
});
after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

const tlsOf = (cert: TestCert) => ({ certFile: cert.certFile, keyFile: cert.keyFile });

/** A TLS server with a `push` stream fed a frame every `everyMs`; stops feeding on teardown. */
async function feedingServer(t: { after(fn: () => unknown): void }, options: { stallTimeoutMs?: number; everyMs?: number; frame?: (i: number) => Buffer } = {}) {
  const started = await startServer({ streams: { default: { type: 'push', ...(options.stallTimeoutMs ? { stallTimeoutMs: options.stallTimeoutMs } : {}) } }, tls: tlsOf(certA) });
  let i = 0;
  const frame = options.frame ?? ((n: number) => frames[n % frames.length]!);
  started.server.live().push({ contentType: 'image/jpeg', body: frame(i++) });
  const timer = setInterval(() => started.server.live().push({ contentType: 'image/jpeg', body: frame(i++) }), options.everyMs ?? 40);
  t.after(async () => {
    clearInterval(timer);
    await started.server.close();
  });
  return started;
}

/** Runs curl; resolves its exit code, stdout and stderr whatever the code (28: --max-time reached, as for an endless stream). */
function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', ...args], { encoding: 'latin1', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as NodeJS.ErrnoException).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const SETUP = needs('openssl', 'ffmpeg');

test('curl --cacert reads /stream over HTTP/2 (%{http_version} 2) and over HTTP/1.1 on the same port: whole parts, the frames pushed', { skip: SETUP.skip || missing('curl') }, async (t) => {
  const { url, server } = await feedingServer(t);
  assert.equal(url.protocol, 'https:', 'server.url says https');
  for (const [flag, version] of [['--http2', '2'], ['--http1.1', '1.1']] as const) {
    const headerFile = join(dir, `headers-${version}`);
    const out = await curl(['--cacert', ca.certFile, flag, '--max-time', '1.5', '-D', headerFile, '-w', '%{http_version}', new URL('stream', url).href]);
    assert.equal(out.code, 28, `an endless stream, cut by --max-time: ${out.stderr}`);
    const body = Buffer.from(out.stdout, 'latin1');
    const version_ = body.subarray(body.length - version.length).toString();
    assert.equal(version_, version, `curl ${flag} spoke HTTP/${version}`);
    const headers = (await import('node:fs')).readFileSync(headerFile, 'latin1');
    const boundary = /content-type: multipart\/x-mixed-replace; boundary=(\S+)/i.exec(headers)?.[1];
    assert.ok(boundary, headers);
    const reader = new StrictMultipartReader(boundary);
    // The body up to the last whole part (the cut may fall inside one).
    const stream = body.subarray(0, body.length - version.length);
    const lastDelimiter = stream.lastIndexOf(`\r\n--${boundary}\r\n`);
    reader.push(stream.subarray(0, lastDelimiter + `\r\n--${boundary}\r\n`.length));
    assert.ok(reader.parts.length >= 5, `${flag}: ${reader.parts.length} parts in 1.5 s at 25 fps`);
    for (const part of reader.parts) assert.ok(frames.some((frame) => frame.equals(part.body)), 'each part is a frame as pushed');
    if (version === '2') {
      // RFC 9113 §8.2.2: connection-specific header fields are forbidden in HTTP/2.
      assert.doesNotMatch(headers, /^(connection|transfer-encoding|keep-alive|proxy-connection|upgrade):/im, headers);
      assert.match(headers, /^HTTP\/2 200/);
    } else {
      assert.match(headers, /^HTTP\/1\.1 200/);
      assert.match(headers, /^connection: close/im, 'HTTP/1.1: a close-delimited live body');
    }
  }
  await eventually(() => server.status.clients === 0, 3000, 'both curl viewers gone');
  assert.equal(server.status.clientsTotal, 2);
});

test('every endpoint answers over HTTP/2: snapshot, status, index, viewer, HEAD, refusals (404, 405, 400) with their codes', { skip: SETUP.skip || missing('curl') }, async (t) => {
  const { url } = await feedingServer(t);
  const ask = async (path: string, extra: string[] = []) => {
    const out = await curl(['--cacert', ca.certFile, '--http2', '--max-time', '5', '-D', '-', '-w', '\n%{http_version} %{http_code}', ...extra, new URL(path, url).href]);
    assert.equal(out.code, 0, out.stderr);
    const [version, status] = out.stdout.slice(out.stdout.lastIndexOf('\n') + 1).split(' ');
    assert.equal(version, '2', `${path} over HTTP/2`);
    assert.doesNotMatch(out.stdout.split('\r\n\r\n')[0]!, /^(connection|transfer-encoding|keep-alive):/im);
    return { status: Number(status), text: out.stdout };
  };
  const status = await ask('status');
  assert.equal(status.status, 200);
  assert.match(status.text, /"clients":/);
  const snapshot = await ask('snapshot');
  assert.equal(snapshot.status, 200);
  assert.match(snapshot.text, /content-type: image\/jpeg/i);
  assert.equal((await ask('')).status, 200, 'index');
  assert.equal((await ask('view')).status, 200, 'viewer page');
  assert.equal((await ask('viewer/player.js')).status, 200, 'viewer script');
  const head = await ask('stream', ['-I']);
  assert.equal(head.status, 200);
  assert.match(head.text, /content-type: multipart\/x-mixed-replace; boundary=/i);
  const missingPath = await ask('nope');
  assert.equal(missingPath.status, 404);
  assert.match(missingPath.text, /"SP_ERR_NOT_FOUND"/);
  const post = await ask('stream', ['-X', 'POST']);
  assert.equal(post.status, 405);
  assert.match(post.text, /"SP_ERR_METHOD_NOT_ALLOWED"/);
  const fps = await ask('stream?fps=abc');
  assert.equal(fps.status, 400);
  assert.match(fps.text, /"SP_ERR_BAD_REQUEST"/);
});

test('a slideshow over HTTP/2: every document in order, then the closing delimiter and END_STREAM (no chunked coding, no close)', SETUP, async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 50, tls: tlsOf(certA) });
  t.after(() => server.close());
  const session = await h2Session(url, ca.pem);
  t.after(() => session.destroy());
  const show = await h2Get(session, '/stream');
  await show.ended; // rejects on a reset or on bytes after the closing delimiter
  const documents = (await readdir(EXAMPLES)).filter((name) => /\.(html|txt|jpe?g|gif|png)$/.test(name));
  assert.equal(show.reader.parts.length, documents.length, 'every document of the folder');
  assert.equal(show.headers[':status'], 200);
  for (const forbidden of ['connection', 'transfer-encoding', 'keep-alive']) assert.equal(show.headers[forbidden], undefined, forbidden);
  await eventually(() => server.status.clients === 0, 2000, 'the client counted as gone');
});

test('TCP_NOTSENT_LOWAT bounds TLS connections too (on the TCP socket under TLS): an HTTP/1.1 viewer\'s at its stream\'s bound, an HTTP/2 connection\'s at the default', { skip: SETUP.skip || (unsentLimitSupport().supported ? false : 'the native socket helper is not built') }, async (t) => {
  const { url, server } = await feedingServer(t);
  const sockets: TLSSocket[] = [];
  server.http.on('secureConnection', (socket: TLSSocket) => sockets.push(socket));
  const session = await h2Session(url, ca.pem);
  t.after(() => session.destroy());
  const h2 = await h2Get(session, '/stream');
  await h2.reader.waitFor(2);
  const h1 = await new Promise<IncomingMessage>((resolve, reject) => httpsGet(new URL('stream', url), { ca: ca.pem, servername: 'localhost' }, resolve).once('error', reject));
  h1.resume();
  await eventually(() => server.status.clients === 2, 3000, 'both viewers');
  const [h2Socket, h1Socket] = sockets;
  assert.equal(h2Socket!.alpnProtocol, 'h2');
  assert.equal(h1Socket!.alpnProtocol, false, 'no ALPN offered (as by ffmpeg): HTTP/1.1');
  assert.equal(unsentLimitOf(h2Socket!), DEFAULT_MAX_UNSENT_BYTES);
  assert.equal(unsentLimitOf(h1Socket!), DEFAULT_MAX_UNSENT_BYTES);
  h1.destroy();
});

test('liveHandler on a user\'s own https server and http2 secure server: curl reads whole parts over HTTP/1.1 and HTTP/2 (no plaintext on the TLS socket)', { skip: SETUP.skip || missing('curl') }, async (t) => {
  const stream = new LiveStream({ name: 'cam' });
  let i = 0;
  stream.push({ contentType: 'image/jpeg', body: frames[i++]! });
  const timer = setInterval(() => stream.push({ contentType: 'image/jpeg', body: frames[i++ % frames.length]! }), 40);
  t.after(() => clearInterval(timer));
  const material = { cert: readFileSync(certA.certFile), key: readFileSync(certA.keyFile) };
  const servers = [createHttpsServer(material, liveHandler(stream)), createSecureServer({ ...material, allowHTTP1: true }, liveHandler(stream))];
  for (const server of servers) {
    const sockets: Socket[] = [];
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => { server.close(() => resolve()); for (const s of sockets) s.destroy(); }));
    server.on('secureConnection', (socket: Socket) => sockets.push(socket));
    const port = (server.address() as { port: number }).port;
    for (const flag of server instanceof HttpsServer ? ['--http1.1'] : ['--http1.1', '--http2']) {
      const out = await curl(['--cacert', ca.certFile, flag, '--max-time', '1', '-D', '-', `https://localhost:${port}/`]);
      assert.equal(out.code, 28, `${flag}: ${out.stderr}`);
      const boundary = /content-type: multipart\/x-mixed-replace; boundary=(\S+)/i.exec(out.stdout)?.[1];
      assert.ok(boundary, out.stdout.slice(0, 500));
      const body = Buffer.from(out.stdout.slice(out.stdout.indexOf('\r\n\r\n') + 4), 'latin1');
      const reader = new StrictMultipartReader(boundary);
      reader.push(body.subarray(0, body.lastIndexOf(`\r\n--${boundary}\r\n`) + boundary.length + 6));
      assert.ok(reader.parts.length >= 3, `${flag}: ${reader.parts.length} parts`);
    }
  }
});

test('HTTP/1.1 over TLS: a request without Host, and one Node cannot parse, get a coded 400 SP_ERR_BAD_REQUEST (as on the plain server)', SETUP, async (t) => {
  const { url } = await feedingServer(t);
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: Number(url.port), ca: ca.pem, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => socket.end('GET /status HTTP/1.1\r\nConnection: close\r\n\r\n'));
    let text = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => { text += chunk; }).once('end', () => resolve(text)).once('error', reject);
  });
  assert.match(answer, /^HTTP\/1\.1 400 /);
  assert.match(answer, /"SP_ERR_BAD_REQUEST"/);
  // A request Node's HTTP/1 parser refuses: the coded 400 goes out through TLS too.
  const malformed = await new Promise<string>((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: Number(url.port), ca: ca.pem, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => socket.write('GET / HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n'));
    let text = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => { text += chunk; }).once('end', () => resolve(text)).once('error', reject);
  });
  assert.match(malformed, /^HTTP\/1\.1 400 /);
  assert.match(malformed, /"SP_ERR_BAD_REQUEST".*malformed request/);
});

test('ffmpeg reads https://127.0.0.1:PORT/stream, verifying the certificate against the CA, and decodes the frames', { skip: SETUP.skip }, async (t) => {
  const { url } = await feedingServer(t);
  const out = await new Promise<{ error: Error | null; stdout: string; stderr: string }>((resolve) => {
    execFile('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-ca_file', ca.certFile, '-tls_verify', '1', '-i', new URL('stream', url).href, '-frames:v', '10', '-f', 'framemd5', '-'], { timeout: 20_000 }, (error, stdout, stderr) => resolve({ error, stdout, stderr }));
  });
  assert.equal(out.error, null, out.stderr);
  const decoded = out.stdout.split('\n').filter((line) => /^0,/.test(line));
  assert.equal(decoded.length, 10, `ten frames decoded: ${out.stderr}`);
});

test('a stalled HTTP/2 viewer (its stream window closed) is dropped after the stall timeout; a healthy stream on the same session and one on another session keep getting frames', SETUP, async (t) => {
  // 60 KiB frames at 25 fps: a stream that is not read fills its 64 KiB window at once.
  const big = frames.map((frame) => Buffer.concat([frame.subarray(0, frame.length - 2), Buffer.alloc(60_000 - frame.length), frame.subarray(frame.length - 2)]));
  const { url, server, logger } = await feedingServer(t, { stallTimeoutMs: 1500, frame: (i) => big[i % big.length]! });
  const shared = await h2Session(url, ca.pem);
  const other = await h2Session(url, ca.pem);
  t.after(() => { shared.destroy(); other.destroy(); });
  const stalled = await h2Get(shared, '/stream', { read: false });
  const sameSession = await h2Get(shared, '/stream');
  const otherSession = await h2Get(other, '/stream');
  const startedAt = Date.now();
  await eventually(() => server.status.droppedClients === 1, 10_000, 'the stalled viewer dropped');
  const droppedAfter = Date.now() - startedAt;
  assert.ok(droppedAfter >= 1000, `dropped after the stall timeout (1.5 s), not before: ${droppedAfter} ms`);
  await eventually(() => stalled.stream.rstCode !== undefined, 2000, 'the RST_STREAM at the client');
  assert.equal(stalled.stream.rstCode, 8, 'the stalled stream is reset with CANCEL (RST_STREAM), not ended as if complete');
  assert.ok(!shared.closed && !shared.destroyed, 'its session stays open');
  assert.ok(logger.lines.some((line) => /SP_ERR_SLOW_CLIENT/.test(line)), logger.lines.join('\n'));
  // Both healthy streams got frames all along, and go on after the drop.
  for (const healthy of [sameSession, otherSession]) {
    const during = healthy.reader.parts.filter((part) => part.receivedAt >= startedAt + 200 && part.receivedAt <= startedAt + droppedAfter);
    assert.ok(during.length >= (droppedAfter / 40) * 0.3, `frames while the other stream stalled: ${during.length} in ${droppedAfter} ms`);
    const before = healthy.reader.parts.length;
    await healthy.reader.waitFor(before + 10, 5000);
    for (const part of healthy.reader.parts) assert.equal(part.body.length, 60_000);
  }
  assert.equal(server.status.clients, 2);
});

test('the certificate is reloaded on SIGHUP: the viewer streaming goes on, new connections get the new certificate; a bad pair keeps the old one', { skip: SETUP.skip }, async (t) => {
  const cert = join(dir, 'current.pem');
  const key = join(dir, 'current.key');
  await copyFile(certA.certFile, cert);
  await copyFile(certA.keyFile, key);
  const cli = await startCli(['--exec', 'ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc=size=160x120:rate=20 -f mjpeg -q:v 5 -', '--port', '0', '--tls-cert', cert, '--tls-key', key]);
  t.after(() => cli.stop());
  assert.equal(cli.url.protocol, 'https:');
  const port = Number(cli.url.port);
  assert.equal((await peerCertificate(port, ca.pem)).certificate.serialNumber, certA.serialNumber);
  const session = await h2Session(cli.url, ca.pem);
  t.after(() => session.destroy());
  // 503 SP_ERR_NO_FRAME until ffmpeg's first frame is in.
  let viewer: Awaited<ReturnType<typeof h2Get>> | undefined;
  await eventually(async () => Boolean(viewer = await h2Get(session, '/stream').catch(() => undefined)), 10_000, 'the first frame');
  await viewer!.reader.waitFor(5, 10_000);

  await copyFile(certB.certFile, cert);
  await copyFile(certB.keyFile, key);
  cli.child.kill('SIGHUP');
  await eventually(() => /TLS: reloaded the certificate: .*serial 0B0B02/.test(cli.stderr()), 5000, 'the reload logged');
  const fresh = await peerCertificate(port, ca.pem);
  assert.equal(fresh.certificate.serialNumber, certB.serialNumber, 'a new connection gets the new certificate');
  assert.equal(fresh.certificate.fingerprint256, certB.fingerprint256);
  const before = viewer!.reader.parts.length;
  await viewer!.reader.waitFor(before + 10, 5000);
  assert.ok(!session.closed, 'the viewer of the old certificate goes on');

  // A key that does not match: refused, logged, the old (B) certificate kept, the process alive.
  await copyFile(certA.keyFile, key);
  cli.child.kill('SIGHUP');
  await eventually(() => /error SP_ERR_TLS TLS: kept the old certificate: .*does not belong/.test(cli.stderr()), 5000, 'the refused reload logged');
  assert.equal((await peerCertificate(port, ca.pem)).certificate.serialNumber, certB.serialNumber);
  await viewer!.reader.waitFor(viewer!.reader.parts.length + 5, 5000);
  assert.equal(cli.child.exitCode, null);
  assert.doesNotMatch(cli.stderr(), /PRIVATE KEY/, 'no key material in the log');
});

test('reloadTls() in the library: resolves the new certificate, throws SP_ERR_TLS for a missing file; undefined without TLS', SETUP, async (t) => {
  const cert = join(dir, 'lib.pem');
  const key = join(dir, 'lib.key');
  await copyFile(certA.certFile, cert);
  await copyFile(certA.keyFile, key);
  const { server, url } = await startServer({ streams: { default: { type: 'push' } }, tls: { certFile: cert, keyFile: key } });
  t.after(() => server.close());
  await copyFile(certB.certFile, cert);
  await copyFile(certB.keyFile, key);
  assert.equal((await server.reloadTls())?.serialNumber, certB.serialNumber);
  assert.equal((await peerCertificate(Number(url.port), ca.pem)).certificate.serialNumber, certB.serialNumber);
  await rm(cert);
  await assert.rejects(server.reloadTls(), (error: unknown) => isServerPushError(error, 'SP_ERR_TLS') && /not found/.test(error.message));
  assert.equal((await peerCertificate(Number(url.port), ca.pem)).certificate.serialNumber, certB.serialNumber);
  const plain = await startServer({ streams: { default: { type: 'push' } } });
  t.after(() => plain.server.close());
  assert.equal(await plain.server.reloadTls(), undefined);
  assert.equal(plain.url.protocol, 'http:');
});

test('a missing, unreadable, non-PEM or mismatched certificate or key: SP_ERR_TLS at start, exit 2, no stack; half a pair is a usage error', { skip: SETUP.skip }, async () => {
  const garbage = join(dir, 'garbage.pem');
  await writeFile(garbage, 'not a certificate\n');
  const cases: Array<[string[], RegExp]> = [
    [['--tls-cert', join(dir, 'nope.pem'), '--tls-key', certA.keyFile], /the TLS certificate .*nope\.pem is not found \(SP_ERR_TLS\)/],
    [['--tls-cert', certA.certFile, '--tls-key', dir], /the TLS key .* is a directory, not a file \(SP_ERR_TLS\)/],
    [['--tls-cert', garbage, '--tls-key', certA.keyFile], /garbage\.pem is not a PEM certificate .*\(SP_ERR_TLS\)/],
    [['--tls-cert', certA.certFile, '--tls-key', certB.keyFile], /the TLS key .*server-b\.key does not belong to the certificate .*server-a\.pem \(SP_ERR_TLS\)/],
    [['--tls-cert', certA.certFile, '--tls-key', garbage], /the TLS key .*garbage\.pem cannot be used .*\(SP_ERR_TLS\)/],
    [['--tls-cert', certA.certFile], /--tls-cert needs --tls-key/],
    [['--tls-key', certA.keyFile], /--tls-key needs --tls-cert/],
  ];
  for (const [args, message] of cases) {
    const out = await runCli(['serve', '--stdin', '--port', '0', ...args]);
    assert.equal(out.code, 2, `${args.join(' ')}: ${out.stderr}`);
    assert.match(out.stderr, message);
    assert.doesNotMatch(out.stderr, /^\s+at /m, 'no stack');
  }
});

test('config keys tlsCert and tlsKey (relative to the file) serve HTTPS; one of them alone is SP_ERR_CONFIG', { skip: SETUP.skip }, async (t) => {
  const config = join(dir, 'tls.json');
  await writeFile(config, JSON.stringify({ tlsCert: 'server-a.pem', tlsKey: 'server-a.key', streams: { default: { type: 'push' } } }));
  const cli = await startCli(['--config', config, '--port', '0']);
  t.after(() => cli.stop());
  assert.equal(cli.url.protocol, 'https:');
  const { certificate, alpnProtocol } = await peerCertificate(Number(cli.url.port), ca.pem);
  assert.equal(certificate.serialNumber, certA.serialNumber);
  assert.equal(alpnProtocol, 'h2', 'HTTP/2 offered by ALPN');
  assert.equal((await peerCertificate(Number(cli.url.port), ca.pem, ['http/1.1'])).alpnProtocol, 'http/1.1', 'HTTP/1.1 kept');
  await writeFile(config, JSON.stringify({ tlsCert: 'server-a.pem', streams: { default: { type: 'push' } } }));
  const half = await runCli(['serve', '--config', config]);
  assert.equal(half.code, 2);
  assert.match(half.stderr, /give tlsCert and tlsKey together .*\(SP_ERR_CONFIG\)/);
});

test('close() ends HTTP/2 viewers cleanly (END_STREAM, then GOAWAY), HTTP/1.1 viewers too, cuts idle connections, and resolves well before the grace', SETUP, async (t) => {
  const { url, server } = await feedingServer(t);
  const session = await h2Session(url, ca.pem);
  const idleSession = await h2Session(url, ca.pem);
  t.after(() => { session.destroy(); idleSession.destroy(); });
  const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
  const sessionClosed = new Promise<void>((resolve) => session.once('close', () => resolve()));
  const idleClosed = new Promise<void>((resolve) => idleSession.once('close', () => resolve()));
  const h2 = await h2Get(session, '/stream');
  const h1 = await new Promise<IncomingMessage>((resolve, reject) => httpsGet(new URL('stream', url), { ca: ca.pem, servername: 'localhost' }, resolve).once('error', reject));
  const h1Reader = new StrictMultipartReader(boundaryOf(h1));
  const h1Ended = new Promise<void>((resolve, reject) => {
    h1.on('data', (chunk: Buffer) => h1Reader.push(chunk));
    h1.once('end', () => { try { h1Reader.end(); resolve(); } catch (error) { reject(error); } });
    h1.once('error', reject);
  });
  await Promise.all([h2.reader.waitFor(3), h1Reader.waitFor(3)]);
  const startedAt = Date.now();
  await server.close(5000);
  const took = Date.now() - startedAt;
  assert.ok(took < 3000, `closed in ${took} ms (grace 5000)`);
  await h2.ended; // END_STREAM after a whole part: rejects on a reset or a cut part
  await h1Ended;
  await goaway;
  await sessionClosed;
  await idleClosed;
});

test('idle TLS connections are closed after 5 s (an HTTP/1.1 keep-alive one, an HTTP/2 session with no stream: GOAWAY); a quiet stream keeps its session open', SETUP, async (t) => {
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 20_000, tls: tlsOf(certA) });
  t.after(() => server.close());
  const startedAt = Date.now();
  const closedAt: Record<string, number> = {};
  // HTTP/1.1: one request, then the connection sits idle.
  const h1 = tlsConnect({ host: '127.0.0.1', port: Number(url.port), ca: ca.pem, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => h1.write('GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n'));
  h1.resume().once('close', () => { closedAt['h1'] = Date.now() - startedAt; });
  const idle = await h2Session(url, ca.pem);
  const request = idle.request({ ':path': '/status' });
  request.resume();
  let goaway = false;
  idle.once('goaway', () => { goaway = true; }).once('close', () => { closedAt['h2'] = Date.now() - startedAt; });
  // A slideshow of 20 s per document: after the first one, nothing for longer than the idle time.
  const busy = await h2Session(url, ca.pem);
  t.after(() => { busy.destroy(); idle.destroy(); h1.destroy(); });
  const quiet = await h2Get(busy, '/stream');
  await quiet.reader.waitFor(1);
  await eventually(() => closedAt['h1'] !== undefined && closedAt['h2'] !== undefined, 12_000, 'both idle connections closed');
  assert.ok(goaway, 'the idle HTTP/2 session was sent GOAWAY');
  for (const [which, at] of Object.entries(closedAt)) assert.ok(at >= IDLE_CONNECTION_TIMEOUT_MS - 500 && at < IDLE_CONNECTION_TIMEOUT_MS + 5000, `${which} closed after ${at} ms`);
  assert.ok(!busy.closed && !busy.destroyed, 'the session of the quiet stream stays');
  assert.equal(server.status.clients, 1);
  assert.equal(quiet.stream.closed, false);
});

test('close() cuts an HTTP/2 session whose stream cannot finish (a stalled viewer) once the grace is over', SETUP, async (t) => {
  const big = frames.map((frame) => Buffer.concat([frame.subarray(0, frame.length - 2), Buffer.alloc(60_000 - frame.length), frame.subarray(frame.length - 2)]));
  const { server, url } = await feedingServer(t, { stallTimeoutMs: 60_000, frame: (i) => big[i % big.length]! });
  const session = await h2Session(url, ca.pem);
  t.after(() => session.destroy());
  const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
  await h2Get(session, '/stream', { read: false });
  await eventually(() => server.status.clients === 1, 2000, 'the viewer counted');
  await sleep(300); // its window fills
  const startedAt = Date.now();
  await server.close(1000);
  const took = Date.now() - startedAt;
  assert.ok(took >= 900 && took < 4000, `close(1000) took ${took} ms: the grace, then the cut`);
  await closed;
});

test('the CLI prints the exposure warning once, at start, for --host 0.0.0.0 without TLS', SETUP, async (t) => {
  const plain = await startCli(['--stdin', '--host', '0.0.0.0', '--port', '0']);
  t.after(() => plain.stop());
  // Logged while listening, before the stream line startCli waits for.
  assert.equal(plain.stderr().match(/warn SP_ERR_UNPROTECTED /g)?.length, 1, plain.stderr());
  const secure = await startCli(['--stdin', '--host', '0.0.0.0', '--port', '0', '--tls-cert', certA.certFile, '--tls-key', certA.keyFile]);
  t.after(() => secure.stop());
  assert.doesNotMatch(secure.stderr(), /SP_ERR_UNPROTECTED/);
});

test('one SP_ERR_UNPROTECTED warning for a host other than loopback without TLS; none with TLS or on loopback', SETUP, async () => {
  for (const [host, tls, warnings] of [['0.0.0.0', false, 1], ['0.0.0.0', true, 0], ['127.0.0.1', false, 0], ['::1', false, 0]] as const) {
    const logger = recordingLogger();
    const server = await createServer({ streams: { default: { type: 'push' } }, port: 0, host, logger, ...(tls ? { tls: tlsOf(certA) } : {}) });
    await server.listen();
    await server.close();
    await server.listen().catch(() => {});
    await server.close();
    const lines = logger.lines.filter((line) => line.includes('SP_ERR_UNPROTECTED'));
    assert.equal(lines.length, warnings, `${host} ${tls ? 'with' : 'without'} TLS: ${logger.lines.join('\n')}`);
    if (warnings) assert.match(lines[0]!, /listening on 0\.0\.0\.0, reachable from other machines, without TLS: .*--tls-cert/);
  }
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', '[::1]', '::ffff:127.0.0.1']) assert.ok(isLoopback(host), host);
  for (const host of ['0.0.0.0', '::', '192.168.1.2', 'camera.local', '10.0.0.1']) assert.ok(!isLoopback(host), host);
  assert.match(exposedWithoutProtection({ host: '::', htpasswd: 'users' }) ?? '', /passwords and tokens cross the network in clear text/);
  assert.equal(exposedWithoutProtection({ host: '::', tls: {} }), undefined);
});

test('many HTTP/2 streams on one session: all counted, all ended when closed; the server allows 100 at once', SETUP, async (t) => {
  const { url, server } = await feedingServer(t);
  const session = await h2Session(url, ca.pem);
  t.after(() => session.destroy());
  assert.equal(session.remoteSettings.maxConcurrentStreams, HTTP2_MAX_CONCURRENT_STREAMS);
  const streams = await Promise.all(Array.from({ length: 20 }, () => h2Get(session, '/stream')));
  await Promise.all(streams.map((s) => s.reader.waitFor(2)));
  assert.equal(server.status.clients, 20);
  for (const s of streams) s.stream.close();
  await eventually(() => server.status.clients === 0, 5000, 'every closed stream counted as gone');
  assert.ok(!session.closed);
  await sleep(10);
});
