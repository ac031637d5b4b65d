/**
 * A password-protected IP camera for tests: a real Node HTTP server on port 0 that answers
 * `/video.mjpg` with an endless MJPEG stream (real JPEG frames, one every 30 ms) once the
 * request carries valid credentials, and a 401 with its challenge otherwise. It checks Basic and
 * Digest (RFC 7616) on its own — its own header parser, its own hashes — so that a bug in
 * serverpush's Digest cannot agree with itself.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';

const FRAMES_DIR = new URL('../fixtures/frames/', import.meta.url);
export const FRAMES: Buffer[] = readdirSync(FRAMES_DIR).sort().map((name) => readFileSync(new URL(name, FRAMES_DIR)));

export interface CameraOptions {
  scheme: 'basic' | 'digest';
  username: string;
  password: string;
  /** Digest algorithm offered. @default 'MD5' */
  algorithm?: 'MD5' | 'SHA-256' | 'MD5-sess' | 'SHA-256-sess';
  /** Also offer Basic after the Digest challenge (cameras often do; a client must pick Digest). */
  offerBasicToo?: boolean;
  /** Digest: a nonce is good for this many requests, then answered `stale=true`. @default unlimited */
  nonceUses?: number;
  realm?: string;
  /** `/snapshot.jpg`: the picture changes this often (its ETag and Last-Modified with it). @default 500 */
  snapshotPeriodMs?: number;
}

export interface Camera {
  server: Server;
  /** `http://127.0.0.1:PORT/video.mjpg` */
  url: URL;
  /** Each request: what it sent and how it was judged. */
  requests: Array<{ authorization: string | undefined; verdict: 'no credentials' | 'accepted' | 'wrong' | 'stale' | 'malformed' }>;
  /** Connections being streamed to. */
  streaming(): number;
  /** Set: `/video.mjpg` answers its headers and then nothing (a hung camera). */
  hang: boolean;
  /** Set: `/snapshot.jpg` answers 500 (a camera having trouble). */
  failSnapshots: boolean;
  /** `/snapshot.jpg` answers so far, by status. */
  snapshots: { 200: number; 304: number; 500: number };
  /** `http://127.0.0.1:PORT/snapshot.jpg` */
  snapshotUrl: URL;
  close(): Promise<void>;
}

