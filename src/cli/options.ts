import { ServerPushError } from '../errors.ts';

/** One option of a command: a flag, or an option that takes a value (`--port N`). */
export interface OptionSpec {
  type: 'boolean' | 'string';
  /** A one-letter alias (`-h`). */
  short?: string;
  /** May be given more than once (values collected in order). */
  multiple?: boolean;
  /** What the value is, for "needs a value" messages (`SECONDS`, `URL`). */
  value?: string;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

function invalid(message: string): never {
  throw new ServerPushError('SP_ERR_INVALID_OPTION', message);
}

/** Edit distance (Levenshtein), for "did you mean". */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

/** The known option closest to `name` (a typo, or the start of a longer name), if one is close. */
export function closestOption(name: string, known: readonly string[]): string | undefined {
  const longer = known.filter((option) => option.startsWith(name));
  if (longer.length === 1) return longer[0];
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const option of known) {
    const d = distance(name, option);
    if (d < bestDistance) {
      best = option;
      bestDistance = d;
    }
  }
  return best;
}

/**
 * Parses arguments against `specs`, strictly: an unknown option is refused with the closest known
 * one as a hint; an option that takes a value takes the next argument even when it starts with a
 * dash (`--interval -1` is then refused for its value, not as "ambiguous"), unless that argument
 * is itself an option; `--name=value` works; `--` ends the options. Throws `SP_ERR_INVALID_OPTION`.
 */
export function parseOptions(argv: readonly string[], specs: Record<string, OptionSpec>): { values: OptionValues; positionals: string[] } {
  const values: OptionValues = {};
  const positionals: string[] = [];
  const names = Object.keys(specs);
  const byShort = new Map(Object.entries(specs).filter(([, spec]) => spec.short).map(([name, spec]) => [spec.short!, name]));
  const isOption = (arg: string) => (arg.startsWith('--') && names.includes(arg.slice(2).split('=')[0]!)) || (/^-[A-Za-z]$/.test(arg) && byShort.has(arg[1]!));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq === -1 ? undefined : arg.slice(eq + 1);
      if (!(name in specs)) {
        const hint = closestOption(name, names);
        invalid(`unknown option --${name}${hint ? `; did you mean --${hint}?` : ''}`);
      }
    } else if (arg.startsWith('-') && arg.length > 1) {
      const short = arg.slice(1, 2);
      const found = byShort.get(short);
      if (!found) invalid(`unknown option ${arg}${/^-\d/.test(arg) ? ' (a negative number must follow the option it is the value of)' : ''}`);
      name = found;
      inline = arg.length > 2 ? arg.slice(2).replace(/^=/, '') : undefined;
    } else {
      positionals.push(arg);
      continue;
    }
    const spec = specs[name]!;
    const shown = arg.startsWith('--') ? `--${name}` : `-${spec.short}`;
    let value: string | boolean;
    if (spec.type === 'boolean') {
      if (inline !== undefined) invalid(`${shown} takes no value, got ${JSON.stringify(inline)}`);
      value = true;
    } else if (inline !== undefined) {
      value = inline;
    } else {
      const next = argv[i + 1];
      if (next === undefined || isOption(next) || next === '--') invalid(`${shown} needs a value${spec.value ? ` (${spec.value})` : ''}`);
      value = next;
      i++;
    }
    if (spec.multiple) values[name] = [...((values[name] as string[] | undefined) ?? []), value as string];
    else if (values[name] !== undefined) invalid(`${shown} was given twice`);
    else values[name] = value;
  }
  return { values, positionals };
}
