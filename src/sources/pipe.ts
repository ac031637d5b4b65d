import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { LiveStream } from '../hub/live-stream.ts';
import { silentLogger, type Logger } from '../log.ts';
import { isServerPushError } from '../errors.ts';
import { FrameFeed, type PipeFormat } from './frame-feed.ts';
import { Backoff, pause, type Source } from './source.ts';
import { DEFAULT_RETRY_DELAY_MS, RETRY_RESET_AFTER_MS } from '../defaults.ts';

export interface PipeSourceOptions {
  /** What the bytes are. @default 'auto' */
  format?: PipeFormat;
  /** Frames larger than this are dropped. @default 16777216 (16 MiB) */
  maxPartBytes?: number;
  logger?: Logger;
}

/** A Node stream (process.stdin, a child's stdout), read in flowing mode. */
function isNodeReadable(input: unknown): input is Readable {
  return typeof (input as Readable).on === 'function' && typeof (input as Readable).resume === 'function';
}

/**
 * Pumps a byte stream into a stream until it ends. Resolves how it ended.
 *
 * A Node stream is read in flowing mode, each read handed to the FrameFeed as it comes: the
 * stream never stops reading (an async iterator reads ahead only up to its high-water mark and then
 * waits for the loop to come back), so when the viewers keep the event loop busy the pipe is
 * still emptied at each turn, and FrameFeed pushes only its newest frame (latest wins).
 */
function pump(input: AsyncIterable<Uint8Array>, stream: LiveStream, options: PipeSourceOptions, label: string): Promise<string> {
  const feed = new FrameFeed(stream, { ...options, logger: options.logger ?? silentLogger, label });
  const failed = (error: unknown): string => {
    if (isServerPushError(error)) (options.logger ?? silentLogger).error(error.code, `stream ${stream.name} (${label}): ${error.message}`);
    return (error as Error).message;
  };
  if (!isNodeReadable(input)) {
    return (async () => {
      try {
        for await (const chunk of input) feed.push(chunk);
        feed.flush();
        return 'end of input';
      } catch (error) {
        feed.discard();
        return failed(error);
      }
    })();
  }
  return new Promise((resolve) => {
    let settled = false;
    const settle = (reason: string, flush: boolean): void => {
      if (settled) return;
      settled = true;
      input.off('data', onData);
      if (flush) feed.flush();
      else feed.discard();
      resolve(reason);
    };
    const onData = (chunk: Uint8Array): void => {
      try {
        feed.push(chunk);
      } catch (error) {
        settle(failed(error), false);
        input.destroy();
      }
    };
    input.on('data', onData);
    input.once('end', () => settle('end of input', true));
    input.once('error', (error) => settle(failed(error), false));
    // Destroyed without an end (stop()): what was read is not pushed any more.
    input.once('close', () => settle('end of input', false));
  });
}

/** Frames from a byte stream, e.g. `process.stdin` fed by `ffmpeg … -f mjpeg -`. */
export class ReadableSource implements Source {
  private done: Promise<void> | undefined;

  constructor(private readonly input: AsyncIterable<Uint8Array> & { destroy?: () => void }, private readonly options: PipeSourceOptions = {}, private readonly label = 'stdin') {}

  start(stream: LiveStream): void {
    this.done = pump(this.input, stream, this.options, this.label).then((reason) => {
      stream.setSource({ up: false, reason: `${this.label}: ${reason}` });
    });
  }

  async stop(): Promise<void> {
    this.input.destroy?.();
    await this.done;
  }
}

export interface CommandSourceOptions extends PipeSourceOptions {
  /** First delay before restarting a command that exited; doubles up to 30 s. @default 500 */
  restartDelayMs?: number;
}

/**
 * Frames from a command's standard output (`sh -c CMD`), e.g. an ffmpeg pipeline. The command is
 * restarted with backoff whenever it exits; its last stderr lines are logged.
 */
export class CommandSource implements Source {
  private readonly stopped = new AbortController();
  private child: ChildProcess | undefined;
  private done: Promise<void> | undefined;
  /** How many times the command was started. */
  starts = 0;

  constructor(private readonly command: string, private readonly options: CommandSourceOptions = {}) {}

  start(stream: LiveStream): void {
    this.done = this.run(stream);
  }

  private async run(stream: LiveStream): Promise<void> {
    const logger = this.options.logger ?? silentLogger;
    const backoff = new Backoff(this.options.restartDelayMs ?? DEFAULT_RETRY_DELAY_MS);
    while (!this.stopped.signal.aborted) {
      const startedAt = performance.now();
      // Its own process group, so that stopping it also stops what the shell started.
      const child = spawn('sh', ['-c', this.command], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      this.child = child;
      this.starts++;
      const stderr: string[] = [];
      child.stderr!.setEncoding('utf8').on('data', (text: string) => {
        stderr.push(...text.split('\n').filter(Boolean));
        stderr.splice(0, Math.max(0, stderr.length - 5));
      });
      const exited = new Promise<string>((resolve) => {
        child.once('error', (error) => resolve(`cannot run: ${error.message}`));
        child.once('close', (code, signal) => resolve(signal ? `killed by ${signal}` : `exited with code ${code}`));
      });
      const pumped = pump(child.stdout!, stream, this.options, 'command');
      const [reason] = await Promise.all([exited, pumped]);
      this.child = undefined;
      if (this.stopped.signal.aborted) break;
      if (performance.now() - startedAt > RETRY_RESET_AFTER_MS) backoff.reset();
      const delay = backoff.next();
      const tail = stderr.length ? `; last output: ${stderr.join(' | ')}` : '';
      stream.setSource({ up: false, reason: `command ${reason}` });
      logger.warn('SP_ERR_SOURCE_FAILED', `stream ${stream.name}: command ${reason}${tail}; restarting in ${delay} ms`);
      await pause(delay, this.stopped.signal);
    }
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    const child = this.child;
    if (child && child.exitCode === null && child.pid !== undefined) {
      const group = -child.pid;
      const kill = (signal: NodeJS.Signals) => { try { process.kill(group, signal); } catch { /* already gone */ } };
      kill('SIGTERM');
      const killer = setTimeout(() => kill('SIGKILL'), 2000);
      await this.done;
      clearTimeout(killer);
    }
    await this.done;
  }
}
