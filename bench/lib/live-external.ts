/**
 * The common part of the harnesses whose server is a process of its own fed through a pipe by
 * bench/lib/frame-generator.ts (the stress rows): serverpush's CLI with `serve --exec`, and the C
 * reference server. It speaks the protocol of live-harness.ts to the bench; the pushes it reports
 * are the generator's writes, read from the generator's log, so a frame's latency runs from the
 * moment the camera wrote it to the moment a viewer had all of it.
 *
 * argv: `--frames FILE[,FILE...]`, `--fps N`, `--cpu LIST` (taskset the server and its source to
 * these CPUs; none by default), and per harness `--option VALUE` pairs given as `--arg NAME=VALUE`.
 * The harness's own Node options (`--cpu-prof`, …) go to a Node server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { HarnessCommand, HarnessReport } from './live-harness.ts';

export const benchRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface ExternalSetup {
  frames: string;
  fps: number;
  /** `taskset -c LIST` prefix, or nothing. */
  pin: string[];
  /** The generator's command line (absolute paths; no quoting needed). */
  generator: string;
  /** `--arg NAME=VALUE` options. */
  args: Map<string, string>;
  /** Node options of this harness, for a Node server. */
  nodeArgs: string[];
  /** A folder for the run's files, removed on exit. */
  dir: string;
}

export interface ExternalServer {
  child: ChildProcess;
  port: number;
  path: string;
  /** The process to sample for CPU and RSS. */
  pid: number;
}

function send(message: HarnessReport, then?: () => void): void {
  if (process.send) process.send(message, undefined, {}, () => then?.());
  else then?.();
}

/** Reads the generator's log into the bench's push report. */
function readPushes(logFile: string): HarnessReport {
  const pushUs: number[] = [];
  const pushCallMs: number[] = [];
  const missedSlotsUs: number[] = [];
  let text = '';
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    // No frame written yet.
  }
  for (const line of text.split('\n')) {
    const [kind, at, ms] = line.split(' ');
    if (kind === 'p') {
      pushUs.push(Number(at));
      pushCallMs.push(Number(ms));
    } else if (kind === 'm') {
      missedSlotsUs.push(Number(at));
    }
  }
  return { type: 'pushes', pushUs, pushCallMs, tickLateMs: [], missedSlotsUs };
}

/**
 * Runs an external server: `start` spawns it (in its own process group, so that it and its
 * source are killed together) and learns its port. On `exit` (or when the bench goes away) the
 * whole group is killed.
 */
export function externalHarnessMain(start: (setup: ExternalSetup) => Promise<ExternalServer>): void {
  const { values } = parseArgs({
    options: { frames: { type: 'string' }, fps: { type: 'string', default: '30' }, cpu: { type: 'string' }, arg: { type: 'string', multiple: true, default: [] } },
    strict: true,
  });
  const dir = mkdtempSync(join(tmpdir(), 'serverpush-bench-ext-'));
  const logFile = join(dir, 'pushes.log');
  let server: ExternalServer | undefined;
  const signalGroup = (signal: NodeJS.Signals): void => {
    if (server?.child.pid === undefined) return;
    try {
      process.kill(-server.child.pid, signal);
    } catch {
      // already gone
    }
  };
  let leaving = false;
  // SIGTERM first, so that a Node server writes its --cpu-prof profile; SIGKILL after 5 s.
  const leave = async (code: number): Promise<never> => {
    if (!leaving) {
      leaving = true;
      const child = server?.child;
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        signalGroup('SIGTERM');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      }
      signalGroup('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
    process.exit(code);
  };
  process.on('disconnect', () => void leave(0));
  process.on('message', (message: HarnessCommand) => {
    if (message.type === 'report') send(readPushes(logFile));
    else if (message.type === 'exit') void leave(0);
  });
  const run = async (): Promise<void> => {
    if (!values.frames) throw new Error('--frames is required');
    const args = new Map<string, string>();
    for (const spec of values.arg) {
      const at = spec.indexOf('=');
      if (at < 1) throw new Error(`--arg must be NAME=VALUE, got ${JSON.stringify(spec)}`);
      args.set(spec.slice(0, at), spec.slice(at + 1));
    }
    const fps = Number(values.fps);
    const generator = [process.execPath, '--import', 'tsx', join(benchRoot, 'bench/lib/frame-generator.ts'), '--frames', values.frames, '--fps', String(fps), '--log', logFile].join(' ');
    const nodeArgs = process.execArgv.filter((arg, i, all) => arg !== '--import' && all[i - 1] !== '--import');
    server = await start({ frames: values.frames, fps, pin: values.cpu ? ['taskset', '-c', values.cpu] : [], generator, args, nodeArgs, dir });
    // The bench waits for a first frame to have been served: wait for the generator's first write.
    const deadline = performance.now() + 20_000;
    while ((readPushes(logFile) as { pushUs: number[] }).pushUs.length === 0) {
      if (performance.now() > deadline) throw new Error('the frame generator wrote nothing within 20 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    server.child.once('exit', (code, signal) => {
      process.stderr.write(`harness: the server exited (${code ?? signal})\n`);
    });
    send({ type: 'ready', port: server.port, path: server.path, serverPid: server.pid, serverGroup: server.child.pid! });
  };
  run().catch((error: unknown) => {
    process.stderr.write(`harness: ${(error as Error).stack ?? String(error)}\n`);
    send({ type: 'error', message: (error as Error).stack ?? String(error) }, () => void leave(1));
  });
}

/**
 * Spawns `command` in its own process group, its stderr collected; resolves the port that `portOf`
 * finds in a stderr line, or that the server writes to `portFile` as `PORT [PID]`.
 */
export function spawnServer(command: string[], portOf: (stderrLine: string) => number | undefined, options: { env?: NodeJS.ProcessEnv; portFile?: string } = {}): Promise<ExternalServer & { log: string[] }> {
  const child = spawn(command[0]!, command.slice(1), { cwd: benchRoot, stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: options.env ?? process.env });
  const log: string[] = [];
  return new Promise((resolve, reject) => {
    let partial = '';
    const timer = setTimeout(() => reject(new Error(`the server did not report its port within 20 s; its log:\n${log.join('\n')}`)), 20_000);
    const found = (port: number, pid = child.pid!): void => {
      clearTimeout(timer);
      clearInterval(poll);
      resolve({ child, port, path: '/stream', pid, log });
    };
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        log.push(line);
        if (log.length > 200) log.shift();
        const port = portOf(line);
        if (port !== undefined) found(port);
      }
    });
    const poll = setInterval(() => {
      if (!options.portFile) return;
      try {
        // `PORT [PID]`: a server started through a shell pipeline says which process it is.
        const [port, pid] = readFileSync(options.portFile, 'utf8').trim().split(/\s+/).map(Number);
        if (port! > 0) found(port!, pid! > 0 ? pid : child.pid!);
      } catch {
        // not yet
      }
    }, 50);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      clearInterval(poll);
      reject(new Error(`the server exited (${code ?? signal}) before listening; its log:\n${log.join('\n')}${partial}`));
    });
  });
}
