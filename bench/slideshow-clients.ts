/**
 * Benchmark for issue 2, point 4: 1,000 simultaneous /stream clients on a 2-core machine, each
 * getting every part on time, with the server's memory bounded.
 *
 *   npm run build && npm run bench:clients                 # 1,000 clients, 1 s interval
 *   npm run bench:clients -- --interval 1,0.2 --write      # two intervals; update docs/benchmarks.md
 *
 * It runs the built CLI (dist/cli/main.js; run `npm run build` first) as a child process on
 * 127.0.0.1 only, and for each interval makes two runs: every client reading, then the same
 * with --stalled-share of the clients never reading after the response head. It stops by itself
 * and kills the server and the load processes on every exit path.
 *
 * Open files: the server and the load processes each hold one descriptor per client. 1,000
 * clients need `ulimit -n` above ~1,100 (Node cannot raise its own soft limit); if the bench
 * reports EMFILE, run `ulimit -n 4096` in the shell first.
 *
 * Options: --clients N (1000), --interval S[,S...] (1), --duration S of steady state (20),
 * --ramp S to connect every client (1.5), --stalled-share F (0.2; 0 skips the stalled runs),
 * --runs both|readers|stalled (both), --quiet-wait S (120: before each run, wait up to S seconds
 * for other work on the machine to use under 25 % of one core; 0 to skip),
 * --on-time-ms N (100), --stall-timeout S given to the server (30), --procs N load processes (1),
 * --files N documents (10), --write (replace the section in docs/benchmarks.md), --json PATH
 * (save every run's figures and each client's part arrival times), --render PATH (print, or
 * with --write write, the section of a run saved with --json, without running anything),
 * --server-node-arg=ARG (repeatable: a Node option for the server, e.g. --server-node-arg=--cpu-prof),
 * --cli PATH (the built CLI to run; default dist/cli/main.js), --source TEXT (what the report
 * names as the measured source; default: the git revision of the CLI's package).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeSlideFolder } from './lib/fixtures.ts';
import { machineDescription, renderSection, SECTION_TITLE, sourceRevision, writeSection, type ReportContext } from './lib/report.ts';
import { runScenario, type RunResult } from './lib/run.ts';
import { positive, runBench, warnIfStaleBuild } from './lib/cli.ts';
import { waitForQuiet } from './lib/machine.ts';

const root = fileURLToPath(new URL('../', import.meta.url));

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      clients: { type: 'string', default: '1000' },
      interval: { type: 'string', default: '1' },
      duration: { type: 'string', default: '20' },
      ramp: { type: 'string', default: '1.5' },
      'stalled-share': { type: 'string', default: '0.2' },
      'on-time-ms': { type: 'string', default: '100' },
      'stall-timeout': { type: 'string', default: '30' },
      procs: { type: 'string', default: '1' },
      files: { type: 'string', default: '10' },
      runs: { type: 'string', default: 'both' },
      'quiet-wait': { type: 'string', default: '120' },
      cli: { type: 'string', default: join(root, 'dist/cli/main.js') },
      source: { type: 'string' },
      write: { type: 'boolean', default: false },
      json: { type: 'string' },
      render: { type: 'string' },
      'server-node-arg': { type: 'string', multiple: true, default: [] },
    },
  });
  const stalledShare = Number(values['stalled-share']);
  if (!(stalledShare >= 0 && stalledShare < 1)) throw new Error('--stalled-share must be from 0 to below 1');
  const runs = values.runs;
  if (runs !== 'both' && runs !== 'readers' && runs !== 'stalled') throw new Error('--runs must be both, readers or stalled');
  if (runs === 'stalled' && stalledShare === 0) throw new Error('--runs stalled needs a --stalled-share above 0');
  const shares = runs === 'readers' || stalledShare === 0 ? [0] : runs === 'stalled' ? [stalledShare] : [0, stalledShare];
  return {
    clients: positive('clients', values.clients, true),
    intervalsMs: values.interval.split(',').map((s) => positive('interval', s) * 1000),
    durationMs: positive('duration', values.duration) * 1000,
    rampMs: positive('ramp', values.ramp) * 1000,
    shares,
    quietWaitMs: values['quiet-wait'] === '0' ? 0 : positive('quiet-wait', values['quiet-wait']) * 1000,
    onTimeMs: positive('on-time-ms', values['on-time-ms']),
    stallTimeoutMs: positive('stall-timeout', values['stall-timeout']) * 1000,
    procs: positive('procs', values.procs, true),
    files: positive('files', values.files, true),
    write: values.write,
    json: values.json,
    render: values.render,
    serverNodeArgs: values['server-node-arg'],
    cli: resolve(values.cli),
    source: values.source,
  };
}

async function main(): Promise<void> {
  const options = parse(process.argv.slice(2));
  if (options.render !== undefined) {
    return report(JSON.parse(readFileSync(options.render, 'utf8')) as ReportContext, options.write);
  }
  const { cli } = options;
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  const packageRoot = resolve(dirname(cli), '../..');
  warnIfStaleBuild(packageRoot);
  process.stderr.write(`machine: ${machineDescription()}\n`);
  const fixture = await makeSlideFolder(options.files);
  const runs: RunResult[] = [];
  try {
    for (const intervalMs of options.intervalsMs) {
      for (const stalledShare of options.shares) {
        process.stderr.write(`run: ${options.clients} clients, ${intervalMs / 1000} s interval, ${stalledShare * 100} % stalled, ${options.durationMs / 1000} s ...\n`);
        if (options.quietWaitMs > 0) await waitForQuiet(options.quietWaitMs, 25, (text) => process.stderr.write(`  ${text}\n`));
        const run = await runScenario({ ...options, dir: fixture.dir, intervalMs, stalledShare });
        runs.push(run);
        const r = run.readers;
        process.stderr.write(`  parts ${r.receivedParts}/${r.expectedParts}, lateness p99 ${r.latenessMs.p99.toFixed(1)} ms, max ${r.latenessMs.max.toFixed(1)} ms, RSS peak ${(run.rssKiB.peak / 1024).toFixed(1)} MiB\n`);
        for (const line of run.serverWarnings.slice(0, 5)) process.stderr.write(`  server: ${line}\n`);
        const errors = { ...r.errors, ...run.stalled?.errors };
        if ('EMFILE' in errors) {
          throw new Error('EMFILE: too many open files for this many clients; raise the limit with `ulimit -n 4096` in this shell and run again');
        }
        const streaming = r.streaming + (run.stalled?.streaming ?? 0);
        if (streaming < options.clients) {
          process.stderr.write(`  warning: only ${streaming} of ${options.clients} clients got a stream (errors: ${JSON.stringify(errors)}); if the server ran out of file descriptors, run \`ulimit -n 4096\` first\n`);
        }
      }
    }
  } finally {
    await rm(fixture.dir, { recursive: true, force: true });
  }
  const quote = (arg: string) => (/^[\w./:,=@+-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`);
  const context: ReportContext = {
    command: `npm run bench:clients --${process.argv.slice(2).map((arg) => ` ${quote(arg)}`).join('')}`.replace(/ --$/, ''),
    revision: options.source ?? sourceRevision(packageRoot),
    machine: machineDescription(),
    date: new Date().toISOString().slice(0, 10),
    fixture,
    runs,
  };
  if (options.json !== undefined) {
    writeFileSync(options.json, JSON.stringify(context));
    process.stderr.write(`wrote ${options.json}\n`);
  }
  report(context, options.write);
}

/** Prints the section and, with `write`, puts it in docs/benchmarks.md. */
function report(context: ReportContext, write: boolean): void {
  const section = renderSection(context);
  process.stdout.write(`${section}\n`);
  if (write) {
    writeSection(join(root, 'docs/benchmarks.md'), SECTION_TITLE, section);
    process.stderr.write('wrote docs/benchmarks.md\n');
  }
}

runBench(main);
