/**
 * Every default is one constant (src/defaults.ts); the README's option tables, the CLI's help and
 * what the code does all say the same. A default changed in one place only fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as defaults from '../src/defaults.ts';
import { USAGE, parseCommand } from '../src/cli/args.ts';
import { LiveStream } from '../src/hub/live-stream.ts';
import { Viewer } from '../src/hub/viewer.ts';

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** The default column of the README's CLI option table, by option (`--port N` → "`8080`"). */
function cliTable(): Map<string, string> {
  const rows = new Map<string, string>();
  // The first table is `serve`'s; `get` has options of the same name further down.
  for (const match of README.matchAll(/^\| `(--[a-z-]+)[^`]*` \| ([^|]*) \|/gm)) if (!rows.has(match[1]!)) rows.set(match[1]!, match[2]!.trim());
  return rows;
}

const CLI_DEFAULTS: Array<[option: string, value: string]> = [
  ['--port', String(defaults.DEFAULT_PORT)],
  ['--host', defaults.DEFAULT_HOST],
  ['--backlog', String(defaults.DEFAULT_BACKLOG)],
  ['--interval', String(defaults.DEFAULT_INTERVAL_MS / 1000)],
  ['--max-part-bytes', String(defaults.DEFAULT_MAX_PART_BYTES)],
  ['--stall-timeout', String(defaults.DEFAULT_STALL_TIMEOUT_MS / 1000)],
  ['--relay-idle', String(defaults.DEFAULT_RELAY_IDLE_MS / 1000)],
  ['--max-unsent-bytes', String(defaults.DEFAULT_MAX_UNSENT_BYTES)],
  ['--source-stall', String(defaults.DEFAULT_SOURCE_STALL_MS / 1000)],
  ['--snapshot-max-age', String(defaults.DEFAULT_SNAPSHOT_MAX_AGE_MS / 1000)],
  ['--exec-idle', String(defaults.DEFAULT_EXEC_IDLE_MS / 1000)],
  ['--redis-max-frame-bytes', String(defaults.DEFAULT_REDIS_MAX_FRAME_BYTES)],
];

test('the README option table gives each CLI default as src/defaults.ts has it', () => {
  const table = cliTable();
  assert.ok(table.size >= 15, `found the option table (${table.size} rows)`);
  for (const [option, value] of CLI_DEFAULTS) {
    assert.ok(table.has(option), `${option} is in the README table`);
    assert.match(table.get(option)!, new RegExp(`^\`${value.replace(/\./g, '\\.')}\``), `README default of ${option}`);
  }
});

test('the CLI help gives the same defaults, and the parsed command uses them', () => {
  for (const [option, value] of CLI_DEFAULTS) {
    const line = USAGE.split('\n').findIndex((l) => l.trimStart().startsWith(option));
    assert.notEqual(line, -1, `${option} in the help`);
    // The "(default …)" may wrap onto the next line.
    const text = USAGE.split('\n').slice(line, line + 2).join(' ');
    assert.match(text, new RegExp(`\\(default ${value.replace(/\./g, '\\.')}[;,)]`), `help default of ${option}`);
  }
  const command = parseCommand(['serve', 'some-dir'], 'examples');
  assert.equal(command.command, 'serve');
  if (command.command !== 'serve') return;
  const spec = command.streams['default']!;
  assert.equal(spec.type, 'slideshow');
  assert.equal(spec.maxPartBytes, defaults.DEFAULT_MAX_PART_BYTES);
  assert.equal(spec.stallTimeoutMs, defaults.DEFAULT_STALL_TIMEOUT_MS);
  if (spec.type === 'slideshow') assert.equal(spec.intervalMs, defaults.DEFAULT_INTERVAL_MS);
});

test('the library table and the LiveStream options give the same defaults; the hub and the server agree on the stall timeout', () => {
  const library = /\| `intervalMs`, `loop`, `maxPartBytes`, `stallTimeoutMs`, `boundary` \| \| `(\d+)`, `false`, 16 MiB, `(\d+)`, random \|/.exec(README);
  assert.ok(library, 'the createServer table row of the dir shorthand');
  assert.equal(Number(library[1]), defaults.DEFAULT_INTERVAL_MS);
  assert.equal(Number(library[2]), defaults.DEFAULT_STALL_TIMEOUT_MS);
  assert.equal(defaults.DEFAULT_MAX_PART_BYTES, 16 * 1024 * 1024);
  const live = /`stallTimeoutMs`\s+\((\d+)\)/.exec(README);
  assert.ok(live, 'the LiveStream options paragraph');
  assert.equal(Number(live[1]), defaults.DEFAULT_LIVE_STALL_TIMEOUT_MS);
  assert.equal(defaults.DEFAULT_LIVE_STALL_TIMEOUT_MS, defaults.DEFAULT_STALL_TIMEOUT_MS, 'a live viewer and a slideshow client are dropped after the same time');
  assert.equal(new LiveStream().stallTimeoutMs, defaults.DEFAULT_STALL_TIMEOUT_MS);
  const port = /\| `port` \| `number` \| `(\d+)` \|/.exec(README);
  const backlog = /\| `backlog` \| `number` \| `(\d+)` \|/.exec(README);
  assert.equal(Number(port?.[1]), defaults.DEFAULT_PORT);
  assert.equal(Number(backlog?.[1]), defaults.DEFAULT_BACKLOG);
  assert.match(README, new RegExp(`close\\(graceMs = ${defaults.DEFAULT_CLOSE_GRACE_MS}\\)`));
  // A bare sink given to subscribe() gets the stream's stall timeout.
  const controller = new AbortController();
  const subscriber = new LiveStream({ stallTimeoutMs: 1234 }).subscribe({ signal: controller.signal, write: () => true, onDrain: () => {}, destroy: () => controller.abort(), end: () => controller.abort() });
  assert.ok(subscriber.viewer instanceof Viewer);
  controller.abort();
});
