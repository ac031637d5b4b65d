/**
 * The Redis bus's options as the CLI and the config file give them: the URL checked, the password
 * from a file or the environment (never argv, where `ps` shows it). No Redis code here.
 */
import { readFile } from 'node:fs/promises';
import { ServerPushError, type ServerPushErrorCode } from '../errors.ts';
import { redactUrl } from '../redact.ts';
import type { RedisBusOptions } from './bus-types.ts';

/** The environment variable that may hold Redis's password. */
export const REDIS_PASSWORD_ENV = 'SERVERPUSH_REDIS_PASSWORD';

/**
 * Checks a Redis URL: `redis://HOST:PORT/DB` or `rediss://…`. With `fromArgv`, a password in it is
 * refused (argv is public). Throws `code` (`SP_ERR_INVALID_OPTION` or `SP_ERR_CONFIG`).
 */
export function checkRedisUrl(url: string, where: string, code: ServerPushErrorCode, fromArgv: boolean): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ServerPushError(code, `${where} must be a URL such as redis://127.0.0.1:6379/0, got ${JSON.stringify(redactUrl(url))}`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new ServerPushError(code, `${where} must be redis://HOST:PORT/DB or rediss://HOST:PORT/DB (TLS), got ${redactUrl(parsed)}`);
  if (parsed.hostname === '') throw new ServerPushError(code, `${where} has no host: ${redactUrl(parsed)}`);
  if (parsed.pathname !== '' && parsed.pathname !== '/' && !/^\/\d{1,2}$/.test(parsed.pathname)) throw new ServerPushError(code, `${where}: the database must be a number (redis://HOST:PORT/0), got ${JSON.stringify(parsed.pathname)}`);
  if (parsed.search !== '' || parsed.hash !== '') throw new ServerPushError(code, `${where} takes no query or fragment: ${redactUrl(parsed)}`);
  if (fromArgv && parsed.password !== '') throw new ServerPushError(code, `${where}: no password on the command line (ps shows it to every user); give it with --redis-password-file FILE or the ${REDIS_PASSWORD_ENV} environment variable`);
  return parsed;
}

/** What the CLI or the config file says of the bus. */
export interface RedisSettings {
  url: string;
  passwordFile?: string | undefined;
  maxFrameBytes?: number | undefined;
}

/**
 * The bus's options: the password from the URL (config file only), else `passwordFile`, else
 * `SERVERPUSH_REDIS_PASSWORD`. Throws `SP_ERR_CONFIG` for a file that cannot be read or two passwords.
 */
export async function redisBusOptions(settings: RedisSettings, env: NodeJS.ProcessEnv = process.env): Promise<RedisBusOptions> {
  const parsed = checkRedisUrl(settings.url, 'redis', 'SP_ERR_CONFIG', false);
  let password: string | undefined;
  if (parsed.password !== '') {
    if (settings.passwordFile !== undefined) throw new ServerPushError('SP_ERR_CONFIG', 'redis: the password is given twice, in the URL and as a file; give it once');
    password = decodeURIComponent(parsed.password);
    parsed.password = '';
  } else if (settings.passwordFile !== undefined) {
    let text: string;
    try {
      text = await readFile(settings.passwordFile, 'utf8');
    } catch (error) {
      throw new ServerPushError('SP_ERR_CONFIG', `redis: cannot read the password file ${settings.passwordFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    password = text.replace(/\r?\n$/, '');
    if (password === '') throw new ServerPushError('SP_ERR_CONFIG', `redis: the password file ${settings.passwordFile} is empty`);
  } else if (env[REDIS_PASSWORD_ENV]) {
    password = env[REDIS_PASSWORD_ENV];
  }
  return {
    url: parsed.href,
    ...(password !== undefined ? { password } : {}),
    ...(settings.maxFrameBytes !== undefined ? { maxFrameBytes: settings.maxFrameBytes } : {}),
  };
}
