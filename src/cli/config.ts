import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ServerPushError } from '../errors.ts';
import type { StreamSpec } from '../server/stream-spec.ts';
import { OPS_CONFIG_KEYS, opsFromConfig, type OpsConfig } from './ops-args.ts';
import type { AccessOptions, StreamAccess } from '../server/access/policy.ts';
import { ACCESS_KEYS, accessFromConfig, takeStreamAccess } from './access-config.ts';
import { checkRedisUrl } from '../bus/redis-options.ts';

/**
 * The config file: JSON with optional `port`, `host` and `backlog`, and `streams`, an object of named
 * streams. Times are in seconds, as on the command line; paths are relative to the file.
 *
 * ```json
 * { "port": 8080, "streams": {
 *     "default": { "type": "slideshow", "dir": "slides", "interval": 5, "loop": true },
 *     "cam1": { "type": "relay", "url": "http://camera.local/video.mjpg", "idleTimeout": 30 } } }
 * ```
 */
export interface ConfigFile {
  port?: number;
  host?: string;
  backlog?: number;
  basePath?: string;
  /** `tlsCert` and `tlsKey` (both or neither), paths relative to the file: serve HTTPS. */
  tls?: { certFile: string; keyFile: string };
  /** The Redis bus: `redis` (URL; a password may be in it here), `redisPasswordFile`, `redisMaxFrameBytes`. */
  redis?: string;
  redisPasswordFile?: string;
  redisMaxFrameBytes?: number;
  streams: Record<string, StreamSpec>;
  /** Limits (`maxViewers`, `maxSession`, … see ops-args.ts) and `startGrace`. */
  ops?: OpsConfig;
  /** Access control: users, tokens, signed links, address lists, per-stream `read` (access-config.ts). */
  access?: AccessOptions;
}

const COMMON = ['type', 'maxPartBytes', 'stallTimeout', 'maxUnsentBytes', 'dropDuplicates', 'serveLastWhenDown', 'snapshotMaxAge'];
const KEYS: Record<StreamSpec['type'], string[]> = {
  slideshow: ['dir', 'interval', 'loop', 'sync'],
  watch: ['path', 'settle', 'sourceStall'],
  stdin: ['format', 'sourceStall', 'exitOnEof'],
  exec: ['command', 'format', 'restartDelay', 'sourceStall', 'onDemand', 'idleTimeout'],
  relay: ['url', 'idleTimeout', 'upstreamStall', 'retryDelay', 'headers', 'username', 'password', 'passwordFile', 'upstreamBoundary'],
  poll: ['url', 'interval', 'retryDelay', 'headers', 'username', 'password', 'passwordFile'],
  push: [],
};

function fail(where: string, message: string): never {
  throw new ServerPushError('SP_ERR_CONFIG', `${where}: ${message}`);
}

type Raw = Record<string, unknown>;

function seconds(raw: Raw, key: string, where: string, allowZero = false): number | undefined {
  const value = raw[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) fail(where, `${key} must be a number of seconds${allowZero ? '' : ' above 0'}`);
  return value * 1000;
}

function text(raw: Raw, key: string, where: string, required: boolean): string | undefined {
  const value = raw[key];
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string' || value === '') fail(where, `${key} must be a non-empty string`);
  return value;
}

function flag(raw: Raw, key: string, where: string): boolean | undefined {
  const value = raw[key];
  if (value !== undefined && typeof value !== 'boolean') fail(where, `${key} must be true or false`);
  return value as boolean | undefined;
}

