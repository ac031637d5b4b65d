/**
 * The stress rows of the live fan-out bench (issue 10), `npm run bench:live -- --stress`:
 *
 * - 1,000 viewers of a 30 fps stream of ~20 KB frames; 200 of them stop reading when the window
 *   starts (a phone entering a tunnel), and the window is the first 10 s after that: the seconds
 *   in which the kernel buffers toward them fill, before any server drops them;
 * - 10,000 viewers of a 3 fps stream of ~20 KB frames, all reading.
 *
 * Each server is a process of its own fed through a pipe by the same frame generator
 * (frame-generator.ts): serverpush's CLI (`serve --exec GENERATOR`) and a minimal C server
 * (bench/reference-server.c, built with gcc for the run). The server and its generator are pinned
 * to one CPU, the load processes to the other (taskset), and each row is run in rounds, the servers
 * taking turns, so that on a shared machine each serverpush figure has a reference figure measured
 * minutes apart; the ratios are per round, and their median is reported.
 */
import type { RowOptions, RowResult } from './live-run.ts';
import { wrap } from './report.ts';

export const STRESS_SECTION_TITLE = '## Live fan-out under stress: stalled viewers, 10,000 viewers (issue 10)';

export interface StressRow {
  key: string;
  label: string;
  viewers: number;
  size: string;
  fps: number;
  stalledShare: number;
  measureMs: number;
  rampMs: number;
  maxWarmupMs: number;
}

export const STRESS_ROWS: StressRow[] = [
  { key: 'stall', label: '1,000 viewers × 20 KB × 30 fps, 200 stop reading at the window start', viewers: 1000, size: '20k', fps: 30, stalledShare: 0.2, measureMs: 10_000, rampMs: 1000, maxWarmupMs: 20_000 },
  { key: '10k', label: '10,000 viewers × 20 KB × 3 fps, all reading', viewers: 10_000, size: '20k', fps: 3, stalledShare: 0, measureMs: 10_000, rampMs: 4000, maxWarmupMs: 40_000 },
];

/** The servers of the stress rows: a harness script and its arguments. */
export const STRESS_SERVERS: Record<string, { script: string; args: string[]; about: string }> = {
  serverpush: { script: 'bench/lib/live-server-serverpush-exec.ts', args: ['--arg', 'stall-timeout=30'], about: 'serverpush serve --exec GENERATOR (defaults: --stall-timeout 30, --max-unsent-bytes 131072)' },
  'serverpush-unbounded': { script: 'bench/lib/live-server-serverpush-exec.ts', args: ['--arg', 'stall-timeout=30', '--arg', 'unsent=0'], about: 'the same with --max-unsent-bytes 0 (the kernel\'s default buffers)' },
  reference: { script: 'bench/lib/live-server-reference.ts', args: [], about: 'bench/reference-server.c, default kernel buffers' },
  'reference-lowat': { script: 'bench/lib/live-server-reference.ts', args: ['--arg', 'notsent-lowat=131072'], about: 'bench/reference-server.c with TCP_NOTSENT_LOWAT 131072 on each socket' },
};

export interface StressContext {
  command: string;
  revision: string;
  machine: string;
  date: string;
  serverCpu: string;
  loadCpu: string;
  /** Nice value of the servers and the load processes, if set. */
  nice?: number;
  rounds: number;
  servers: string[];
  frames: { meanBytes: number; origin: string };
  /** Every run, in the order run: `round` counts from 1. */
  runs: Array<{ row: string; round: number; result: RowResult }>;
  wallS: number;
}

/** RowOptions of one stress run (without the frame files and the server). */
export function stressOptions(row: StressRow, server: string, files: string[], meanFrameBytes: number, serverCpu: string, loadCpu: string, procs: number, nice?: number): RowOptions {
  const spec = STRESS_SERVERS[server]!;
  return {
    server,
    script: spec.script,
    viewers: row.viewers,
    size: row.size,
    files,
    meanFrameBytes,
    stalledShare: row.stalledShare,
    fps: row.fps,
    rampMs: row.rampMs,
    warmupMs: Math.max(3000, row.rampMs + 2000),
    maxWarmupMs: row.maxWarmupMs,
    measureMs: row.measureMs,
    graceMs: 1000,
    procs,
    rssCapMiB: 2048,
    serverNodeArgs: [],
    harnessArgs: ['--cpu', serverCpu, ...spec.args],
    loadCpus: loadCpu,
    stallAtWindow: true,
    ...(nice !== undefined ? { nice } : {}),
  };
}

