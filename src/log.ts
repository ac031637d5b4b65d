import type { ServerPushErrorCode } from './errors.ts';

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