/** The object without its undefined values (as `exactOptionalPropertyTypes` wants). */
function defined<T extends object>(object: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

/** A relay's or poll's `headers`, `username`, `password`, `passwordFile` (relative to the file). */
function upstreamAccess(r: Raw, where: string, base: string): { headers?: Record<string, string> | undefined; username?: string | undefined; password?: string | undefined; passwordFile?: string | undefined } {
  const headers = r['headers'];
  if (headers !== undefined && (typeof headers !== 'object' || headers === null || Object.values(headers).some((v) => typeof v !== 'string'))) fail(where, 'headers must be an object of strings');
  const passwordFile = text(r, 'passwordFile', where, false);
  if (passwordFile !== undefined && r['password'] !== undefined) fail(where, 'give password or passwordFile, not both');
  const username = r['username'];
  if (username !== undefined && typeof username !== 'string') fail(where, 'username must be a string');
  return {
    headers: headers as Record<string, string> | undefined,
    username: username as string | undefined,
    password: text(r, 'password', where, false),
    passwordFile: passwordFile === undefined ? undefined : resolve(base, passwordFile),
  };
}

/** Turns one stream of the file (seconds, relative paths) into a StreamSpec. */
export function streamSpecFrom(raw: unknown, where: string, base: string): StreamSpec {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(where, 'must be an object');
  const r = raw as Raw;
  const type = r['type'];
  if (typeof type !== 'string' || !(type in KEYS)) fail(where, `type must be one of ${Object.keys(KEYS).join(', ')}`);
  const known = new Set([...COMMON, ...KEYS[type as StreamSpec['type']]]);
  for (const key of Object.keys(r)) if (!known.has(key)) fail(where, `unknown key ${JSON.stringify(key)} for a ${type} stream`);
  const maxPartBytes = r['maxPartBytes'];
  if (maxPartBytes !== undefined && (typeof maxPartBytes !== 'number' || !Number.isSafeInteger(maxPartBytes) || maxPartBytes <= 0)) fail(where, 'maxPartBytes must be a positive integer');
  const maxUnsentBytes = r['maxUnsentBytes'];
  if (maxUnsentBytes !== undefined && (typeof maxUnsentBytes !== 'number' || !Number.isInteger(maxUnsentBytes) || maxUnsentBytes < 0 || maxUnsentBytes >= 2 ** 31)) fail(where, 'maxUnsentBytes must be an integer from 0 to 2147483647');
  const format = r['format'];
  if (format !== undefined && format !== 'auto' && format !== 'mjpeg' && format !== 'multipart') fail(where, 'format must be auto, mjpeg or multipart');
  const common = defined({
    maxPartBytes: maxPartBytes as number | undefined,
    stallTimeoutMs: seconds(r, 'stallTimeout', where),
    maxUnsentBytes: maxUnsentBytes as number | undefined,
    dropDuplicates: flag(r, 'dropDuplicates', where),
    serveLastWhenDown: flag(r, 'serveLastWhenDown', where),
    snapshotMaxAgeMs: seconds(r, 'snapshotMaxAge', where, true),
  });
  const sourceStallMs = seconds(r, 'sourceStall', where, true);
  switch (type as StreamSpec['type']) {
    case 'slideshow':
      return { ...common, type: 'slideshow', dir: resolve(base, text(r, 'dir', where, true)!), ...defined({ intervalMs: seconds(r, 'interval', where), loop: flag(r, 'loop', where), sync: flag(r, 'sync', where) }) };
    case 'watch':
      return { ...common, type: 'watch', path: resolve(base, text(r, 'path', where, true)!), ...defined({ settleMs: seconds(r, 'settle', where), sourceStallMs }) };
    case 'stdin':
      return { ...common, type: 'stdin', ...defined({ format: format as 'auto' | undefined, sourceStallMs, exitOnEof: flag(r, 'exitOnEof', where) }) };
    case 'exec':
      return {
        ...common,
        type: 'exec',
        command: text(r, 'command', where, true)!,
        ...defined({ format: format as 'auto' | undefined, restartDelayMs: seconds(r, 'restartDelay', where), sourceStallMs, onDemand: flag(r, 'onDemand', where), idleTimeoutMs: seconds(r, 'idleTimeout', where) }),
      };
    case 'relay':
      return {
        ...common,
        type: 'relay',
        url: text(r, 'url', where, true)!,
        ...defined({
          idleTimeoutMs: seconds(r, 'idleTimeout', where, true),
          upstreamStallMs: seconds(r, 'upstreamStall', where),
          retryDelayMs: seconds(r, 'retryDelay', where),
          upstreamBoundary: text(r, 'upstreamBoundary', where, false),
          ...upstreamAccess(r, where, base),
        }),
      };
    case 'poll':
      return {
        ...common,
        type: 'poll',
        url: text(r, 'url', where, true)!,
        ...defined({ intervalMs: seconds(r, 'interval', where), retryDelayMs: seconds(r, 'retryDelay', where), ...upstreamAccess(r, where, base) }),
      };
    case 'push':
      return { ...common, type: 'push' };
  }
}

/** Reads and checks a config file. Throws `SP_ERR_CONFIG` with the file and key at fault. */
export async function loadConfig(file: string): Promise<ConfigFile> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    fail(file, (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : `not valid JSON: ${(error as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(file, 'must hold a JSON object');
  const r = raw as Raw;
  for (const key of Object.keys(r)) if (!['port', 'host', 'backlog', 'basePath', 'streams', 'tlsCert', 'tlsKey', 'redis', 'redisPasswordFile', 'redisMaxFrameBytes', ...OPS_CONFIG_KEYS, ...ACCESS_KEYS].includes(key)) fail(file, `unknown key ${JSON.stringify(key)}`);
  const port = r['port'];
  if (port !== undefined && (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535)) fail(file, 'port must be an integer from 0 to 65535');
  const host = text(r, 'host', file, false);
  const basePath = text(r, 'basePath', file, false);
  const backlog = r['backlog'];
  if (backlog !== undefined && (typeof backlog !== 'number' || !Number.isInteger(backlog) || backlog < 1 || backlog > 65535)) fail(file, 'backlog must be an integer from 1 to 65535');
  const redis = text(r, 'redis', file, false);
  if (redis !== undefined) checkRedisUrl(redis, `${file}: redis`, 'SP_ERR_CONFIG', false);
  const redisPasswordFile = text(r, 'redisPasswordFile', file, false);
  const redisMaxFrameBytes = r['redisMaxFrameBytes'];
  if (redisMaxFrameBytes !== undefined && (typeof redisMaxFrameBytes !== 'number' || !Number.isSafeInteger(redisMaxFrameBytes) || redisMaxFrameBytes <= 0 || redisMaxFrameBytes > 512 * 1024 * 1024)) fail(file, 'redisMaxFrameBytes must be a positive integer of at most 536870912');
  if (redis === undefined && (redisPasswordFile !== undefined || redisMaxFrameBytes !== undefined)) fail(file, 'redisPasswordFile and redisMaxFrameBytes go with redis');
  const streams = r['streams'];
  if (typeof streams !== 'object' || streams === null || Array.isArray(streams) || Object.keys(streams).length === 0) fail(file, 'streams must be an object with at least one stream');
  const base = dirname(resolve(file));
  const tlsCert = text(r, 'tlsCert', file, false);
  const tlsKey = text(r, 'tlsKey', file, false);
  if ((tlsCert === undefined) !== (tlsKey === undefined)) fail(file, 'give tlsCert and tlsKey together (the certificate and its private key)');
  const specs: Record<string, StreamSpec> = {};
  const streamAccess: Record<string, StreamAccess> = {};
  for (const [name, spec] of Object.entries(streams)) {
    const { access, rest } = takeStreamAccess(spec, `${file}: streams.${name}`);
    if (access) streamAccess[name] = access;
    specs[name] = streamSpecFrom(rest, `${file}: streams.${name}`, base);
  }
  let access = accessFromConfig(r, file, base);
  if (Object.keys(streamAccess).length > 0) access = { ...access, streams: streamAccess };
  return {
    ...defined({ port: port as number | undefined, host, backlog: backlog as number | undefined, basePath, access, redis, redisPasswordFile: redisPasswordFile === undefined ? undefined : resolve(base, redisPasswordFile), redisMaxFrameBytes: redisMaxFrameBytes as number | undefined }),
    ...(tlsCert !== undefined && tlsKey !== undefined ? { tls: { certFile: resolve(base, tlsCert), keyFile: resolve(base, tlsKey) } } : {}),
    streams: specs,
    ops: opsFromConfig(r, file),
  };
}
