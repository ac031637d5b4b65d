/**
 * Benchmark for issue 4: one live stream (30 fps of ~20 KB or ~150 KB JPEGs) fanned out to 1, 100
 * and 1,000 viewers, all reading and with 20 % never reading, for serverpush and the npm peers
 * mjpeg-server and mjpeg-proxy on the same frames. Frames delivered per second per viewer,
 * latency from push to receipt (p50/p99), server CPU and RSS.
 *
 *   npm run build && npm run bench:live                     # every row, ~15 min
 *   npm run bench:live -- --write                           # and replace the section in docs/benchmarks.md
 *   npm run bench:live -- --quick --servers serverpush --viewers 1000 --sizes 20k
 *   npm run bench:live -- --profile --write                 # and a profiled run of serverpush at 1,000 × 20 KB
 *
 * Each server runs in its own child process (bench/lib/live-server-*.ts) that makes and pushes
 * the frames itself; the viewers are raw TCP connections from separate load processes
 * (bench/lib/live-load.ts); everything is on 127.0.0.1 and every child is killed on every way out.
 * The bench needs ffmpeg (to make the JPEGs) and about 2,100 open files per 1,000 viewers
 * (`ulimit -n`).
 *
 * Options: --servers LIST (serverpush,mjpeg-server,mjpeg-proxy), --viewers LIST (1,100,1000),
 * --sizes LIST (20k,150k), --stalled both|readers|stalled (both), --stalled-share F (0.2),
 * --fps N (30), --warmup S (3), --measure S (8), --grace S (1), --ramp S (1), --procs N load
 * processes (2), --rss-cap MiB (2048: a server above it is killed, and the row says so),
 * --quiet-wait S (20: before each row, wait up to S s for the rest of the machine to use under
 * 25 % of one core; 0 to skip), --quick (warm-up 1.5 s, measure 3 s, no quiet wait),
 * --server-node-arg=ARG (repeatable; a Node option for the server children),
 * --profile (after the table, one more run of serverpush at the most viewers and the first size,
 * all reading, under --cpu-prof: where its time went, in the report), --profile-dir DIR (where
 * the .cpuprofile files go; a new temporary folder by default), --retries N (1) and --noisy-cpu P
 * (40): a row during which other processes used more than P % of one core is run again, up to N
 * more times, and the quietest run is kept; --max-warmup S (15): the warm-up lasts until every
 * viewer has its stream, up to S s; --harness NAME=PATH (repeatable: one more server, from a
 * harness script like bench/lib/live-server-serverpush.ts, e.g. a patched build),
 * --write, --json PATH (save the figures), --render PATH (print or --write a saved run).
 *
 * Stress rows (issue 10; bench/lib/live-stress.ts), instead of the above:
 *   npm run build && npm run bench:live -- --stress [--write]
 * Options: --rounds N (3), --stress-servers LIST (serverpush,reference), --stress-rows LIST
 * (stall,10k), --server-cpu N (0) and --load-cpu N (1): taskset CPUs of the server with its
 * frame generator, and of the load processes; --nice N (none): renice them all (e.g. -10, as
 * root, on a machine shared with other work). Needs gcc and taskset, and for the 10k row
 * `ulimit -n` above 11,000.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FRAME_SPECS, makeFrames, type FrameSet } from './lib/live-frames.ts';
import { busiestOthers, processTimes, runRow, SERVERS, type RowResult } from './lib/live-run.ts';
import { LIVE_SECTION_TITLE, renderSection, type LiveReportContext } from './lib/live-report.ts';
import { machineDescription, sourceRevision, writeSection } from './lib/report.ts';
import { children } from './lib/server-process.ts';
import { positive, runBench, warnIfStaleBuild } from './lib/cli.ts';
import { waitForQuiet } from './lib/machine.ts';
import { summarizeProfile } from './lib/cpu-profile.ts';
import { renderStressSection, STRESS_ROWS, STRESS_SECTION_TITLE, STRESS_SERVERS, stressOptions, type StressContext } from './lib/live-stress.ts';

const root = fileURLToPath(new URL('../', import.meta.url));

function list(name: string, text: string): string[] {
  const items = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new Error(`--${name} is empty`);
  return items;
}

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      servers: { type: 'string', default: SERVERS.join(',') },
      viewers: { type: 'string', default: '1,100,1000' },
      sizes: { type: 'string', default: '20k,150k' },
      stalled: { type: 'string', default: 'both' },
      'stalled-share': { type: 'string', default: '0.2' },
      fps: { type: 'string', default: '30' },
      warmup: { type: 'string' },
      measure: { type: 'string' },
      'max-warmup': { type: 'string', default: '15' },
      grace: { type: 'string', default: '1' },
      ramp: { type: 'string', default: '1' },
      procs: { type: 'string', default: '2' },
      'rss-cap': { type: 'string', default: '2048' },
      'quiet-wait': { type: 'string' },
      quick: { type: 'boolean', default: false },
      'server-node-arg': { type: 'string', multiple: true, default: [] },
      harness: { type: 'string', multiple: true, default: [] },
      retries: { type: 'string', default: '1' },
      'noisy-cpu': { type: 'string', default: '40' },
      profile: { type: 'boolean', default: false },
      'profile-dir': { type: 'string' },
      write: { type: 'boolean', default: false },
      json: { type: 'string' },
      render: { type: 'string' },
      stress: { type: 'boolean', default: false },
      rounds: { type: 'string', default: '3' },
      'stress-servers': { type: 'string', default: 'serverpush,reference' },
      'stress-rows': { type: 'string', default: STRESS_ROWS.map((row) => row.key).join(',') },
      'server-cpu': { type: 'string', default: '0' },
      'load-cpu': { type: 'string', default: '1' },
      nice: { type: 'string' },
    },
  });
  const stressServers = list('stress-servers', values['stress-servers']).map((s) => {
    if (!STRESS_SERVERS[s]) throw new Error(`--stress-servers: unknown server ${JSON.stringify(s)}; known: ${Object.keys(STRESS_SERVERS).join(', ')}`);
    return s;
  });
  const stressRows = list('stress-rows', values['stress-rows']).map((key) => {
    const row = STRESS_ROWS.find((r) => r.key === key);
    if (!row) throw new Error(`--stress-rows: unknown row ${JSON.stringify(key)}; known: ${STRESS_ROWS.map((r) => r.key).join(', ')}`);
    return row;
  });
  const harnesses = new Map<string, string>();
  for (const spec of values.harness) {
    const match = /^([\w.-]+)=(.+)$/.exec(spec);
    if (!match) throw new Error(`--harness must be NAME=PATH, got ${JSON.stringify(spec)}`);
    harnesses.set(match[1]!, match[2]!);
  }
  const servers: string[] = list('servers', values.servers).map((s) => {
    if (!(SERVERS as readonly string[]).includes(s) && !harnesses.has(s)) throw new Error(`--servers: unknown server ${JSON.stringify(s)}; known: ${[...SERVERS, ...harnesses.keys()].join(', ')}`);
    return s;
  });
  // A --harness not named in --servers runs after the others.
  for (const name of harnesses.keys()) if (!servers.includes(name)) servers.push(name);
  const viewers = list('viewers', values.viewers).map((s) => {
    const n = positive('viewers', s);
    if (!Number.isInteger(n)) throw new Error('--viewers must be integers');
    return n;
  });
  const sizes = list('sizes', values.sizes).map((s) => {
    if (!FRAME_SPECS[s]) throw new Error(`--sizes: unknown size ${JSON.stringify(s)}; known: ${Object.keys(FRAME_SPECS).join(', ')}`);
    return s;
  });
  const share = Number(values['stalled-share']);
  if (!(share > 0 && share < 1)) throw new Error('--stalled-share must be between 0 and 1');
  const stalled = values.stalled;
  if (stalled !== 'both' && stalled !== 'readers' && stalled !== 'stalled') throw new Error('--stalled must be both, readers or stalled');
  const shares = stalled === 'readers' ? [0] : stalled === 'stalled' ? [share] : [0, share];
  const quick = values.quick;
  return {
    servers,
    viewers,
    sizes,
    shares,
    fps: positive('fps', values.fps),
    warmupMs: positive('warmup', values.warmup ?? (quick ? '1.5' : '3')) * 1000,
    maxWarmupMs: positive('max-warmup', values['max-warmup']) * 1000,
    measureMs: positive('measure', values.measure ?? (quick ? '3' : '8')) * 1000,
    graceMs: positive('grace', values.grace) * 1000,
    rampMs: positive('ramp', values.ramp) * 1000,
    procs: positive('procs', values.procs),
    rssCapMiB: positive('rss-cap', values['rss-cap']),
    quietWaitMs: Number(values['quiet-wait'] ?? (quick ? '0' : '20')) * 1000,
    serverNodeArgs: values['server-node-arg'],
    harnesses,
    retries: Math.max(0, Math.floor(Number(values.retries))),
    noisyCpu: positive('noisy-cpu', values['noisy-cpu']),
    profile: values.profile,
    profileDir: values['profile-dir'],
    write: values.write,
    json: values.json,
    render: values.render,
    stress: values.stress,
    rounds: positive('rounds', values.rounds, true),
    stressServers,
    stressRows,
    serverCpu: values['server-cpu'],
    loadCpu: values['load-cpu'],
    nice: values.nice === undefined ? undefined : Number(values.nice),
  };
}

function peerVersion(name: string): string {
  try {
    const pkg = JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
    return `${name} ${pkg.version}`;
  } catch {
    return name;
  }
}

const say = (text: string): void => { process.stderr.write(`${text}\n`); };

/**
 * ms to allocate and write 1 GiB in a new process. In a VM whose host takes back the memory the
 * guest frees, the first touch is slow (host page faults); the stalled rows make the kernel
 * allocate hundreds of MiB of socket buffers in the server's system calls, so they pay it.
 */
