import type { ServerPushErrorCode } from './errors.ts';
import { redactUrlsIn } from './redact.ts';

/** Where serverpush reports what happens. Every warning and error carries a stable code. */
export interface Logger {
  info(message: string): void;
  warn(code: ServerPushErrorCode, message: string): void;
  error(code: ServerPushErrorCode, message: string): void;
}

/** A logger that drops everything (the library default). */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

/** A logger writing one line per event to a stream, e.g. `process.stderr`. */
export function createStreamLogger(stream: { write(text: string): unknown }, options: { quiet?: boolean } = {}): Logger {
  const line = (level: string, text: string) => stream.write(`${new Date().toISOString()} ${level} ${text}\n`);
  return {
    info: (message) => { if (!options.quiet) line('info', message); },
    warn: (code, message) => line('warn', `${code} ${message}`),
    error: (code, message) => line('error', `${code} ${message}`),
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
  };
}
