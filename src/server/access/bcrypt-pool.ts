/**
 * bcrypt off the event loop. bcryptjs is pure JavaScript and runs a check in slices of up to
 * 100 ms on the thread that calls it: on the server's own thread, a password-guessing flood (8
 * concurrent wrong passwords, cost 10) dropped a 30 fps viewer to 4 fps with 400 ms gaps. Here the
 * checks run in one worker thread, one at a time, and at most {@link DEFAULT_BCRYPT_QUEUE} wait:
 * beyond that a check is refused at once (the request gets 503 `SP_ERR_AUTH_BUSY`), so a flood
 * costs at most one core and bounded memory, and the streams keep their pace.
 */
import { Worker } from 'node:worker_threads';
import { ServerPushError } from '../../errors.ts';
import { DEFAULT_BCRYPT_QUEUE } from '../../defaults.ts';

interface Pending {
  resolve(value: boolean | string): void;
  reject(error: Error): void;
}

/**
 * The worker: bcryptjs's synchronous compare and hash, one job at a time. A `data:` module that
 * imports bcryptjs by its resolved URL, so that it runs the same from the sources (tsx) and built.
 */
function threadSource(): URL {
  const bcryptjs = import.meta.resolve('bcryptjs');
  const source = `import { parentPort } from 'node:worker_threads';
import bcrypt from ${JSON.stringify(bcryptjs)};
parentPort.on('message', (job) => {
  try {
    const result = job.op === 'compare' ? bcrypt.compareSync(job.password, job.hash) : bcrypt.hashSync(job.password, job.cost);
    parentPort.postMessage({ id: job.id, result });
  } catch (error) {
    parentPort.postMessage({ id: job.id, error: String(error && error.message || error) });
  }
});
`;
  return new URL(`data:text/javascript,${encodeURIComponent(source)}`);
}

export class BcryptPool {
  readonly maxQueue: number;
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  constructor(maxQueue = DEFAULT_BCRYPT_QUEUE) {
    this.maxQueue = maxQueue;
  }

  /** Checks waiting or running now. */
  get queued(): number {
    return this.pending.size;
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(threadSource());
    // The server keeps the process alive; an idle pool must not.
    worker.unref();
    worker.on('message', (message: { id: number; result?: boolean | string; error?: string }) => {
      const job = this.pending.get(message.id);
      if (!job) return;
      this.pending.delete(message.id);
      if (message.error !== undefined) job.reject(new ServerPushError('SP_ERR_INTERNAL', `bcrypt: ${message.error}`));
      else job.resolve(message.result!);
      if (this.pending.size === 0) worker.unref();
    });
    const fail = (error: Error) => {
      this.worker = undefined;
      for (const job of this.pending.values()) job.reject(new ServerPushError('SP_ERR_INTERNAL', `bcrypt worker: ${error.message}`, { cause: error }));
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => { if (this.worker === worker) fail(new Error(`exited with ${code}`)); });
    this.worker = worker;
    return worker;
  }

  private run(job: { op: 'compare'; password: string; hash: string } | { op: 'hash'; password: string; cost: number }): Promise<boolean | string> {
    // Only a request's check is refused: a hash is the server's own work (loading users), which a flood must not make fail.
    if (job.op === 'compare' && this.pending.size >= this.maxQueue) {
      return Promise.reject(new ServerPushError('SP_ERR_AUTH_BUSY', `${this.pending.size} password checks are waiting already`));
    }
    const worker = this.start();
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, ...job });
    });
  }

  /** True when `password` matches the bcrypt `hash`. Rejects with `SP_ERR_AUTH_BUSY` when too many checks wait. */
  async compare(password: string, hash: string): Promise<boolean> {
    return (await this.run({ op: 'compare', password, hash })) as boolean;
  }

  /** A bcrypt hash of `password` at `cost` (never refused: it waits its turn). */
  async hash(password: string, cost: number): Promise<string> {
    return (await this.run({ op: 'hash', password, cost })) as string;
  }

  /** Stops the worker (pending checks are rejected). */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }
}

let shared: BcryptPool | undefined;

/** The process's pool (one worker thread for every server and policy). */
export function bcryptPool(): BcryptPool {
  shared ??= new BcryptPool();
  return shared;
}
