import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

export const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;

/**
 * The environment of a CLI run: text logs, as the tests read them (stderr is a pipe here, where the
 * CLI would pick JSON lines); `env` adds to it or overrides it.
 */
function cliEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, SERVERPUSH_LOG_FORMAT: 'text', ...env };
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI to completion. */
export async function runCli(args: string[], options: { timeoutMs?: number; prefix?: string[]; env?: Record<string, string> } = {}): Promise<Finished> {
  const [command, ...rest] = [...(options.prefix ?? []), process.execPath, CLI, ...args];
  const child = spawn(command!, rest, { stdio: ['ignore', 'pipe', 'pipe'], env: cliEnv(options.env) });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => { stdout += text; });
  child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text; });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 10_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal, stdout, stderr };
}

export interface RunningServer {
  child: ChildProcess;
  url: URL;
  stderr(): string;
  /** Sends SIGTERM and resolves the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `serverpush serve …` and resolves once it listens (its log line gives the URL). */
export async function startCli(args: string[], options: { prefix?: string[]; stdin?: string; cli?: string; env?: Record<string, string>; nodeArgs?: string[] } = {}): Promise<RunningServer> {
  const [command, ...rest] = [...(options.prefix ?? []), process.execPath, ...(options.nodeArgs ?? []), options.cli ?? CLI, 'serve', ...args];
  const child = spawn(command!, rest, { stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'], env: cliEnv(options.env) });
  // With `stdin`, a shell command (in its own process group) whose output feeds the server.
  const producer = options.stdin === undefined ? undefined : spawn('sh', ['-c', options.stdin], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
  if (producer) {
    producer.stdout!.pipe(child.stdin!);
    child.stdin!.on('error', () => {});
    child.once('exit', () => { try { process.kill(-producer.pid!, 'SIGKILL'); } catch { /* gone */ } });
  }
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  const url = await new Promise<URL>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 10_000);
    child.stderr!.on('data', (text: string) => {
      stderr += text;
      const match = / at (https?:\/\/\S+\/) /.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(new URL(match[1]!));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${stderr}`));
    });
  });
  return {
    child,
    url,
    stderr: () => stderr,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, 'exit');
      child.kill(signal);
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}
