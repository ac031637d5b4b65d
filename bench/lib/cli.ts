/** What both benchmark commands do around their runs: option checks, a stale-build warning, exits. */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { killChildren } from './server-process.ts';

/** `text` as a number above 0 (an integer when `integer`), or an error naming `--name`. */
export function positive(name: string, text: string, integer = false): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new Error(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** Newest modification time under a folder. */
function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

/** Warns on stderr when `packageRoot`'s src/ was changed after dist/ was built: dist/ is measured. */
export function warnIfStaleBuild(packageRoot: string): void {
  const src = join(packageRoot, 'src');
  const dist = join(packageRoot, 'dist');
  if (existsSync(src) && existsSync(dist) && newest(src) > newest(dist)) {
    process.stderr.write('warning: src/ is newer than dist/; the bench measures dist/ (run `npm run build`)\n');
  }
}

/**
 * Runs a benchmark command's `main`: on SIGINT/SIGTERM or a failure, every child it started is
 * killed first. A failure prints its stack and cause (for EMFILE only the message: the hint is in
 * it) and exits 1.
 */
export function runBench(main: () => Promise<void>): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      killChildren();
      process.exit(130);
    });
  }
  main().catch((error: unknown) => {
    killChildren();
    const cause = (error as Error).cause;
    const message = `${(error as Error).message ?? String(error)}${cause ? ` (cause: ${cause instanceof Error ? cause.message : String(cause)})` : ''}`;
    process.stderr.write(`bench failed: ${/EMFILE/.test(message) ? message : `${(error as Error).stack ?? ''}\n${message}`}\n`);
    process.exit(1);
  });
}
