import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { LiveStream } from '../hub/live-stream.ts';
import { silentLogger, type Logger } from '../log.ts';
import { isServerPushError } from '../errors.ts';
import { FrameFeed, type PipeFormat } from './frame-feed.ts';
import { Backoff, pause, waitForDemand, type Source } from './source.ts';
import { StallWatch } from './stall.ts';
import { DEFAULT_EXEC_IDLE_MS, DEFAULT_RETRY_DELAY_MS, DEFAULT_SOURCE_STALL_MS, KILL_GRACE_MS, RETRY_RESET_AFTER_MS } from '../defaults.ts';

export interface PipeSourceOptions {
  /** What the bytes are. @default 'auto' */
  format?: PipeFormat;
  /** Frames larger than this are dropped. @default 16777216 (16 MiB) */
  maxPartBytes?: number;
  /**
   * No frame for this long while the input is open: the source is `stalled` (logged once with
   * `SP_ERR_SOURCE_STALLED`; a command is killed and restarted). 0: never. @default 10000
   */
  stallTimeoutMs?: number;
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
  readonly statusKey = 'input';
  private done: Promise<void> | undefined;
  private stall: StallWatch | undefined;
  /** True once the input has ended (or failed). */
  ended = false;

  constructor(private readonly input: AsyncIterable<Uint8Array> & { destroy?: () => void }, private readonly options: PipeSourceOptions = {}, private readonly label = 'stdin') {}

  start(stream: LiveStream): void {
    this.stall = new StallWatch(stream, { timeoutMs: this.options.stallTimeoutMs ?? DEFAULT_SOURCE_STALL_MS, label: this.label, logger: this.options.logger ?? silentLogger });
    this.stall.arm();
    this.done = pump(this.input, stream, this.options, this.label).then((reason) => {
      this.stall?.disarm();
      this.ended = true;
      stream.setSource({ up: false, reason: `${this.label}: ${reason}` });
    });
  }

  /** Times no frame came for the stall timeout. */
  get stalls(): number {
    return this.stall?.stalls ?? 0;
  }

  /** For `/status` (under `input`): whether the input ended, stalls seen. */
  toJSON(): Record<string, unknown> {
    return { ended: this.ended, stalls: this.stalls };
  }

  async stop(): Promise<void> {
    this.stall?.disarm();
    this.input.destroy?.();
    await this.done;
  }
}

export interface CommandSourceOptions extends PipeSourceOptions {
  /** First delay before restarting a command that exited; doubles up to 30 s. @default 500 */
  restartDelayMs?: number;
  /**
   * Run the command only while someone watches: start it at the first viewer (or snapshot), stop
   * it `idleTimeoutMs` after the last viewer left. @default false (run all the time)
   */
  onDemand?: boolean;
  /** `onDemand`: how long without viewers before the command is stopped. @default 30000 */
  idleTimeoutMs?: number;
}

/** Why serverpush itself ended a command. */
type KillReason = 'stall' | 'idle' | 'stop';

/**
 * Frames from a command's standard output (`sh -c CMD`), e.g. an ffmpeg pipeline. The command is
 * restarted with backoff whenever it exits, and killed and restarted when it stalls (no frame for
 * `stallTimeoutMs`: a hung ffmpeg reading a dead camera); its last stderr lines are logged. With
 * `onDemand` it runs only while someone watches. A command is stopped with SIGTERM to its process
 * group, then SIGKILL after 2 s, and waited for: when `stop()` resolves, it is gone.
 */
export class CommandSource implements Source {
  readonly statusKey = 'command';
  private readonly stopped = new AbortController();
  private child: ChildProcess | undefined;
  private killed: KillReason | undefined;
  private done: Promise<void> | undefined;
  private stall: StallWatch | undefined;
  /** How many times the command was started. */
  starts = 0;

  constructor(private readonly command: string, private readonly options: CommandSourceOptions = {}) {}

  /** Times the command was started again after it exited, stalled or was stopped for lack of viewers. */
  get restarts(): number {
    return Math.max(0, this.starts - 1);
  }

  /** The process id of the running command (its shell, leader of its process group), or undefined. */
  get pid(): number | undefined {
    return this.child?.exitCode === null ? this.child.pid : undefined;
  }

