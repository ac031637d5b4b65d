/** What both benchmark commands do around their runs: option checks, a stale-build warning. */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

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
