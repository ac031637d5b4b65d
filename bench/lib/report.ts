import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, release, totalmem, type as osType } from 'node:os';
import { dirname } from 'node:path';
import type { RunResult } from './run.ts';
import type { ClientsSummary, Distribution } from './stats.ts';
import type { Fixture } from './fixtures.ts';

export const SECTION_TITLE = '## Slideshow: 1,000 clients (issue 2)';

export function machineDescription(): string {
  const cores = cpus();
  const gib = (totalmem() / 2 ** 30).toFixed(1);
  return `${cores[0]?.model.trim() ?? 'unknown CPU'}, ${cores.length} cores, ${gib} GiB RAM, ${osType()} ${release()}, Node ${process.version}`;
}

export function sourceRevision(root: string): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: root, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${head} + uncommitted changes under src/` : head;
  } catch {
    return 'unknown';
  }
}

const ms = (n: number): string => (Number.isNaN(n) ? '–' : n < 10 && n > -10 ? n.toFixed(1) : n.toFixed(0));
const mib = (kib: number): string => (kib / 1024).toFixed(1);
const pct = (part: number, whole: number): string => (whole === 0 ? '–' : `${((part / whole) * 100).toFixed(part === whole ? 0 : 2)} %`);
const dist = (d: Distribution): string => `${ms(d.p50)} / ${ms(d.p99)} / ${ms(d.max)}`;
const num = (value: unknown): string => (typeof value === 'number' ? value.toLocaleString('en-US') : '–');

/** The `folder` counters of /status: at the top (`folder`) or per stream (`streams.NAME.folder`). */
function folderCounters(status: Record<string, unknown>): Record<string, unknown> | undefined {
  const top = status['folder'];
  if (top && typeof top === 'object') return top as Record<string, unknown>;
  const streams = status['streams'];
  if (!streams || typeof streams !== 'object') return undefined;
  for (const stream of Object.values(streams as Record<string, unknown>)) {
    const folder = (stream as Record<string, unknown> | null)?.['folder'];
    if (folder && typeof folder === 'object') return folder as Record<string, unknown>;
  }
  return undefined;
}

function errors(summary: ClientsSummary): string {
  const entries = Object.entries(summary.errors);
  return entries.length === 0 ? 'none' : entries.map(([code, n]) => `${code} ×${n}`).join(', ');
}

function label(run: RunResult): string {
  const { intervalMs, stalledShare } = run.options;
  return `${intervalMs / 1000} s, ${stalledShare > 0 ? `${Math.round(stalledShare * 100)} % stalled` : 'all read'}`;
}

/** The figures of every run, one column per run. */
export function renderTable(runs: readonly RunResult[]): string {
  const onTime = runs[0]?.options.onTimeMs ?? 0;
  const rows: Array<[string, (run: RunResult) => string]> = [
    ['clients: reading + stalled', (r) => `${r.readers.clients} + ${r.stalled?.clients ?? 0}`],
    ['got a 200 multipart stream', (r) => String(r.readers.streaming + (r.stalled?.streaming ?? 0))],
    ['client errors', (r) => errors(r.readers)],
    ['connect → first part, p50 / p99 / max (ms)', (r) => dist(r.readers.firstPartMs)],
    ['parts received / expected (readers)', (r) => `${num(r.readers.receivedParts)} / ${num(r.readers.expectedParts)} (${pct(r.readers.receivedParts, r.readers.expectedParts)})`],
    ['lateness vs schedule, p50 / p99 / max (ms)', (r) => dist(r.readers.latenessMs)],
    ['… after the ramp only, p50 / p99 / max (ms)', (r) => dist(r.readers.steadyLatenessMs)],
    ['gap between parts − interval, p50 / p99 / max (ms)', (r) => dist(r.readers.gapMs)],
    ['earliest part vs schedule (ms)', (r) => ms(r.readers.latenessMs.min)],
    [`parts on time (≤ ${onTime} ms late)`, (r) => pct(r.readers.onTimeParts, r.readers.expectedParts)],
    ['worst client: parts missing or late', (r) => String(r.readers.worstClientMisses)],
    ['readers cut off by the server', (r) => String(r.readers.closedEarly)],
    ['stalled clients: KiB taken each (mean), cut off', (r) => (r.stalled ? `${(r.stalled.bytes / r.stalled.clients / 1024).toFixed(0)}, ${r.stalled.closedEarly}` : '–')],
    ['server RSS start / peak / end (MiB)', (r) => `${mib(r.rssKiB.start)} / ${mib(r.rssKiB.peak)} / ${mib(r.rssKiB.end)}`],
    ['server RSS 2 s after the clients left (MiB)', (r) => mib(r.rssKiB.afterClientsLeft)],
    ['server CPU, mean / peak 0.5 s (% of one core)', (r) => `${r.serverCpu.mean.toFixed(0)} / ${r.serverCpu.peak.toFixed(0)}`],
    ['load generator CPU, mean (% of one core)', (r) => r.loadCpu.toFixed(0)],
    ['whole machine CPU busy (% of all cores)', (r) => r.machineCpu.toFixed(0)],
    ['other processes\' CPU (% of one core); load average before', (r) => `${r.otherCpu.toFixed(0)}; ${r.loadAverage.toFixed(2)}`],
    ['GET /status round trip every 0.25 s, p50 / p99 / max (ms)', (r) => dist(r.statusRoundTripMs)],
    ['load generator event-loop delay p99 / max (ms)', (r) => `${ms(r.loadLoopDelayMs.p99)} / ${ms(r.loadLoopDelayMs.max)}`],
    ['/status partsSent', (r) => num(r.status['partsSent'])],
    ['/status bytesSent (MiB)', (r) => (typeof r.status['bytesSent'] === 'number' ? mib(r.status['bytesSent'] / 1024) : '–')],
    ['/status droppedClients', (r) => num(r.status['droppedClients'])],
    ['/status folder.fileReads / listings', (r) => {
      const folder = folderCounters(r.status);
      return `${num(folder?.['fileReads'])} / ${num(folder?.['listings'])}`;
    }],
    ['/status clients, 2 s after they left', (r) => num(r.statusAfter['clients'])],
    ['kernel queues at the end: server send / client receive (MiB)', (r) => `${mib(r.kernel.serverSendQueue / 1024)} / ${mib(r.kernel.clientReceiveQueue / 1024)}`],
    ['server warnings logged', (r) => String(r.serverWarnings.length)],
  ];
  const header = `| | ${runs.map(label).join(' | ')} |\n|---|${runs.map(() => '---:').join('|')}|`;
  return [header, ...rows.map(([name, cell]) => `| ${name} | ${runs.map(cell).join(' | ')} |`)].join('\n');
}

/** Everything a section is made of; also what `--json` saves and `--render` reads back. */
export interface ReportContext {
  command: string;
  revision: string;
  machine: string;
  /** ISO date of the run. */
  date: string;
  fixture: Fixture;
  runs: readonly RunResult[];
}

/** Wraps paragraphs (separated by blank lines) at `width` columns. */
export function wrap(text: string, width = 100): string {
  return text.split('\n\n').map((paragraph) => {
    const lines: string[] = [];
    let line = '';
    for (const word of paragraph.split(/\s+/).filter(Boolean)) {
      if (line && line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else {
        line = line ? `${line} ${word}` : word;
      }
    }
    if (line) lines.push(line);
    return lines.join('\n');
  }).join('\n\n');
}

export function renderSection(context: ReportContext): string {
  const first = context.runs[0]?.options;
  const seconds = (ms: number | undefined, digits: number) => ((ms ?? 0) / 1000).toFixed(digits);
  const intro = `Issue 2, point 4: 1,000 simultaneous \`/stream\` clients on a 2-core machine, each getting
every part on time, with the server's memory bounded. \`bench/slideshow-clients.ts\` starts the
built CLI (\`serverpush serve DIR --loop\`) as a child process on a folder of ${context.fixture.files} JPEGs
(${context.fixture.origin}, ${(context.fixture.meanBytes / 1024).toFixed(1)} KiB each on average), opens raw TCP
connections to it on 127.0.0.1 from ${first?.procs ?? 1} separate load process(es) over ${seconds(first?.rampMs, 1)} s, and then
runs ${seconds(first?.durationMs, 0)} s of steady state. Each client counts the delimiters after the part bodies as
they arrive; part *k* of a client is due at its first part's arrival + *k* × interval. In the
*stalled* runs that share of the clients reads the response head and then never reads again.
Server RSS and CPU come from \`/proc/PID/status\` and \`/proc/PID/stat\` every 0.5 s; the server's
stall timeout is ${seconds(first?.stallTimeoutMs, 0)} s.

How to read it: when the server falls behind by more than an interval it restarts its clock
rather than sending the missed parts in a burst, so one stall shows as lasting *lateness* while
the *gap* row is back to normal after it. *Other processes' CPU* is what the rest of the machine
used during the run; the figures mean little when it is large. A stalled client's bytes wait in
the kernel's socket buffers (the *kernel queues* row), not in the server's RSS: the server sees
such a socket as congested only once those buffers are full (they grow up to the maximum of
\`net.ipv4.tcp_wmem\`), which can take minutes at a slideshow's rate, and only then does its stall
timeout start.`;
  return `${SECTION_TITLE}

${wrap(intro)}

- Machine: ${context.machine}
- Source: ${context.revision}
- Command: \`${context.command}\`
- Date: ${context.date}

${renderTable(context.runs)}
`;
}

/**
 * Writes or replaces the section titled `title` (its `## ` heading line) in `path`, leaving every
 * other section as it is; a new section goes at the end. Every benchmark writes its own section of
 * docs/benchmarks.md this way. The file is read right before it is written.
 */
export function writeSection(path: string, title: string, section: string): void {
  const intro = '# Benchmarks\n\nFigures measured by the scripts under `bench/`. Each section is written by its script with `--write`;\nrerun the script to refresh it.\n';
  const text = existsSync(path) ? readFileSync(path, 'utf8') : `${intro}\n`;
  const body = section.replace(/\n*$/, '\n');
  const start = text.indexOf(`${title}\n`);
  let updated: string;
  if (start === -1) {
    updated = `${text.replace(/\n*$/, '\n')}\n${body}`;
  } else {
    const next = text.indexOf('\n## ', start + title.length);
    updated = text.slice(0, start) + body + (next === -1 ? '' : `\n${text.slice(next + 1)}`);
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, updated);
}
