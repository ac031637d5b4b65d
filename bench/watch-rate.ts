/**
 * Benchmark for issue 10: `serverpush serve --watch` against a camera that renames ~20 KB JPEGs
 * over FEED/current.jpg at 30 and 60 fps, 100 viewers, beside a minimal inotify-fed C server
 * (bench/lib/watch-reference.c, compiled with gcc at the start) in the same run. For each: the
 * share of the versions renamed in that reached each viewer, and the latency from the rename to a
 * viewer's receipt of the frame's last byte, p50 / p99.
 *
 *   npm run build && npm run bench:watch                    # both rates, both servers, ~3 min
 *   npm run bench:watch -- --write                          # and replace the section in docs/benchmarks.md
 *   npm run bench:watch -- --cli main=/path/to/other/dist/cli/main.js   # another serverpush build too
 *
 * The camera (bench/lib/watch-writer.ts) and the server are pinned to core 0 (`taskset`), the load
 * process holding the viewers (bench/lib/live-load.ts, raw TCP, `Accept: *\/*`) to core 1.
 *
 * Options: --fps LIST (30,60), --viewers N (100), --servers LIST (serverpush,reference),
 * --cli NAME=PATH (repeatable: another serverpush build's dist/cli/main.js, run as server NAME),
 * --mode file|folder (file: `--watch FEED/current.jpg`; folder: `--watch FEED`), --rounds N (2:
 * each row N times, servers alternating; every run is reported), --warmup S (2), --measure S (10),
 * --grace S (1), --quiet-wait S (20: before each row, wait up to S s for the rest of the machine
 * to use under 25 % of one core; 0 to skip), --feed-dir DIR (where the feed folder is made;
 * default /dev/shm, a tmpfs: on ext4 a rename over an existing file also starts writing the new
 * file's data out (auto_da_alloc), ~1.5 ms here inside the camera's rename(), before any server
 * can see it), --write, --json PATH, --render PATH.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FRAME_SPECS, makeFrames } from './lib/live-frames.ts';
import { machineDescription, sourceRevision, wrap, writeSection } from './lib/report.ts';
import { positive, runBench, warnIfStaleBuild } from './lib/cli.ts';
import { waitForQuiet } from './lib/machine.ts';
import { LOAD_CORE, pin, runWatchRow, SERVER_CORE, type WatchRow, type WatchServer } from './lib/watch-run.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
export const WATCH_SECTION_TITLE = '## Watch at camera rates (issue 10)';
const say = (text: string): void => { process.stderr.write(`${text}\n`); };

interface WatchReportContext {
  command: string;
  revision: string;
  machine: string;
  date: string;
  frames: { meanBytes: number; origin: string; count: number };
  gcc: string;
  feedRoot: string;
  mode: 'file' | 'folder';
  warmupMs: number;
  measureMs: number;
  rows: WatchRow[];
}

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      fps: { type: 'string', default: '30,60' },
      viewers: { type: 'string', default: '100' },
      servers: { type: 'string', default: 'serverpush,reference' },
      cli: { type: 'string', multiple: true, default: [] },
      mode: { type: 'string', default: 'file' },
      rounds: { type: 'string', default: '2' },
      warmup: { type: 'string', default: '2' },
      measure: { type: 'string', default: '10' },
      grace: { type: 'string', default: '1' },
      'quiet-wait': { type: 'string', default: '20' },
      'feed-dir': { type: 'string', default: existsSync('/dev/shm') ? '/dev/shm' : tmpdir() },
      write: { type: 'boolean', default: false },
      json: { type: 'string' },
      render: { type: 'string' },
    },
  });
  if (values.mode !== 'file' && values.mode !== 'folder') throw new Error('--mode must be file or folder');
  const servers = values.servers.split(',').map((s) => s.trim()).filter(Boolean);
  for (const spec of values.cli) {
    const match = /^([\w.-]+)=(.+)$/.exec(spec);
    if (!match) throw new Error(`--cli must be NAME=PATH, got ${JSON.stringify(spec)}`);
    if (!servers.includes(match[1]!)) servers.push(match[1]!);
  }
  return {
    fps: values.fps.split(',').map((s) => positive('fps', s)),
    viewers: positive('viewers', values.viewers, true),
    servers,
    clis: new Map(values.cli.map((spec) => spec.split(/=(.*)/s).slice(0, 2) as [string, string])),
    mode: values.mode as 'file' | 'folder',
    rounds: positive('rounds', values.rounds, true),
    warmupMs: positive('warmup', values.warmup) * 1000,
    measureMs: positive('measure', values.measure) * 1000,
    graceMs: positive('grace', values.grace) * 1000,
    quietWaitMs: Number(values['quiet-wait']) * 1000,
    feedRoot: values['feed-dir'],
    write: values.write,
    json: values.json,
    render: values.render,
  };
}

/** Compiles the reference server into a new temporary folder; returns its path and gcc's version. */
function compileReference(): { binary: string; gcc: string } {
  const binary = join(mkdtempSync(join(tmpdir(), 'serverpush-watch-ref-')), 'watch-reference');
  execFileSync('gcc', ['-O2', '-Wall', '-o', binary, join(root, 'bench/lib/watch-reference.c')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const gcc = execFileSync('gcc', ['-dumpfullversion'], { encoding: 'utf8' }).trim();
  return { binary, gcc: `gcc ${gcc} -O2` };
}

/** The median of the numbers (the lower one of an even count). */
function median(values: number[]): number {
  const sorted = values.filter((v) => !none(v)).sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : sorted[Math.floor((sorted.length - 1) / 2)]!;
}

// A figure that could not be measured is NaN in a run, and null once saved with --json.
const none = (n: number | null): n is null => n === null || Number.isNaN(n);
const f0 = (n: number): string => (none(n) ? '–' : n.toFixed(0));
const f1 = (n: number): string => (none(n) ? '–' : n.toFixed(1));
const ms = (n: number): string => (none(n) ? '–' : n < 10 ? n.toFixed(2) : n.toFixed(1));
const pct = (n: number): string => (none(n) ? '–' : `${(n * 100).toFixed(n >= 0.9995 ? 0 : 1)}`);

function notes(row: WatchRow): string {
  const out: string[] = [];
  if (row.outcome !== 'ok') out.push(`**${row.outcome}**`);
  if (row.streaming < row.viewers) out.push(`${row.streaming}/${row.viewers} got a stream`);
  const errors = Object.entries(row.errors).map(([code, n]) => `${code} ×${n}`);
  if (errors.length > 0) out.push(`errors: ${errors.join(', ')}`);
  if (row.badFrames > 0) out.push(`${row.badFrames} damaged frames`);
  if (row.outOfOrder > 0) out.push(`${row.outOfOrder} repeated or out-of-order frames`);
  if (row.writerMissedSlots > 0) out.push(`camera missed ${row.writerMissedSlots} slots`);
  if (row.serverWarnings.length > 0) out.push(`${row.serverWarnings.length} server warnings`);
  return out.join('; ');
}

function renderTable(rows: readonly WatchRow[]): string {
  const header = '| fps | server | versions renamed (per s) | delivered, worst viewer / mean % | rename → viewer p50 / p99 / max (ms) | server CPU % | camera CPU % | load CPU % | others\' CPU % | notes |';
  const rule = '|---:|---|---:|---:|---:|---:|---:|---:|---:|---|';
  return [header, rule, ...rows.map((r) => `| ${r.fps} | ${r.server} | ${r.renames} (${f1(r.writerFps)}) | ${pct(r.delivered.min)} / ${pct(r.delivered.mean)} | ${ms(r.latencyMs.p50)} / ${ms(r.latencyMs.p99)} / ${ms(r.latencyMs.max)} | ${f0(r.serverCpu)} | ${f0(r.writerCpu)} | ${f0(r.loadCpu)} | ${f0(r.otherCpu)} | ${notes(r)} |`)].join('\n');
}

/** serverpush against the reference, per rate, over all rounds: the medians of the runs. */
function renderComparison(rows: readonly WatchRow[]): string[] {
  const lines: string[] = [];
  for (const fps of [...new Set(rows.map((r) => r.fps))]) {
    const of = (server: string) => rows.filter((r) => r.fps === fps && r.server === server);
    const reference = of('reference');
    for (const server of [...new Set(rows.map((r) => r.server))].filter((s) => s !== 'reference')) {
      const ours = of(server);
      if (ours.length === 0 || reference.length === 0) continue;
      const m = (list: WatchRow[], pick: (r: WatchRow) => number): number => median(list.map(pick));
      const [d, dr] = [m(ours, (r) => r.delivered.mean), m(reference, (r) => r.delivered.mean)];
      const [p50, p50r] = [m(ours, (r) => r.latencyMs.p50), m(reference, (r) => r.latencyMs.p50)];
      const [p99, p99r] = [m(ours, (r) => r.latencyMs.p99), m(reference, (r) => r.latencyMs.p99)];
      const [cpu, cpur] = [m(ours, (r) => r.serverCpu), m(reference, (r) => r.serverCpu)];
      lines.push(`- ${fps} fps, ${server} vs reference (median of ${ours.length} and ${reference.length} runs): delivered ${pct(d)} vs ${pct(dr)} % (×${(d / dr).toFixed(2)}); p50 ${ms(p50)} vs ${ms(p50r)} ms (×${(p50 / p50r).toFixed(1)}); p99 ${ms(p99)} vs ${ms(p99r)} ms (×${(p99 / p99r).toFixed(1)}); server CPU ${f0(cpu)} vs ${f0(cpur)} %${server === 'serverpush' ? `; issue 10's target p50 < 5 ms: ${p50 < 5 ? 'met' : '**missed**'}` : ''}`);
    }
  }
  return lines;
}

function renderSection(c: WatchReportContext): string {
  const first = c.rows[0];
  const builds = [...new Set(c.rows.map((r) => r.server))].filter((name) => name !== 'serverpush' && name !== 'reference');
  const intro = `Issue 10: \`serverpush serve --watch ${c.mode === 'file' ? 'FEED/current.jpg' : 'FEED'}\` (the built CLI) fed by a camera that renames ~20 KB JPEGs over
FEED/current.jpg, ${[...new Set(c.rows.map((r) => r.fps))].join(' and ')} times a second, to ${first?.viewers ?? 100} viewers, beside a
reference in the same run: \`bench/lib/watch-reference.c\` (${c.gcc}), a minimal single-threaded
inotify server (IN_MOVED_TO | IN_CLOSE_WRITE, read by one fd, every client written from one
poll loop, latest frame wins for a busy client), what mjpg-streamer's input_file does. The camera
(\`bench/lib/watch-writer.ts\`, a Node process) writes each frame (${c.frames.count} frames of ${c.frames.origin},
${(c.frames.meanBytes / 1000).toFixed(1)} KB each with the stamp) to \`current.jpg.tmp\` and renames it over current.jpg on a
fixed clock; the stamp in a JPEG comment carries the frame's sequence number and the time
(CLOCK_MONOTONIC) taken right before the rename, written into the file with one pwrite of 16 digits
(from the stamp to the camera's return from rename(): p50 ${f0(median(c.rows.map((r) => r.stampToRenameUs.p50)))} µs, which includes the server taking the
core as soon as the rename wakes it; the feed folder is under ${c.feedRoot}${c.feedRoot === '/dev/shm' ? ', a tmpfs' : ''}). Camera and server are pinned to core ${SERVER_CORE}, the load process
holding the viewers (raw TCP, \`Accept: */*\` like ffmpeg; bench/lib/live-load.ts, as the live
fan-out bench) to core ${LOAD_CORE}. Each row: the viewers connect, ${(c.warmupMs / 1000).toFixed(0)}+ s of warm-up (until every viewer has a frame), then
${(c.measureMs / 1000).toFixed(0)} s measured. *Delivered* is, per viewer, the versions renamed in during the window that
reached it whole, over the versions renamed in; *latency* is from the rename to the arrival of the
frame's last byte at a viewer, over every frame of every viewer. CPU is % of one core over the
window (/proc/PID/stat); *others' CPU* is what the rest of this shared machine used meanwhile, which
makes a row noisier (hence ${c.rows.length > 0 ? 'several rounds per rate, servers in alternating order, and the medians below' : 'the rounds'}).${builds.length > 0 ? ` Also run, with the same command: ${builds.join(', ')} (other serverpush builds, \`--cli NAME=PATH\`).` : ''}`;
  return `${WATCH_SECTION_TITLE}

${wrap(intro)}

- Machine: ${c.machine}
- Source: ${c.revision}
- Command: \`${c.command}\`
- Date: ${c.date}

${renderTable(c.rows)}

${renderComparison(c.rows).join('\n') || '- (no reference rows in this run)'}
`;
}

function report(context: WatchReportContext, write: boolean): void {
  const section = renderSection(context);
  process.stdout.write(`${section}\n`);
  if (write) {
    writeSection(join(root, 'docs/benchmarks.md'), WATCH_SECTION_TITLE, section);
    say('wrote docs/benchmarks.md');
  }
}

async function main(): Promise<void> {
  const options = parse(process.argv.slice(2));
  if (options.render !== undefined) return report(JSON.parse(readFileSync(options.render, 'utf8')) as WatchReportContext, options.write);
  const cli = join(root, 'dist/cli/main.js');
  if (!existsSync(cli)) throw new Error('dist/cli/main.js is missing: run `npm run build` first');
  warnIfStaleBuild(root);
  say(`machine: ${machineDescription()}`);
  // The bench itself (it mostly sleeps) stays off the server's core.
  pin(process.pid, LOAD_CORE);
  const { binary, gcc } = compileReference();
  const set = await makeFrames(FRAME_SPECS['20k']!);
  say(`frames: ${set.files.length} × ${(set.meanBytes / 1000).toFixed(1)} KB (${set.origin}, with the stamp); reference built with ${gcc}`);
  const servers: WatchServer[] = options.servers.map((name) => {
    if (name === 'reference') return { name, kind: 'reference', command: [binary] };
    if (name === 'serverpush') return { name, kind: 'serverpush', command: [process.execPath, cli] };
    const path = options.clis.get(name);
    if (!path) throw new Error(`--servers: unknown server ${JSON.stringify(name)} (give --cli ${name}=PATH)`);
    return { name, kind: 'serverpush', command: [process.execPath, path] };
  });
  const rows: WatchRow[] = [];
  try {
    for (const fps of options.fps) {
      for (let round = 0; round < options.rounds; round++) {
        // Alternate the order, so that neither server always runs first.
        for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
          if (options.quietWaitMs > 0) await waitForQuiet(options.quietWaitMs, 25, (text) => say(`  ${text}`));
          say(`row: ${server.name}, ${fps} fps, ${options.viewers} viewers, round ${round + 1} ...`);
          const row = await runWatchRow({ server, mode: options.mode, fps, viewers: options.viewers, files: set.files, feedRoot: options.feedRoot, warmupMs: options.warmupMs, measureMs: options.measureMs, graceMs: options.graceMs });
          say(`  ${row.outcome}: ${row.renames} versions (${f1(row.writerFps)}/s); delivered worst ${pct(row.delivered.min)} % mean ${pct(row.delivered.mean)} %; latency p50 ${ms(row.latencyMs.p50)} p99 ${ms(row.latencyMs.p99)} max ${ms(row.latencyMs.max)} ms; CPU server ${f0(row.serverCpu)} % camera ${f0(row.writerCpu)} % load ${f0(row.loadCpu)} % others ${f0(row.otherCpu)} %${notes(row) ? `; ${notes(row)}` : ''}`);
          rows.push(row);
        }
      }
    }
  } finally {
    // The compiled reference and the frames are made anew each run.
    rmSync(dirname(binary), { recursive: true, force: true });
    rmSync(set.dir, { recursive: true, force: true });
  }
  const quote = (arg: string) => (/^[\w./:,=@+-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`);
  const args = process.argv.slice(2).filter((arg) => arg !== '--write');
  const context: WatchReportContext = {
    command: `npm run build && npm run bench:watch${args.length > 0 ? ` --${args.map((arg) => ` ${quote(arg)}`).join('')}` : ''}`,
    revision: sourceRevision(root),
    machine: machineDescription(),
    date: new Date().toISOString().slice(0, 10),
    frames: { meanBytes: set.meanBytes, origin: set.origin, count: set.files.length },
    gcc,
    feedRoot: options.feedRoot,
    mode: options.mode,
    warmupMs: options.warmupMs,
    measureMs: options.measureMs,
    rows,
  };
  if (options.json !== undefined) {
    writeFileSync(options.json, JSON.stringify(context));
    say(`wrote ${options.json}`);
  }
  report(context, options.write);
}

runBench(main);
