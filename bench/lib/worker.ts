import { fork, type ChildProcess } from 'node:child_process';
import { children } from './server-process.ts';

/**
 * A bench child process forked with `--import tsx` that talks over IPC: the bench sends it
 * commands and waits for its messages by `type`.
 */
export interface Worker<R extends { type: string }, C> {
  child: ChildProcess;
  /** Sends a command; nothing once the child has gone. */
  send(command: C): void;
  /**
   * The next message of `type`. Throws when the child sends `{ type: 'error', message }`
   * instead, exits first, or sends nothing of that type within `timeoutMs` (no limit by default).
   */
  next(type: R['type'], timeoutMs?: number): Promise<R>;
}

/**
 * Forks `script` (a .ts file) with `args`, and `nodeArgs` as Node options. The child is in
 * server-process.ts's `children` until it exits, so the bench kills it on every way out. `name`
 * is how errors speak of it.
 */
export function startWorker<R extends { type: string }, C>(script: URL, args: string[], nodeArgs: string[], name: string): Worker<R, C> {
  const child = fork(script, args, {
    execArgv: ['--import', 'tsx', ...nodeArgs],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.on('error', () => {});
  const inbox = new Inbox<R>(child, name);
  return {
    child,
    send: (command) => { if (child.connected) child.send(command as object); },
    next: (type, timeoutMs = Infinity) => inbox.next(type, timeoutMs),
  };
}

/** The messages of a child not yet asked for, and the waits for the next one. */
class Inbox<R extends { type: string }> {
  private readonly messages: R[] = [];
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly child: ChildProcess, private readonly name: string) {
    child.on('message', (message: R) => {
      this.messages.push(message);
      this.wakeAll();
    });
    child.once('exit', () => this.wakeAll());
  }

  async next(type: R['type'], timeoutMs: number): Promise<R> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const message = this.take(type);
      if (message) return message;
      const { exitCode, signalCode } = this.child;
      if (exitCode !== null || signalCode !== null) throw new Error(`${this.name} exited (${exitCode ?? signalCode}) before sending '${type}'`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no '${type}' from ${this.name} within ${timeoutMs} ms`);
      await this.wake(left);
    }
  }

  /** Removes and returns the first message of `type`; throws on an `error` message before it. */
  private take(type: R['type']): R | undefined {
    const index = this.messages.findIndex((message) => message.type === type || message.type === 'error');
    if (index === -1) return undefined;
    const message = this.messages.splice(index, 1)[0]!;
    if (message.type === 'error' && type !== 'error') throw new Error(`${this.name} failed: ${(message as unknown as { message: string }).message}`);
    return message;
  }

  /** Resolves at the next message or exit, or after `ms`. */
  private async wake(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.waiting.push(resolve);
      if (Number.isFinite(ms)) timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
  }

  private wakeAll(): void {
    for (const wake of this.waiting.splice(0)) wake();
  }
}