/** The parameters of a Digest Authorization header, parsed here independently of src/. */
function digestParams(value: string): Record<string, string> {
  const params: Record<string, string> = {};
  const re = /([a-z0-9*-]+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/gi;
  for (const m of value.replace(/^Digest\s+/i, '').matchAll(re)) params[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!;
  return params;
}

export async function startCamera(options: CameraOptions): Promise<Camera> {
  const realm = options.realm ?? 'IP Camera';
  const algorithm = options.algorithm ?? 'MD5';
  const hashName = algorithm.startsWith('SHA-256') ? 'sha256' : 'md5';
  const H = (text: string) => createHash(hashName).update(text).digest('hex');
  const nonces = new Map<string, { uses: number; lastNc: number }>();
  const opaque = randomBytes(8).toString('hex');
  const requests: Camera['requests'] = [];
  const live = new Set<() => void>();

  const challenge = (stale = false) => {
    if (options.scheme === 'basic') return [`Basic realm="${realm}", charset="UTF-8"`];
    const nonce = randomBytes(12).toString('base64');
    nonces.set(nonce, { uses: 0, lastNc: 0 });
    const digest = `Digest realm="${realm}", qop="auth", algorithm=${algorithm}, nonce="${nonce}", opaque="${opaque}"${stale ? ', stale=true' : ''}`;
    return options.offerBasicToo ? [digest, `Basic realm="${realm}"`] : [digest];
  };

  const judge = (req: IncomingMessage): Camera['requests'][number]['verdict'] => {
    const authorization = req.headers.authorization;
    if (!authorization) return 'no credentials';
    if (options.scheme === 'basic') {
      if (!/^Basic /i.test(authorization)) return 'malformed';
      const decoded = Buffer.from(authorization.slice(6), 'base64').toString('utf8');
      return decoded === `${options.username}:${options.password}` ? 'accepted' : 'wrong';
    }
    if (!/^Digest /i.test(authorization)) return 'malformed';
    const p = digestParams(authorization);
    const state = p['nonce'] === undefined ? undefined : nonces.get(p['nonce']);
    if (!state || p['realm'] !== realm || p['opaque'] !== opaque || p['qop'] !== 'auth' || p['uri'] !== req.url || !p['cnonce'] || !/^[0-9a-f]{8}$/.test(p['nc'] ?? '')) return 'malformed';
    if ((p['algorithm'] ?? 'MD5') !== algorithm) return 'malformed';
    const nc = parseInt(p['nc']!, 16);
    if (nc <= state.lastNc) return 'malformed'; // a replayed nonce count
    let ha1 = H(`${options.username}:${realm}:${options.password}`);
    if (algorithm.endsWith('-sess')) ha1 = H(`${ha1}:${p['nonce']}:${p['cnonce']}`);
    const ha2 = H(`${req.method}:${p['uri']}`);
    const expected = H(`${ha1}:${p['nonce']}:${p['nc']}:${p['cnonce']}:auth:${ha2}`);
    if (p['username'] !== options.username || p['response'] !== expected) return 'wrong';
    state.lastNc = nc;
    state.uses++;
    if (options.nonceUses !== undefined && state.uses > options.nonceUses) return 'stale';
    return 'accepted';
  };

  const camera: Camera = {
    server: undefined as unknown as Server,
    url: new URL('http://127.0.0.1/'),
    snapshotUrl: new URL('http://127.0.0.1/'),
    requests,
    streaming: () => live.size,
    hang: false,
    failSnapshots: false,
    snapshots: { 200: 0, 304: 0, 500: 0 },
    close: async () => {
      for (const stop of [...live]) stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const started = Date.now();
  const period = options.snapshotPeriodMs ?? 500;
  const server = createServer((req, res) => {
    const snapshot = req.url?.startsWith('/snapshot.jpg') ?? false;
    if (!req.url?.startsWith('/video.mjpg') && !snapshot) return void res.writeHead(404).end();
    const verdict = judge(req);
    requests.push({ authorization: req.headers.authorization, verdict });
    if (verdict !== 'accepted') {
      res.writeHead(401, { 'WWW-Authenticate': challenge(verdict === 'stale'), 'Content-Type': 'text/html' });
      return void res.end('<html><body>401 Unauthorized</body></html>');
    }
    if (snapshot) {
      if (camera.failSnapshots) {
        camera.snapshots[500]++;
        return void res.writeHead(500, { 'Content-Type': 'text/plain' }).end('sensor error');
      }
      const version = Math.floor((Date.now() - started) / period);
      const etag = `"v${version}"`;
      const lastModified = new Date(started + version * period).toUTCString();
      if (req.headers['if-none-match'] === etag) {
        camera.snapshots[304]++;
        return void res.writeHead(304, { ETag: etag, 'Last-Modified': lastModified }).end();
      }
      camera.snapshots[200]++;
      const frame = FRAMES[version % FRAMES.length]!;
      return void res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': frame.length, ETag: etag, 'Last-Modified': lastModified }).end(frame);
    }
    res.writeHead(200, { 'Content-Type': 'multipart/x-mixed-replace; boundary=myboundary' });
    if (camera.hang) return void res.flushHeaders();
    let i = 0;
    const send = () => {
      const frame = FRAMES[i++ % FRAMES.length]!;
      res.write(`--myboundary\r\nContent-Type: image/jpeg\r\nContent-Length: ${frame.length}\r\n\r\n`);
      res.write(frame);
      res.write('\r\n');
    };
    send();
    const timer = setInterval(send, 30);
    const stop = () => {
      clearInterval(timer);
      live.delete(stop);
    };
    live.add(stop);
    res.on('close', stop);
  });
  camera.server = server;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  camera.url = new URL(`http://127.0.0.1:${port}/video.mjpg`);
  camera.snapshotUrl = new URL(`http://127.0.0.1:${port}/snapshot.jpg`);
  return camera;
}

/** `url` with `user:password@` in it (percent-encoded as a URL needs). */
export function withCredentials(url: URL, username: string, password: string): string {
  const copy = new URL(url);
  copy.username = encodeURIComponent(username);
  copy.password = encodeURIComponent(password);
  return copy.href;
}