  /** Times the command stalled. */
  get stalls(): number {
    return this.stall?.stalls ?? 0;
  }

  /** For `/status` (under `command`; the command line itself is not shown: it may hold a password). */
  toJSON(): Record<string, unknown> {
    return { running: this.pid !== undefined, pid: this.pid ?? null, starts: this.starts, restarts: this.restarts, stalls: this.stalls, onDemand: this.options.onDemand ?? false };
  }

  start(stream: LiveStream): void {
    this.done = this.run(stream);
  }

  private async run(stream: LiveStream): Promise<void> {
    const logger = this.options.logger ?? silentLogger;
    const backoff = new Backoff(this.options.restartDelayMs ?? DEFAULT_RETRY_DELAY_MS);
    const stallMs = this.options.stallTimeoutMs ?? DEFAULT_SOURCE_STALL_MS;
    const idleMs = this.options.idleTimeoutMs ?? DEFAULT_EXEC_IDLE_MS;
    this.stall = new StallWatch(stream, { timeoutMs: stallMs, label: 'command', logger, onStall: () => this.kill('stall') });
    while (!this.stopped.signal.aborted) {
      if (this.options.onDemand && stream.viewers === 0) {
        if (stream.sourceState === 'up' || this.starts === 0) stream.setSource({ up: true, idle: true });
        await waitForDemand(stream, this.stopped.signal);
        if (this.stopped.signal.aborted) break;
        logger.info(`stream ${stream.name}: someone asks for the stream; starting its command`);
      }
      const startedAt = performance.now();
      // Its own process group, so that stopping it also stops what the shell started.
      const child = spawn('sh', ['-c', this.command], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      this.child = child;
      this.killed = undefined;
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
      this.stall.arm();
      let idle: ReturnType<typeof setTimeout> | undefined;
      const onViewers = (count: number) => {
        clearTimeout(idle);
        idle = count === 0 ? setTimeout(() => this.kill('idle'), idleMs) : undefined;
      };
      if (this.options.onDemand) {
        stream.on('viewers', onViewers);
        onViewers(stream.viewers);
      }
      const pumped = pump(child.stdout!, stream, this.options, 'command');
      const [reason] = await Promise.all([exited, pumped]);
      this.stall.disarm();
      clearTimeout(idle);
      stream.off('viewers', onViewers);
      this.child = undefined;
      if (this.stopped.signal.aborted) break;
      if (this.killed === 'idle') {
        stream.setSource({ up: true, idle: true });
        logger.info(`stream ${stream.name}: nobody watched for ${idleMs / 1000} s; command stopped until someone asks for the stream`);
        backoff.reset();
        continue;
      }
      if (performance.now() - startedAt > RETRY_RESET_AFTER_MS) backoff.reset();
      const delay = backoff.next();
      const tail = stderr.length ? `; last output: ${stderr.join(' | ')}` : '';
      if (this.killed === 'stall') {
        // Stays `stalled` (logged once by the StallWatch) until the restarted command sends a frame.
        stream.setSource({ up: false, stalled: true, reason: `command sent no frame for ${stallMs / 1000} s; killed, restarting` });
        logger.info(`stream ${stream.name}: stalled command ${reason}${tail}; restarting in ${delay} ms`);
      } else {
        stream.setSource({ up: false, reason: `command ${reason}` });
        logger.warn('SP_ERR_SOURCE_FAILED', `stream ${stream.name}: command ${reason}${tail}; restarting in ${delay} ms`);
      }
      await pause(delay, this.stopped.signal);
    }
  }

  /** Ends the running command's process group: SIGTERM, then SIGKILL after 2 s if it is still there. */
  private kill(why: KillReason): void {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    this.killed ??= why;
    const group = -child.pid;
    const send = (signal: NodeJS.Signals) => { try { process.kill(group, signal); } catch { /* already gone */ } };
    send('SIGTERM');
    const killer = setTimeout(() => send('SIGKILL'), KILL_GRACE_MS);
    child.once('close', () => clearTimeout(killer));
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    this.kill('stop');
    await this.done;
  }
}