function touchGiB(): number {
  const run = spawnSync(process.execPath, ['-e', 'const t = performance.now(); Buffer.allocUnsafeSlow(2 ** 30).fill(1); process.stdout.write(String(performance.now() - t));'], { encoding: 'utf8', timeout: 60_000 });
  return Number(run.stdout);
}

/** Where serverpush's time went, from the .cpuprofile files in `dir`. */
function profileLines(dir: string, since: number, windowUs: { from: number; to: number }): string[] {
  const files = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile')).map((name) => join(dir, name)).filter((file) => statSync(file).mtimeMs >= since);
  const lines: string[] = [];
  for (const file of files) {
    const summary = summarizeProfile(file, windowUs.from, windowUs.to);
    // tsx's module loader thread writes a profile too; it idles through the run.
    if (summary.busyMs < 0.05 * summary.wallMs) continue;
    const pct = (ms: number): string => `${((ms / summary.wallMs) * 100).toFixed(1)} %`;
    lines.push(`Profile ${file}, the measured window only: ${(summary.wallMs / 1000).toFixed(1)} s of wall time, ${pct(summary.busyMs)} of it busy (% of one core).`);
    lines.push('');
    lines.push('| function | self | total |');
    lines.push('|---|---:|---:|');
    const top = [...summary.functions].sort((a, b) => b.selfMs - a.selfMs).slice(0, 25);
    for (const fn of top) lines.push(`| ${fn.name.replaceAll('|', '\\|')} | ${pct(fn.selfMs)} | ${pct(fn.totalMs)} |`);
    lines.push('');
    lines.push('Highest inclusive (total) time:');
    lines.push('');
    lines.push('| function | total | self |');
    lines.push('|---|---:|---:|');
    const inclusive = [...summary.functions].filter((fn) => !/^\((root|idle|program)\)/.test(fn.name)).sort((a, b) => b.totalMs - a.totalMs).slice(0, 25);
    for (const fn of inclusive) lines.push(`| ${fn.name.replaceAll('|', '\\|')} | ${pct(fn.totalMs)} | ${pct(fn.selfMs)} |`);
    lines.push('');
  }
  return lines;
}

