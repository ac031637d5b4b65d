import type { ServerPushErrorCode } from './errors.ts';
import { redactUrlsIn } from './redact.ts';

/** Values of a structured log line's fields. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/**
 * Levels of {@link Logger.event}: `notice` is shown whatever the level set (`--quiet` included),
 * for the few lines an operator always needs (where the server listens).
 */
export type EventLevel = 'info' | 'warn' | 'error' | 'notice';

/** Where serverpush reports what happens. Every warning and error carries a stable code. */
export interface Logger {
  info(message: string): void;
  warn(code: ServerPushErrorCode, message: string): void;
  error(code: ServerPushErrorCode, message: string): void;
  /**
   * A line with fields (a viewer's session at its end, the start-up line): JSON logs keep them
   * as keys, text logs append them as `key=value`. Optional: see {@link logEvent}.
   */
  event?(level: EventLevel, message: string, fields?: LogFields, code?: ServerPushErrorCode): void;
}

/** `fields` as ` key=value …` (strings with spaces or quotes JSON-quoted); undefined ones left out. */
export function formatFields(fields: LogFields = {}): string {
  let text = '';
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    text += ` ${key}=${typeof value === 'string' && (value === '' || /[\s"=]/.test(value)) ? JSON.stringify(value) : String(value)}`;
  }
  return text;
}

/** Logs a line with fields through `logger.event`, or as text through info/warn/error where the logger has none. */
export function logEvent(logger: Logger, level: EventLevel, message: string, fields: LogFields = {}, code?: ServerPushErrorCode): void {
  if (logger.event) return logger.event(level, message, fields, code);
  const text = `${message}${formatFields(fields)}`;
  if (level === 'warn') logger.warn(code ?? 'SP_ERR_INTERNAL', text);
  else if (level === 'error') logger.error(code ?? 'SP_ERR_INTERNAL', text);
  else logger.info(text);
}

/** A logger that drops everything (the library default). */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

/** How much a logger shows: `info` everything, `warn` warnings and errors, `error` errors, `silent` nothing. */
export type LogLevel = 'info' | 'warn' | 'error' | 'silent';

export const LOG_LEVELS: readonly LogLevel[] = ['info', 'warn', 'error', 'silent'];

/** True when a line of `level` is shown at the threshold `threshold`. */
export function shows(threshold: LogLevel, level: EventLevel): boolean {
  if (threshold === 'silent') return false;
  if (level === 'notice') return true;
  return LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(threshold);
}

/**
 * A logger writing one text line per event to a stream, e.g. `process.stderr`:
 * `TIME LEVEL [CODE] MESSAGE [key=value …]`. `quiet` is `level: 'warn'`.
 */
export function createStreamLogger(stream: { write(text: string): unknown }, options: { quiet?: boolean; level?: LogLevel } = {}): Logger {
  const threshold: LogLevel = options.level ?? (options.quiet ? 'warn' : 'info');
  const line = (level: string, text: string) => stream.write(`${new Date().toISOString()} ${level} ${text}\n`);
  return {
    info: (message) => { if (shows(threshold, 'info')) line('info', message); },
    warn: (code, message) => { if (shows(threshold, 'warn')) line('warn', `${code} ${message}`); },
    error: (code, message) => { if (shows(threshold, 'error')) line('error', `${code} ${message}`); },
    event: (level, message, fields, code) => {
      if (shows(threshold, level)) line(level, `${code ? `${code} ` : ''}${message}${formatFields(fields)}`);
    },
  };
}

/**
 * `logger` with the password of every `scheme://user:password@` in a message shown as `***` — the
 * last line of defence for text serverpush does not make itself, such as a command's stderr
 * (`ffmpeg -i rtsp://admin:secret@camera/…` prints its input URL). `createServer` wraps its logger.
 */
export function redactingLogger(logger: Logger): Logger {
  return {
    info: (message) => logger.info(redactUrlsIn(message)),
    warn: (code, message) => logger.warn(code, redactUrlsIn(message)),
    error: (code, message) => logger.error(code, redactUrlsIn(message)),
    ...(logger.event ? {
      event: (level: EventLevel, message: string, fields?: LogFields, code?: ServerPushErrorCode) => logger.event!(level, redactUrlsIn(message), fields && redactFields(fields), code),
    } : {}),
  };
}

function redactFields(fields: LogFields): LogFields {
  const redacted: LogFields = {};
  for (const [key, value] of Object.entries(fields)) redacted[key] = typeof value === 'string' ? redactUrlsIn(value) : value;
  return redacted;
}
