/**
 * The access keys of the config file (docs/security.md):
 *
 * ```json
 * { "htpasswd": "users.htpasswd", "linkSecretFile": "link.key", "trustProxy": ["127.0.0.1"],
 *   "tokens": [{ "name": "dashboard", "sha256": "…", "scopes": ["cams"] }],
 *   "access": { "index": ["public"], "status": ["admin"] },
 *   "streams": { "cam1": { "type": "relay", "url": "…", "read": ["alice", "scope:cams"], "allow": ["10.0.0.0/8"] } } }
 * ```
 * Paths are relative to the file; times in seconds.
 */
import { resolve } from 'node:path';
import { ServerPushError } from '../errors.ts';
import type { AccessOptions, StreamAccess } from '../server/access/policy.ts';
import type { FailureTrackerOptions } from '../server/access/failures.ts';

/** Top-level keys of the config file that belong to access control. */
export const ACCESS_KEYS = ['htpasswd', 'tokens', 'tokensFile', 'linkSecretFile', 'allow', 'deny', 'trustProxy', 'access', 'authFailures', 'credentialCache', 'jwt'];
/** Keys of a stream that belong to access control. */
export const STREAM_ACCESS_KEYS = ['read', 'allow', 'deny'];

type Raw = Record<string, unknown>;

function fail(where: string, message: string): never {
  throw new ServerPushError('SP_ERR_CONFIG', `${where}: ${message}`);
}

function strings(raw: Raw, key: string, where: string): string[] | undefined {
  const value = raw[key];
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '')) fail(where, `${key} must be a list of strings`);
  return value as string[];
}

function path(raw: Raw, key: string, where: string, base: string): string | undefined {
  const value = raw[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') fail(where, `${key} must be a file name`);
  return resolve(base, value);
}

function seconds(raw: Raw, key: string, where: string): number | undefined {
  const value = raw[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) fail(where, `${key} must be a number of seconds above 0`);
  return value * 1000;
}

/** The access options of a config file's top level (undefined when it has none). */
export function accessFromConfig(raw: Raw, file: string, base: string): AccessOptions | undefined {
  if (!ACCESS_KEYS.some((key) => raw[key] !== undefined)) return undefined;
  const options: AccessOptions = {};
  const htpasswd = path(raw, 'htpasswd', file, base);
  if (htpasswd !== undefined) options.htpasswd = htpasswd;
  const tokensFile = path(raw, 'tokensFile', file, base);
  if (tokensFile !== undefined) options.tokensFile = tokensFile;
  const linkSecretFile = path(raw, 'linkSecretFile', file, base);
  if (linkSecretFile !== undefined) options.linkSecretFile = linkSecretFile;
  // Checked in full (names, hashes, scopes) by createAccessPolicy.
  if (raw['tokens'] !== undefined) options.tokens = raw['tokens'] as AccessOptions['tokens'] & object;
  for (const key of ['allow', 'deny', 'trustProxy'] as const) {
    const list = strings(raw, key, file);
    if (list !== undefined) options[key] = list;
  }
  const access = raw['access'];
  if (access !== undefined) {
    if (typeof access !== 'object' || access === null || Array.isArray(access)) fail(file, 'access must be an object of read lists (index, status, metrics, health, streams)');
    const read: NonNullable<AccessOptions['read']> = {};
    for (const key of Object.keys(access)) {
      if (!['index', 'status', 'metrics', 'health', 'streams'].includes(key)) fail(file, `access: unknown key ${JSON.stringify(key)} (index, status, metrics, health, streams)`);
      read[key as keyof typeof read] = strings(access as Raw, key, `${file}: access`)!;
    }
    options.read = read;
  }
  const failures = raw['authFailures'];
  if (failures !== undefined) {
    if (typeof failures !== 'object' || failures === null || Array.isArray(failures)) fail(file, 'authFailures must be an object: {"limit": 10, "window": 60, "lockout": 300}');
    const f = failures as Raw;
    for (const key of Object.keys(f)) if (!['limit', 'window', 'lockout'].includes(key)) fail(file, `authFailures: unknown key ${JSON.stringify(key)} (limit, window, lockout)`);
    const tracker: FailureTrackerOptions = {};
    const limit = f['limit'];
    if (limit !== undefined) {
      if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1) fail(file, 'authFailures.limit must be a positive integer');
      tracker.limit = limit;
    }
    const windowMs = seconds(f, 'window', `${file}: authFailures`);
    if (windowMs !== undefined) tracker.windowMs = windowMs;
    const lockoutMs = seconds(f, 'lockout', `${file}: authFailures`);
    if (lockoutMs !== undefined) tracker.lockoutMs = lockoutMs;
    options.failures = tracker;
  }
  const jwt = raw['jwt'];
  if (jwt !== undefined) {
    if (typeof jwt !== 'object' || jwt === null || Array.isArray(jwt)) fail(file, 'jwt must be an object (secretFile, jwksFile or jwksUrl; algorithms, issuer, audience, streamsClaim)');
    const j = jwt as Raw;
    const where = `${file}: jwt`;
    for (const key of Object.keys(j)) if (!['algorithms', 'secretFile', 'jwksFile', 'jwksUrl', 'issuer', 'audience', 'streamsClaim'].includes(key)) fail(where, `unknown key ${JSON.stringify(key)}`);
    const options_: NonNullable<AccessOptions['jwt']> = {};
    const algorithms = strings(j, 'algorithms', where);
    if (algorithms !== undefined) options_.algorithms = algorithms as NonNullable<typeof options_.algorithms>;
    const secretFile = path(j, 'secretFile', where, base);
    if (secretFile !== undefined) options_.secretFile = secretFile;
    const jwksFile = path(j, 'jwksFile', where, base);
    if (jwksFile !== undefined) options_.jwksFile = jwksFile;
    for (const key of ['jwksUrl', 'issuer', 'audience', 'streamsClaim'] as const) {
      const value = j[key];
      if (value === undefined) continue;
      if (typeof value !== 'string' || value === '') fail(where, `${key} must be a non-empty string`);
      options_[key] = value;
    }
    options.jwt = options_;
  }
  const cacheMs = seconds(raw, 'credentialCache', file);
  if (cacheMs !== undefined) options.credentialCacheMs = cacheMs;
  return options;
}

/** The access keys of one stream of the file, taken out of it (the rest is the stream's spec). */
export function takeStreamAccess(raw: unknown, where: string): { access: StreamAccess | undefined; rest: unknown } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { access: undefined, rest: raw };
  const r = raw as Raw;
  if (!STREAM_ACCESS_KEYS.some((key) => r[key] !== undefined)) return { access: undefined, rest: raw };
  const access: StreamAccess = {};
  for (const key of STREAM_ACCESS_KEYS as Array<keyof StreamAccess>) {
    const list = strings(r, key, where);
    if (list !== undefined) access[key] = list;
  }
  const rest = Object.fromEntries(Object.entries(r).filter(([key]) => !STREAM_ACCESS_KEYS.includes(key)));
  return { access, rest };
}
