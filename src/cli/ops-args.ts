/**
 * The options of `serverpush serve` for running it as a service (issue 13): logs, limits,
 * readiness and config reload, as flags and as config-file keys. Parsed here so that args.ts and
 * config.ts only wire them in.
 */
import { ServerPushError } from '../errors.ts';
import type { OptionSpec, OptionValues } from './options.ts';
import type { ServerLimits } from '../server/limits.ts';
import { LOG_LEVELS, type LogLevel } from '../log.ts';

export const OPS_OPTIONS: Record<string, OptionSpec> = {
  'log-format': { type: 'string', value: 'json or text' },
  'log-level': { type: 'string', value: 'info, warn, error or silent' },
  'max-viewers': { type: 'string', value: 'N' },
  'max-viewers-per-stream': { type: 'string', value: 'N' },
  'max-viewers-per-client': { type: 'string', value: 'N' },
  'max-session': { type: 'string', value: 'SECONDS' },
  'max-header-bytes': { type: 'string', value: 'N' },
  'headers-timeout': { type: 'string', value: 'SECONDS' },
  'request-timeout': { type: 'string', value: 'SECONDS' },
  'start-grace': { type: 'string', value: 'SECONDS' },
  'watch-config': { type: 'boolean' },
};

/** What the operations options ask for; undefined where not given. */
export interface OpsArgs {
  logFormat: 'json' | 'text' | undefined;
  logLevel: LogLevel | undefined;
  limits: ServerLimits;
  sourceStartGraceMs: number | undefined;
  watchConfig: boolean;
}

/** Limits and readiness as a config file has them (seconds as elsewhere in the file). */
export interface OpsConfig {
  limits: ServerLimits;
  sourceStartGraceMs?: number;
}

/** Config-file keys of the limits: key → [ServerLimits key or 'sourceStartGraceMs', seconds?]. */
const CONFIG_KEYS: Record<string, [keyof ServerLimits | 'sourceStartGraceMs', boolean]> = {
  maxViewers: ['maxViewers', false],
  maxViewersPerStream: ['maxViewersPerStream', false],
  maxViewersPerClient: ['maxViewersPerClient', false],
  maxSession: ['maxSessionMs', true],
  maxHeaderBytes: ['maxHeaderBytes', false],
  headersTimeout: ['headersTimeoutMs', true],
  requestTimeout: ['requestTimeoutMs', true],
  startGrace: ['sourceStartGraceMs', true],
};

/** The config file's top-level keys this file reads. */
export const OPS_CONFIG_KEYS = Object.keys(CONFIG_KEYS);

function invalid(message: string): never {
  throw new ServerPushError('SP_ERR_INVALID_OPTION', message);
}

function count(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(value) || value < 0) invalid(`--${name} must be a whole number from 0 (0: no limit), got ${JSON.stringify(text)}`);
  return value;
}

function seconds(name: string, text: string | undefined, allowZero: boolean): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0) || value > 31_536_000) invalid(`--${name} must be a number of seconds${allowZero ? ' (0: no limit)' : ' above 0'}, got ${JSON.stringify(text)}`);
  return Math.round(value * 1000);
}

function defined<T extends object>(object: T): T {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined)) as T;
}

/** Reads the operations options from parsed `serve` arguments. Throws `SP_ERR_INVALID_OPTION`. */
export function parseOpsArgs(values: OptionValues): OpsArgs {
  const text = (name: string) => values[name] as string | undefined;
  const format = text('log-format');
  if (format !== undefined && format !== 'json' && format !== 'text') invalid(`--log-format must be json or text, got ${JSON.stringify(format)}`);
  const level = text('log-level');
  if (level !== undefined && !LOG_LEVELS.includes(level as LogLevel)) invalid(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
  if (values['watch-config'] === true && values['config'] === undefined) invalid('--watch-config needs --config FILE (the file to watch)');
  const maxHeaderBytes = count('max-header-bytes', text('max-header-bytes'));
  if (maxHeaderBytes !== undefined && (maxHeaderBytes < 1024 || maxHeaderBytes > 1024 * 1024)) invalid(`--max-header-bytes must be from 1024 to 1048576, got ${maxHeaderBytes}`);
  return {
    logFormat: format as 'json' | 'text' | undefined,
    logLevel: level as LogLevel | undefined,
    limits: defined<Record<keyof ServerLimits, number | undefined>>({
      maxViewers: count('max-viewers', text('max-viewers')),
      maxViewersPerStream: count('max-viewers-per-stream', text('max-viewers-per-stream')),
      maxViewersPerClient: count('max-viewers-per-client', text('max-viewers-per-client')),
      maxSessionMs: seconds('max-session', text('max-session'), true),
      maxHeaderBytes,
      headersTimeoutMs: seconds('headers-timeout', text('headers-timeout'), false),
      requestTimeoutMs: seconds('request-timeout', text('request-timeout'), false),
    }) as ServerLimits,
    sourceStartGraceMs: seconds('start-grace', text('start-grace'), true),
    watchConfig: values['watch-config'] === true,
  };
}

/** Reads the limit keys of a config file (`raw`: its top-level object). Throws `SP_ERR_CONFIG`. */
export function opsFromConfig(raw: Record<string, unknown>, file: string): OpsConfig {
  const limits: Record<string, number> = {};
  let sourceStartGraceMs: number | undefined;
  for (const [key, [target, inSeconds]] of Object.entries(CONFIG_KEYS)) {
    const value = raw[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!inSeconds && !Number.isSafeInteger(value))) {
      throw new ServerPushError('SP_ERR_CONFIG', `${file}: ${key} must be ${inSeconds ? 'a number of seconds from 0' : 'a whole number from 0'}`);
    }
    const converted = inSeconds ? Math.round(value * 1000) : value;
    if (target === 'sourceStartGraceMs') sourceStartGraceMs = converted;
    else limits[target] = converted;
  }
  return { limits: limits as ServerLimits, ...(sourceStartGraceMs === undefined ? {} : { sourceStartGraceMs }) };
}
