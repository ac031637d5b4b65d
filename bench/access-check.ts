/**
 * Benchmark for issue 12: what the access check costs a request. `GET /snapshot/cam` (a 20 KB
 * JPEG) over keep-alive connections, with no access control, HTTP Basic (cached after the first
 * check, and with the cache off: one bcrypt check at cost 10 per request), a bearer token, a
 * signed link and an HS256 JWT. Prints requests/s and latency p50 / p99 per kind.
 *
 *   node --import tsx bench/access-check.ts [--seconds 3] [--connections 8]
 */
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { writeFile, mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { createServer } from '../src/server/server.ts';
import { updateHtpasswd } from '../src/server/access/htpasswd.ts';
import { createToken } from '../src/server/access/tokens.ts';
import { signLink } from '../src/server/access/signed-link.ts';
import type { AccessOptions } from '../src/server/access/policy.ts';
import { machineDescription } from './lib/report.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, connections: { type: 'string', default: '8' } } });
const seconds = Number(values.seconds);
const connections = Number(values.connections);

const dir = await mkdtemp(join(tmpdir(), 'serverpush-bench-access-'));
const htpasswd = join(dir, 'users');
await updateHtpasswd(htpasswd, 'alice', 'correct horse battery staple', 10);
await writeFile(join(dir, 'link.key'), randomBytes(32).toString('base64'));
const jwtSecret = randomBytes(32);
await writeFile(join(dir, 'jwt.key'), jwtSecret);
const { token, entry } = createToken('bench', ['cams']);
const frame = await readFile(new URL('../test/fixtures/frames/', import.meta.url).pathname + (await import('node:fs')).readdirSync(new URL('../test/fixtures/frames/', import.meta.url)).sort()[0]);

async function measure(name: string, access: AccessOptions | undefined, headers: Record<string, string>, path = '/snapshot/cam', makeUrl?: (base: URL) => string): Promise<void> {
  const server = await createServer({ port: 0, streams: { cam: { type: 'push' } }, ...(access ? { access } : {}) });
  const base = await server.listen();
  server.live('cam').push({ contentType: 'image/jpeg', body: frame });
  const url = makeUrl ? makeUrl(base) : new URL(path.slice(1), base).href;
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  const deadline = performance.now() + seconds * 1000;
  const one = () => new Promise<void>((resolve, reject) => {
    const started = performance.now();
    request(url, { agent, headers }, (res) => {
      res.resume();
      res.on('end', () => {
        latencies.push(performance.now() - started);
        statuses.set(res.statusCode!, (statuses.get(res.statusCode!) ?? 0) + 1);
        resolve();
      });
    }).on('error', reject).end();
  });
  await Promise.all(Array.from({ length: connections }, async () => { while (performance.now() < deadline) await one(); }));
  agent.destroy();
  await server.close(100);
  latencies.sort((a, b) => a - b);
  const pick = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!.toFixed(2);
  console.log(`${name.padEnd(34)} ${String(Math.round(latencies.length / seconds)).padStart(7)} req/s   p50 ${pick(0.5).padStart(7)} ms   p99 ${pick(0.99).padStart(7)} ms   ${[...statuses].map(([s, n]) => `${s}×${n}`).join(' ')}`);
}

console.log(`# access check, ${connections} keep-alive connections, ${seconds} s each; ${machineDescription()}`);
const users = { htpasswd };
const basic = { Authorization: `Basic ${Buffer.from('alice:correct horse battery staple').toString('base64')}` };
await measure('no access control', undefined, {});
await measure('Basic, verified credentials cached', users, basic);
await measure('Basic, cache off (bcrypt cost 10)', { ...users, credentialCacheMs: 0.001 }, basic);
await measure('Bearer token (SHA-256 lookup)', { tokens: [entry] }, { Authorization: `Bearer ${token}` });
const secret = Buffer.from(await readFile(join(dir, 'link.key')));
await measure('signed link (HMAC-SHA256)', { linkSecretFile: join(dir, 'link.key') }, {}, '', (base) => signLink(new URL('snapshot/cam', base), { secret, expiresInSeconds: 600 }));
const jwt = await new SignJWT({ streams: ['cam'] }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(jwtSecret);
await measure('JWT HS256 (jose)', { jwt: { secretFile: join(dir, 'jwt.key') } }, { Authorization: `Bearer ${jwt}` });
await measure('wrong password (refused, bcrypt)', { ...users, failures: { limit: 1e9 } }, { Authorization: `Basic ${Buffer.from('alice:wrong').toString('base64')}` });
await rm(dir, { recursive: true, force: true });