async function main(): Promise<void> {
  const options = parse(process.argv.slice(2));
  if (options.render !== undefined) {
    const saved = JSON.parse(readFileSync(options.render, 'utf8')) as LiveReportContext | StressContext;
    if ('rounds' in saved) return writeStress(saved, options.write);
    return report(saved, options.write);
  }
  if (!existsSync(join(root, 'dist/index.js'))) throw new Error('dist/index.js is missing: run `npm run build` first');
  warnIfStaleBuild(root);
  if (options.stress) return stress(options);
  const began = performance.now();
  say(`machine: ${machineDescription()}`);
  const touch = [touchGiB(), touchGiB()];
  say(`writing 1 GiB of newly allocated memory: ${touch.map((ms) => `${ms.toFixed(0)} ms`).join(', then ')}`);
  const frameSets: FrameSet[] = [];
  for (const size of options.sizes) frameSets.push(await makeFrames(FRAME_SPECS[size]!));
  for (const set of frameSets) say(`frames ${set.label}: ${set.files.length} × ${(set.meanBytes / 1000).toFixed(1)} KB on average (${set.origin}, with the stamp)`);
  const rows: RowResult[] = [];
  const before = processTimes();
  const ours = new Set<number>([process.pid]);
  let profile: string[] | undefined;
  const run = async (server: string, count: number, set: FrameSet, share: number, nodeArgs: string[], retries: number): Promise<RowResult> => {
    const label = `${server}, ${count} viewers, ${set.label}, ${share > 0 ? `${share * 100} % stalled` : 'all reading'}${nodeArgs.length > options.serverNodeArgs.length ? ' (profiled)' : ''}`;
    const script = options.harnesses.get(server);
    let row: RowResult | undefined;
    // On a shared machine: a row during which other work used more than --noisy-cpu % of one
    // core is run again (up to --retries times); the quietest attempt is kept.
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (options.quietWaitMs > 0) await waitForQuiet(options.quietWaitMs, 25, (text) => say(`  ${text}`));
      say(`row: ${label}${attempt > 0 ? ` (again: other work used ${row!.otherCpu.toFixed(0)} % of one core)` : ''} ...`);
      const r = await runRow({
        server,
        ...(script ? { script } : {}),
        viewers: count,
        size: set.label,
        files: set.files,
        meanFrameBytes: set.meanBytes,
        stalledShare: share,
        fps: options.fps,
        rampMs: options.rampMs,
        warmupMs: options.warmupMs,
        maxWarmupMs: options.maxWarmupMs,
        measureMs: options.measureMs,
        graceMs: options.graceMs,
        procs: Math.min(options.procs, count),
        rssCapMiB: options.rssCapMiB,
        serverNodeArgs: nodeArgs,
      });
      for (const child of children) if (child.pid) ours.add(child.pid);
      say(`  ${r.outcome}: pushed ${r.pushedFps.toFixed(1)} fps; per viewer ${r.viewerFps.mean.toFixed(1)} fps (min ${r.viewerFps.min.toFixed(1)}); latency p50 ${r.latencyMs.p50.toFixed(1)} p99 ${r.latencyMs.p99.toFixed(1)} ms; server CPU ${r.serverCpu.mean.toFixed(0)} %, RSS ${r.rssMiB.start.toFixed(0)} → ${r.rssMiB.peak.toFixed(0)} MiB (${r.rssMiB.growthPerMin.toFixed(0)} MiB/min in the window); load CPU ${r.loadCpu.toFixed(0)} % (max process ${r.loadCpuMaxProc.toFixed(0)} %); others ${r.otherCpu.toFixed(0)} % (machine ${r.machineCpu.toFixed(0)} % of all cores); push() p50 ${r.pushCallMs.p50.toFixed(1)} p99 ${r.pushCallMs.p99.toFixed(1)} ms, clock late p99 ${r.tickLateMs.p99.toFixed(1)} ms, ${r.missedSlots} slots missed; every viewer streaming after ${r.allReadyS.toFixed(1)} s; stalled buffers full after ${r.stalledFullS.toFixed(1)} s; accept queue overflows ${r.listenOverflows}; kernel queues ${r.kernelMiB.serverSend.toFixed(0)} + ${r.kernelMiB.clientReceive.toFixed(0)} MiB; ${r.wallS.toFixed(0)} s`);
      if (!row || r.otherCpu < row.otherCpu) row = { ...r, attempts: attempt + 1 };
      else row.attempts = attempt + 1;
      if (r.otherCpu <= options.noisyCpu) break;
    }
    if ('EMFILE' in row!.errors) throw new Error('EMFILE: too many open files; raise `ulimit -n` and run again');
    return row!;
  };
  let group = 0;
  try {
    for (const set of frameSets) {
      for (const count of options.viewers) {
        for (const share of options.shares) {
          // Each group starts with another server, so that none is always the first after a pause.
          const turn = group++ % options.servers.length;
          const order = [...options.servers.slice(turn), ...options.servers.slice(0, turn)];
          const results = new Map<string, RowResult>();
          for (const server of order) results.set(server, await run(server, count, set, share, options.serverNodeArgs, options.retries));
          for (const server of options.servers) rows.push(results.get(server)!);
        }
      }
    }
    if (options.profile) {
      // One more run of serverpush at the largest viewer count with the first frame size, all
      // reading, under --cpu-prof: where its time goes (not in the table; the profiler costs a little).
      const dir = options.profileDir ?? mkdtempSync(join(tmpdir(), 'serverpush-live-prof-'));
      const count = Math.max(...options.viewers);
      const set = frameSets[0]!;
      const since = Date.now();
      const row = await run('serverpush', count, set, 0, [...options.serverNodeArgs, '--cpu-prof', `--cpu-prof-dir=${dir}`], 0);
      profile = [
        `Where serverpush's time goes at ${count.toLocaleString('en-US')} viewers × ${set.label} × ${options.fps} fps, all reading: one more run under \`node --cpu-prof\` (${dir}), not in the table above: ${row.viewerFps.mean.toFixed(1)} fps per viewer, p99 ${row.latencyMs.p99.toFixed(0)} ms, server CPU ${row.serverCpu.mean.toFixed(0)} %, \`push()\` (the synchronous fan-out) p50 ${row.pushCallMs.p50.toFixed(1)} ms / p99 ${row.pushCallMs.p99.toFixed(1)} ms per frame. *Self* is time in the function itself, *total* includes what it calls; both in % of the profile's wall time (one core). \`writeBuffer\` and \`writev\` are the native calls into the kernel (one buffer, several), so their self time is the system call (the kernel's TCP send and loopback delivery to the receiving process).`,
        '',
        ...profileLines(dir, since, row.windowUs),
      ];
    }
  } finally {
    for (const set of frameSets) await rm(set.dir, { recursive: true, force: true });
  }
  const others = busiestOthers(before, processTimes(), ours).filter((o) => o.cpuSeconds >= 1);
  const quote = (arg: string) => (/^[\w./:,=@+-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`);
  const args = process.argv.slice(2).filter((arg) => arg !== '--write');
  const context: LiveReportContext = {
    command: `npm run build && npm run bench:live${args.length > 0 ? ` --${args.map((arg) => ` ${quote(arg)}`).join('')}` : ''}`,
    revision: sourceRevision(root),
    machine: machineDescription(),
    date: new Date().toISOString().slice(0, 10),
    peers: [peerVersion('mjpeg-server'), peerVersion('mjpeg-proxy')],
    frames: frameSets.map((set) => ({ label: set.label, meanBytes: set.meanBytes, origin: set.origin, count: set.files.length })),
    rows,
    others,
    wallS: (performance.now() - began) / 1000,
    memoryTouchMs: touch,
    ...(profile ? { profile } : {}),
  };
  if (options.json !== undefined) {
    writeFileSync(options.json, JSON.stringify(context));
    say(`wrote ${options.json}`);
  }
  report(context, options.write);
}

/** The stress rows (bench/lib/live-stress.ts): each row in rounds, the servers taking turns. */
async function stress(options: ReturnType<typeof parse>): Promise<void> {
  const began = performance.now();
  say(`machine: ${machineDescription()}`);
  const set = await makeFrames(FRAME_SPECS['20k']!);
  const runs: StressContext['runs'] = [];
  try {
    for (const row of options.stressRows) {
      for (let round = 1; round <= options.rounds; round++) {
        // Each round starts with another server.
        const turn = (round - 1) % options.stressServers.length;
        const order = [...options.stressServers.slice(turn), ...options.stressServers.slice(0, turn)];
        for (const server of order) {
          // The variants (serverpush-unbounded, reference-lowat) differ only toward stalled viewers.
          if (row.stalledShare === 0 && server.includes('-')) continue;
          if (options.quietWaitMs > 0) await waitForQuiet(options.quietWaitMs, 25, (text) => say(`  ${text}`));
          say(`stress row ${row.key}, round ${round}: ${server} ...`);
          const result = await runRow(stressOptions(row, server, set.files, set.meanBytes, options.serverCpu, options.loadCpu, Math.min(options.procs, row.viewers), options.nice));
          if ('EMFILE' in result.errors) throw new Error('EMFILE: too many open files; raise `ulimit -n` and run again');
          say(`  ${result.outcome}: frames got min ${(result.share.min * 100).toFixed(1)} %; latency p50 ${result.latencyMs.p50.toFixed(1)} p99 ${result.latencyMs.p99.toFixed(1)} max ${result.latencyMs.max.toFixed(1)} ms; server CPU ${result.serverCpu.mean.toFixed(0)} %, RSS peak ${result.rssMiB.peak.toFixed(0)} MiB; stalled skmem ${result.stalledSkmem ? `${result.stalledSkmem.meanKiB.toFixed(0)}/${result.stalledSkmem.maxKiB.toFixed(0)} KiB` : '–'}; others ${result.otherCpu.toFixed(0)} %`);
          runs.push({ row: row.key, round, result });
        }
      }
    }
  } finally {
    await rm(set.dir, { recursive: true, force: true });
  }
  const quote = (arg: string) => (/^[\w./:,=@+-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`);
  const args = process.argv.slice(2).filter((arg) => arg !== '--write');
  const context: StressContext = {
    command: `npm run build && npm run bench:live -- ${args.map(quote).join(' ')}`,
    revision: sourceRevision(root),
    machine: machineDescription(),
    date: new Date().toISOString().slice(0, 10),
    serverCpu: options.serverCpu,
    loadCpu: options.loadCpu,
    ...(options.nice !== undefined ? { nice: options.nice } : {}),
    rounds: options.rounds,
    servers: options.stressServers,
    frames: { meanBytes: set.meanBytes, origin: set.origin },
    runs,
    wallS: (performance.now() - began) / 1000,
  };
  if (options.json !== undefined) {
    writeFileSync(options.json, JSON.stringify(context));
    say(`wrote ${options.json}`);
  }
  writeStress(context, options.write);
}

function writeStress(context: StressContext, write: boolean): void {
  const section = renderStressSection(context);
  process.stdout.write(`${section}\n`);
  if (write) {
    writeSection(join(root, 'docs/benchmarks.md'), STRESS_SECTION_TITLE, section);
    say('wrote docs/benchmarks.md');
  }
}

function report(context: LiveReportContext, write: boolean): void {
  const section = renderSection(context);
  process.stdout.write(`${section}\n`);
  if (write) {
    writeSection(join(root, 'docs/benchmarks.md'), LIVE_SECTION_TITLE, section);
    say('wrote docs/benchmarks.md');
  }
}

runBench(main);
