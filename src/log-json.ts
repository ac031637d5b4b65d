/**
 * JSON-lines logs (pino) behind serverpush's {@link Logger}: one JSON object a line, with `time`
 * (ISO 8601), `level` (`info`, `warn`, `error`), `msg`, `code` on warnings and errors, and the
 * fields of {@link Logger.event} (a viewer's session, the start-up line) as keys. Node only.
 */
import { pino, type Logger as Pino } from 'pino';
import type { ServerPushErrorCode } from './errors.ts';
import { shows, type EventLevel, type LogFields, type Logger, type LogLevel } from './log.ts';

export interface JsonLoggerOptions {
  /** @default 'info' */
  level?: LogLevel;
  /** Where the lines go: a file descriptor (default 2, stderr) or a stream. Written synchronously. */
  destination?: number | { write(text: string): unknown };
}

/** A {@link Logger} writing JSON lines (see the file's comment for the fields). */
export function createJsonLogger(options: JsonLoggerOptions = {}): Logger {
  const threshold = options.level ?? 'info';
  const destination = options.destination ?? 2;
  const out = typeof destination === 'number' ? pino.destination({ dest: destination, sync: true }) : destination;
  // Levels are decided here (`notice` passes any threshold); pino writes whatever it is given.
  const log: Pino = pino({
    level: 'info',
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, out as never);
  const write = (level: EventLevel, message: string, fields: LogFields = {}, code?: ServerPushErrorCode) => {
    if (!shows(threshold, level)) return;
    const object: Record<string, unknown> = code ? { code } : {};
    for (const [key, value] of Object.entries(fields)) if (value !== undefined) object[key] = value;
    if (level === 'warn') log.warn(object, message);
    else if (level === 'error') log.error(object, message);
    else log.info(object, message);
  };
  return {
    info: (message) => write('info', message),
    warn: (code, message) => write('warn', message, {}, code),
    error: (code, message) => write('error', message, {}, code),
    event: write,
  };
}