const median = (values: number[]): number => {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const ms = (n: number): string => (Number.isNaN(n) ? '–' : n < 10 ? n.toFixed(1) : n.toFixed(0));
const x2 = (n: number): string => (Number.isNaN(n) ? '–' : `${n.toFixed(2)}×`);
const pct = (n: number): string => (Number.isNaN(n) ? '–' : `${(n * 100).toFixed(n >= 0.9995 ? 0 : 1)}`);

function notes(r: RowResult): string {
  const out: string[] = [];
  if (r.outcome !== 'ok') out.push(`**${r.outcome}**`);
  const total = r.readers + r.stalled;
  if (r.streaming < total) out.push(`${r.streaming}/${total} got a stream`);
  const errors = Object.entries(r.errors).map(([code, n]) => `${code} ×${n}`);
  if (errors.length > 0) out.push(`errors: ${errors.join(', ')}`);
  if (r.readersClosedEarly > 0) out.push(`${r.readersClosedEarly} readers cut off`);
  if (r.missedSlots > 0) out.push(`generator blocked past ${r.missedSlots} slots`);
  if (r.badFrames > 0) out.push(`${r.badFrames} damaged frames`);
  if (r.outOfOrder > 0) out.push(`${r.outOfOrder} repeated frames`);
  if (r.loadCpuMaxProc >= 90) out.push(`load process at ${r.loadCpuMaxProc.toFixed(0)} %`);
  return out.join('; ');
}

/** One line per run. */
export function renderStressRuns(runs: StressContext['runs']): string {
  const header = '| row | round | server | frames got, min / mean % | latency p50 / p99 / max (ms) | generator write p99 (ms) | server CPU % | server RSS peak (MiB) | per stalled viewer: kernel send queue mean / max (KiB) | stalled dropped | others\' CPU % | notes |';
  const rule = '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|';
  const lines = runs.map(({ row, round, result: r }) => {
    const skmem = r.stalledSkmem ? `${r.stalledSkmem.meanKiB.toFixed(0)} / ${r.stalledSkmem.maxKiB.toFixed(0)} (${r.stalledSkmem.count})` : r.stalled > 0 ? 'no ss' : '–';
    return `| ${row} | ${round} | ${r.options.server} | ${pct(r.share.min)} / ${pct(r.share.mean)} | ${ms(r.latencyMs.p50)} / ${ms(r.latencyMs.p99)} / ${ms(r.latencyMs.max)} | ${ms(r.pushCallMs.p99)} | ${r.serverCpu.mean.toFixed(0)} | ${r.rssMiB.peak.toFixed(0)} | ${skmem} | ${r.stalled > 0 ? String(r.stalledDropped ?? 0) : '–'} | ${r.otherCpu.toFixed(0)} | ${notes(r)} |`;
  });
  return [header, rule, ...lines].join('\n');
}

/** Per row: each server's median p50/p99, and the median over rounds of serverpush ÷ reference. */
export function renderStressSummary(context: StressContext): string[] {
  const lines: string[] = [];
  for (const row of STRESS_ROWS) {
    const runs = context.runs.filter((run) => run.row === row.key);
    if (runs.length === 0) continue;
    lines.push(`**${row.label}** (window ${row.measureMs / 1000} s; median over ${context.rounds} round${context.rounds === 1 ? '' : 's'}):`);
    lines.push('');
    for (const server of context.servers) {
      const mine = runs.filter((run) => run.result.options.server === server).map((run) => run.result);
      if (mine.length === 0) continue;
      const skmem = mine.map((r) => r.stalledSkmem?.maxKiB ?? Number.NaN);
      lines.push(`- ${server}: latency p50 ${ms(median(mine.map((r) => r.latencyMs.p50)))} ms, p99 ${ms(median(mine.map((r) => r.latencyMs.p99)))} ms; frames got by the worst reader ${pct(Math.min(...mine.map((r) => r.share.min)))} % (lowest over the rounds); RSS peak ${Math.max(...mine.map((r) => r.rssMiB.peak)).toFixed(0)} MiB${row.stalledShare > 0 ? `; kernel send queue per stalled viewer, max ${skmem.some((v) => !Number.isNaN(v)) ? Math.max(...skmem.filter((v) => !Number.isNaN(v))).toFixed(0) : '–'} KiB` : ''}`);
    }
    for (const server of context.servers.filter((s) => s.startsWith('serverpush'))) {
      for (const reference of context.servers.filter((s) => s.startsWith('reference'))) {
        const p50: number[] = [];
        const p99: number[] = [];
        for (let round = 1; round <= context.rounds; round++) {
          const ours = runs.find((run) => run.round === round && run.result.options.server === server)?.result;
          const ref = runs.find((run) => run.round === round && run.result.options.server === reference)?.result;
          if (!ours || !ref) continue;
          p50.push(ours.latencyMs.p50 / ref.latencyMs.p50);
          p99.push(ours.latencyMs.p99 / ref.latencyMs.p99);
        }
        if (p99.length === 0) continue;
        lines.push(`- ${server} ÷ ${reference}, same round: p50 ${x2(median(p50))}, p99 ${x2(median(p99))} (p99 per round: ${p99.map(x2).join(', ')})`);
      }
    }
    lines.push('');
  }
  return lines;
}

export function renderStressSection(context: StressContext): string {
  const intro = `\`npm run bench:live -- --stress\` (bench/lib/live-stress.ts): the stress that issue 10 is about,
measured while it happens. Rows: (1) 1,000 viewers of a ${STRESS_ROWS[0]!.fps} fps stream of ~20 KB frames, 200 of which read like
the others through the warm-up and then stop reading (they keep their connection and read nothing
more, as a phone entering a tunnel); the window is the first ${STRESS_ROWS[0]!.measureMs / 1000} s after they stopped, while the
kernel's buffers toward them fill and before any server drops them (serverpush's stall timeout is
30 s); the figures are the 800 readers'. (2) 10,000 viewers of a 3 fps stream of the same frames,
all reading, ${STRESS_ROWS[1]!.measureMs / 1000} s after every viewer had its stream.

Every server is a process of its own fed by the same frame generator (bench/lib/frame-generator.ts:
${context.frames.origin}, ${(context.frames.meanBytes / 1000).toFixed(1)} KB on average with the stamp, written as concatenated JPEGs
to its standard output on a fixed clock with blocking writes, as \`ffmpeg -f mjpeg -\`): serverpush
through \`serverpush serve --exec GENERATOR\` (the built CLI), the reference through a shell pipe
(\`GENERATOR | reference-server\`). A frame's latency runs from the generator's write to the moment a
viewer had its last byte, so time spent in the pipe counts. The server and its generator run on CPU
${context.serverCpu}, the load processes (raw TCP viewers, as in the rows above) on CPU ${context.loadCpu} (taskset)${context.nice !== undefined ? `, all of them at nice ${context.nice} so that other work on this shared machine does not decide the comparison` : ''}.

The reference is bench/reference-server.c, compiled with gcc -O2 for the run: one thread, epoll, non-blocking
sockets, each frame encoded once and written with one send() per viewer; a viewer whose socket took
only part of a frame is busy and skips frames until it has taken the rest, then gets the newest
frame (serverpush's policy); stdin is read until EAGAIN and only the newest whole frame is sent.
Servers: ${context.servers.map((s) => `*${s}*: ${STRESS_SERVERS[s]?.about ?? s}`).join('; ')}.
Each row is run ${context.rounds} times, the servers taking turns; ratios are serverpush ÷ reference within
one round, then the median over the rounds. *Kernel send queue* is skmem \`w\` of the server's socket
to each stalled viewer (\`ss -tm\`) at the end of the window. *Generator write p99*: how long the
generator's blocking write took (a full pipe means the server read late). *Others' CPU* is what the
rest of the machine used during the window, in % of one core: on a machine shared with other work
a round in which it ran high can show any server's p99 several times higher than in the next
round, which is why each figure is a median of rounds and each ratio is taken within a round.`;
  return `${STRESS_SECTION_TITLE}

${wrap(intro)}

- Machine: ${context.machine}
- Source: ${context.revision}
- Command: \`${context.command}\`
- Date: ${context.date}; the run took ${(context.wallS / 60).toFixed(1)} min

${renderStressSummary(context).join('\n')}
${renderStressRuns(context.runs)}
`;
}
