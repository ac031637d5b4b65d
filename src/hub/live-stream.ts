import { Emitter } from './emitter.ts';
import { createBoundary } from '../protocol/boundary.ts';
import { MultipartFraming, formatTimestamp } from '../protocol/encoder.ts';
import { imageProblem } from '../protocol/image-check.ts';
import { ServerPushError, LimitExceededError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { redactUrlsIn } from '../redact.ts';
import { encodePart, type EncodedPart, type LivePart } from './encoded-part.ts';
import { Subscriber, type SubscriberHooks } from './subscriber.ts';
import { Viewer, type MultipartSink } from './viewer.ts';
import { DEFAULT_MAX_PART_BYTES, DEFAULT_LIVE_STALL_TIMEOUT_MS } from '../defaults.ts';

export interface LiveStreamOptions {
  /** Shown in logs and `/status`. @default 'default' */
  name?: string;
  /** The multipart boundary; random by default. */
  boundary?: string;
  /** Parts larger than this are refused. @default {@link DEFAULT_MAX_PART_BYTES} (16 MiB) */
  maxPartBytes?: number;
  /** Drop a part whose body is identical to the previous one. @default false */
  dropDuplicates?: boolean;
  /** Refuse image parts that are not whole images of their type (see imageProblem). @default true */
  checkImages?: boolean;
  /** A viewer whose socket takes nothing for this long is dropped. @default {@link DEFAULT_LIVE_STALL_TIMEOUT_MS} (30 s) */
  stallTimeoutMs?: number;
  /** While the source is down, new viewers get the last part instead of 503. @default false */
  serveLastWhenDown?: boolean;
  /**
   * Bytes the kernel may queue unsent for one viewer's socket (TCP_NOTSENT_LOWAT), applied by the
   * Node adapter; 0 leaves the kernel's default. @default 131072 (128 KiB)
   */
  maxUnsentBytes?: number;
  logger?: Logger;
}

export interface SubscribeOptions {
  /** Eager framing (next part's headers early), for browsers' `<img>`. @default false */
  eager?: boolean;
  /** Most parts per second for this viewer; 0 = every part. @default 0 */
  maxFps?: number;
}

/**
 * What the source of a live stream is doing. Up, or up but `idle` (paused on purpose: a relay or an
 * on-demand command nobody watches; its latest part may be old); down with a reason, or down because
 * it `stalled` (running but no frame for its stall timeout).
 */
export type SourceState = { up: true; idle?: boolean } | { up: false; reason: string; stalled?: boolean };

/** The source's state as `/status` shows it. */
export type SourceStateName = 'up' | 'idle' | 'down' | 'stalled';

/**
 * A live stream: one source, many viewers. Keeps the latest part, encodes each part once and
 * writes the same bytes to every viewer; a new viewer gets the latest part at once. Emits
 * `'part'` (EncodedPart) after each accepted part and `'viewers'` (count) when viewers come and go.
 */
/** The events of a {@link LiveStream}. */
export interface LiveStreamEvents extends Record<string, unknown[]> {
  /** A part was accepted. */
  part: [EncodedPart];
  /** Viewers came or went: how many there are now. */
  viewers: [number];
  /** Someone asked for the stream (see {@link LiveStream.demand}). */
  demand: [];
}

export class LiveStream extends Emitter<LiveStreamEvents> {
  readonly name: string;
  readonly framing: MultipartFraming;
  /** `framesSuperseded`: whole frames a pipe source read but did not push, a newer one having come with them (latest wins). */
  readonly counters = { partsIn: 0, partsRefused: 0, duplicatesDropped: 0, framesSuperseded: 0, viewersTotal: 0, viewersDropped: 0 };
  /**
   * Parts its viewers skipped, by reason (`partsSkippedBusy`, `partsSkippedFps`), and `onWrite`,
   * told of every part written to a viewer (the server's metrics set it). Shared by its subscribers.
   */
  readonly subscriberHooks: SubscriberHooks = { partsSkippedBusy: 0, partsSkippedFps: 0, onWrite: undefined };
  private latestPart: EncodedPart | undefined;
  private readonly subscribers = new Set<Subscriber>();
  private readonly options: Required<Omit<LiveStreamOptions, 'name' | 'boundary' | 'logger' | 'maxUnsentBytes'>>;
  /** See {@link LiveStreamOptions.maxUnsentBytes}; undefined: the adapter's default. */
  readonly maxUnsentBytes: number | undefined;
  private readonly logger: Logger;
  private state: SourceState = { up: true };
  private seq = 0;

  constructor(options: LiveStreamOptions = {}) {
    super();
    this.name = options.name ?? 'default';
    this.framing = new MultipartFraming(options.boundary ?? createBoundary());
    this.logger = options.logger ?? silentLogger;
    this.maxUnsentBytes = options.maxUnsentBytes;
    this.options = {
      maxPartBytes: options.maxPartBytes ?? DEFAULT_MAX_PART_BYTES,
      dropDuplicates: options.dropDuplicates ?? false,
      checkImages: options.checkImages ?? true,
      stallTimeoutMs: options.stallTimeoutMs ?? DEFAULT_LIVE_STALL_TIMEOUT_MS,
      serveLastWhenDown: options.serveLastWhenDown ?? false,
    };
  }

  /** The latest part, or undefined before the first. */
  get latest(): EncodedPart | undefined {
    return this.latestPart;
  }

  get viewers(): number {
    return this.subscribers.size;
  }

  get source(): SourceState {
    return this.state;
  }

  /**
   * Publishes a part to every viewer. Throws a coded error when the part is refused:
   * `SP_ERR_PART_TOO_LARGE`, `SP_ERR_INVALID_FRAME` (empty, or not a whole image of its type),
   * `SP_ERR_BOUNDARY_IN_BODY`, `SP_ERR_INVALID_PART` (a content type that cannot be a header
   * value). Returns false when it was dropped as a duplicate.
   */
  push(part: LivePart): boolean {
    if (this.options.dropDuplicates && this.latestPart && sameBytes(this.latestPart.body, part.body)) {
      this.counters.duplicatesDropped++;
      return false;
    }
    let encoded: EncodedPart;
    try {
      this.check(part);
      encoded = encodePart(this.framing, part, this.seq + 1);
    } catch (error) {
      this.counters.partsRefused++;
      throw error;
    }
    this.seq++;
    this.latestPart = encoded;
    this.counters.partsIn++;
    if (!this.state.up || this.state.idle) this.setSource({ up: true });
    for (const subscriber of this.subscribers) subscriber.offer(encoded);
    this.emit('part', encoded);
    return true;
  }

  private check(part: LivePart): void {
    if (part.body.length > this.options.maxPartBytes) {
      throw new LimitExceededError('SP_ERR_PART_TOO_LARGE', `part of ${part.body.length} bytes is over the ${this.options.maxPartBytes}-byte limit`, this.options.maxPartBytes);
    }
    if (part.body.length === 0) throw new ServerPushError('SP_ERR_INVALID_FRAME', 'empty part');
    if (this.options.checkImages) {
      const problem = imageProblem(part.contentType, part.body);
      if (problem) throw new ServerPushError('SP_ERR_INVALID_FRAME', `${problem} (${part.body.length} bytes)`);
    }
    this.framing.assertSafeBody(part.body);
  }

  /** Marks the source up or down (shown in `/status`; decides what new viewers get). */
  setSource(given: SourceState): void {
    // The reason is shown in /status and in 503 bodies: no `user:password@` of a URL in it, whatever the source quoted.
    const state: SourceState = given.up ? given : { ...given, reason: redactUrlsIn(given.reason) };
    const changed = state.up !== this.state.up;
    this.state = state;
    // A stall is logged by its source, with its code (SP_ERR_SOURCE_STALLED); a pause by the source that pauses.
    if (changed && this.sourceState !== 'stalled') this.logger.info(`stream ${this.name}: source ${state.up ? 'up' : `down: ${state.reason}`}`);
  }

  /** `up`, `idle`, `down` or `stalled` (see {@link SourceState}). */
  get sourceState(): SourceStateName {
    if (this.state.up) return this.state.idle ? 'idle' : 'up';
    return this.state.stalled ? 'stalled' : 'down';
  }

  /**
   * Why a new viewer cannot be served now (`SP_ERR_NO_FRAME`, `SP_ERR_SOURCE_DOWN`), or
   * undefined when it can.
   */
  unavailable(): ServerPushError | undefined {
    if (!this.state.up && !(this.options.serveLastWhenDown && this.latestPart)) {
      return new ServerPushError('SP_ERR_SOURCE_DOWN', `the source of stream ${this.name} is down: ${this.state.reason}`);
    }
    if (!this.latestPart) return new ServerPushError('SP_ERR_NO_FRAME', `stream ${this.name} has no frame yet`);
    return undefined;
  }

  /** A viewer whose sink takes nothing for this long is dropped. */
  get stallTimeoutMs(): number {
    return this.options.stallTimeoutMs;
  }

  /**
   * Adds a viewer; it gets the latest part at once. Removed when its signal aborts. Give a
   * {@link Viewer} (the serving path makes one, with its own stall handling and counters) or a bare
   * {@link MultipartSink}, wrapped in a Viewer with this stream's stall timeout.
   */
  subscribe(target: Viewer | MultipartSink, options: SubscribeOptions = {}): Subscriber {
    const viewer = target instanceof Viewer ? target : new Viewer(target, { stallTimeoutMs: this.options.stallTimeoutMs });
    const subscriber = new Subscriber(viewer, this.framing, { eager: options.eager ?? false, maxFps: options.maxFps ?? 0 }, this.subscriberHooks);
    this.subscribers.add(subscriber);
    this.counters.viewersTotal++;
    const leave = () => {
      this.subscribers.delete(subscriber);
      if (viewer.endReason === 'stalled') this.counters.viewersDropped++;
      this.emit('viewers', this.subscribers.size);
    };
    if (viewer.signal.aborted) leave();
    else viewer.signal.addEventListener('abort', leave, { once: true });
    this.emit('viewers', this.subscribers.size);
    if (this.latestPart) subscriber.offer(this.latestPart);
    return subscriber;
  }

  /**
   * Someone asked for this stream (a viewer or a snapshot), even if it could not be served yet:
   * a paused source (an idle relay) takes it as a reason to start pulling. Emits `'demand'`.
   */
  demand(): void {
    this.emit('demand');
  }

  /**
   * Ends every viewer's response (server shutdown): cleanly, with the latest part and the closing
   * delimiter (see Subscriber.end), or at once with `{ drop: true }`.
   */
  closeViewers(options: { drop?: boolean } = {}): void {
    for (const subscriber of this.subscribers) {
      if (options.drop) subscriber.viewer.close('shutdown');
      else subscriber.end(this.latestPart);
    }
  }

  toJSON() {
    return {
      name: this.name,
      viewers: this.subscribers.size,
      source: this.sourceState,
      ...(this.state.up ? {} : { sourceError: this.state.reason }),
      // Seconds, as everywhere in /status: `timestamp` is the part's X-Timestamp (Unix seconds, microseconds), `ageSeconds` how old it is now.
      latest: this.latestPart
        ? {
            contentType: this.latestPart.contentType,
            bytes: this.latestPart.body.length,
            timestamp: Number(formatTimestamp(this.latestPart.timestamp)),
            ageSeconds: Math.max(0, Math.round(Date.now() - this.latestPart.timestamp)) / 1000,
          }
        : null,
      ...this.counters,
      partsSkippedBusy: this.subscriberHooks.partsSkippedBusy,
      partsSkippedFps: this.subscriberHooks.partsSkippedFps,
    };
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
