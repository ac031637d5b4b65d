/**
 * Helpers of the access-control tests: a server with users, a token, a link secret and three
 * streams fed with real JPEG frames, and a request that reads only the start of an endless body.
 */
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { makeFolder, removeFolder, startServer } from './server.ts';
import { FRAMES } from './camera.ts';
import { updateHtpasswd } from '../../src/server/access/htpasswd.ts';
import { createToken } from '../../src/server/access/tokens.ts';
import type { AccessOptions } from '../../src/server/access/policy.ts';
import type { ServeOptions } from '../../src/server/server.ts';

export const ALICE = { user: 'alice', password: 'wonder land: ünïcode & more' };
export const BOB = { user: 'bob', password: 'b0b-the-builder' };

export interface Probe {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body, or its first bytes for an endless stream. */
  body: string;
}

/** One request; an endless body is read for at most `readMs` or 64 KiB. */
export function probe(url: URL | string, options: { auth?: { user: string; password: string }; headers?: Record<string, string>; method?: string; localAddress?: string; readMs?: number } = {}): Promise<Probe> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.auth) headers['Authorization'] = `Basic ${Buffer.from(`${options.auth.user}:${options.auth.password}`).toString('base64')}`;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers, ...(options.localAddress ? { localAddress: options.localAddress } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const finish = () => {
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('latin1') });
      };
      const timer = setTimeout(finish, options.readMs ?? 400);
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size > 65_536) finish();
      });
      res.on('end', finish);
      res.on('error', finish);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sends `text` on a raw TCP connection and resolves everything read within `readMs`. */
export function rawRequest(url: URL, text: string, readMs = 400): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.write(text));
    let received = '';
    const timer = setTimeout(() => { socket.destroy(); resolve(received); }, readMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => { received += chunk; });
    socket.on('end', () => { clearTimeout(timer); resolve(received); });
    socket.on('error', (error) => { clearTimeout(timer); if (received) resolve(received); else reject(error); });
  });
}

export interface AuthFixture {
  dir: string;
  htpasswd: string;
  linkSecretFile: string;
  linkSecret: Buffer;
  /** A bearer token with scope `cams` (named `dashboard`). */
  token: string;
  url: URL;
  server: Awaited<ReturnType<typeof startServer>>['server'];
  logger: Awaited<ReturnType<typeof startServer>>['logger'];
  close(): Promise<void>;
}

/**
 * A server with users alice and bob, a token of scope `cams`, a link secret, and three live
 * streams fed 20 frames a second: `default` and `lobby` (any authenticated client) and `cam`
 * (alice and scope `cams` only). `access` is merged over that; `serve` over the server's options.
 */
export async function authServer(access: Partial<AccessOptions> = {}, serve: Partial<ServeOptions> = {}, cost = 4): Promise<AuthFixture> {
  const dir = await makeFolder();
  const htpasswd = join(dir, 'users.htpasswd');
  await updateHtpasswd(htpasswd, ALICE.user, ALICE.password, cost);
  await updateHtpasswd(htpasswd, BOB.user, BOB.password, cost);
  const linkSecret = randomBytes(32);
  const linkSecretFile = join(dir, 'link.key');
  await writeFile(linkSecretFile, linkSecret.toString('base64'));
  const { token, entry } = createToken('dashboard', ['cams']);
  const { server, url, logger } = await startServer({
    streams: { default: { type: 'push' }, cam: { type: 'push' }, lobby: { type: 'push' } },
    access: { htpasswd, linkSecretFile, tokens: [entry], streams: { cam: { read: ['alice', 'scope:cams'] } }, ...access },
    ...serve,
  });
  let i = 0;
  const feed = setInterval(() => {
    for (const name of ['default', 'cam', 'lobby']) server.live(name).push({ contentType: 'image/jpeg', body: FRAMES[i % FRAMES.length]! });
    i++;
  }, 50);
  for (const name of ['default', 'cam', 'lobby']) server.live(name).push({ contentType: 'image/jpeg', body: FRAMES[0]! });
  return {
    dir, htpasswd, linkSecretFile, linkSecret: Buffer.from(linkSecret.toString('base64')), token, url, server, logger,
    async close() {
      clearInterval(feed);
      await server.close(100);
      await removeFolder(dir);
    },
  };
}
