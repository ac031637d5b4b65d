/**
 * One live stream joined to the Redis bus (issue 14, decision 0020). It runs in place of the
 * stream's own source ({@link BusLink} is a {@link Source}):
 *
 * - **publishing**: every part the stream accepts from its source in this process goes on the bus
 *   once (latest wins: at most one publish in flight per stream, a newer part replaces a waiting
 *   one; nothing is queued while Redis is away);
 * - **the lease** (role `leased`): the process holding the stream's lease runs the source; the
 *   others try to take it every tick, so an owner that dies is replaced within about `leaseMs`;
 *   an owner that finds the lease held by another stops its source (while Redis is unreachable
 *   it keeps it running for its own viewers);
 * - **subscribing**: while this process has viewers (and a little after), and does not run the
 *   source, it subscribes to the stream's channel and pushes each frame into its own hub, so its
 *   viewers are served exactly as those of a local stream; a newcomer or a (re)subscription reads
 *   the latest-frame key first;
 * - **presence**: a process with viewers says so in Redis, so that the owner's source sees
 *   viewers (a relay or an on-demand command pulls while some process has viewers).
 */
import type { LiveStream } from '../hub/live-stream.ts';
import type { EncodedPart } from '../hub/encoded-part.ts';
import type { Source } from '../sources/source.ts';
import type { BusConnection, BusLink, BusRole } from './bus-types.ts';
import { decodeBusFrame, encodeBusFrame, newEpoch, type BusFrame } from './frame-codec.ts';
import { LagMeter } from './lag-meter.ts';
import { sourceView } from './source-view.ts';
import { isServerPushError } from '../errors.ts';
import { BUS_TICK_MS, BUS_SUBSCRIPTION_LINGER_MS, BUS_PREPARE_WAIT_MS } from '../defaults.ts';

export class StreamLink implements BusLink {
  /** Frames this process put on the bus, and those it got from it (pushed into its hub). */
  readonly counters = {
    framesOut: 0,
    framesIn: 0,
    /** Frames never put on the bus: larger than the bus's limit. */
    framesTooLarge: 0,
    /** Parts not published because a newer one came while the previous publish was in flight (latest wins). */
    framesCoalesced: 0,
    /** Parts not published because Redis was away. */
    framesUnsent: 0,
    /** Frames missing between two received ones of the same publisher (seq gaps). */
    framesLost: 0,
    /** Frames older than the one the hub already has (a latest-key read that crossed a newer message). */
    framesStale: 0,
    /** Times this process took the lease (ran the source). */
    leasesTaken: 0,
    leasesLost: 0,
  };
  private readonly lag = new LagMeter();
  private live: LiveStream | undefined;
  private readonly stopping = new AbortController();
  /** This link's own listener on the stream's channel (node-redis resubscribes it after a reconnect). */
  private readonly listener = (message: Buffer): void => this.receive(message, true);
  /** The lease token of this process for this stream. */
  private readonly token = newEpoch();
  /** The publishing run: a new epoch each time this process starts publishing. */
  private epoch = newEpoch();
  private seq = 0;
  private owning = false;
  private lastRenewed = 0;
  private running: Source | undefined;
  private spare: Source | undefined;
  private ticking: ReturnType<typeof setInterval> | undefined;
  private busy = false;
  private publishing = false;
  private waiting: EncodedPart | undefined;
  /** True while a frame of the bus is pushed into the hub (it must not be published again). */
  private ingesting = false;
  private subscribed = false;
  private subscribing: Promise<void> | undefined;
  private linger: ReturnType<typeof setTimeout> | undefined;
  private lastIn: { epoch: string; seq: number; publishedAt: number } | undefined;
  /** Processes with viewers of this stream, this one included (from Redis). */
  private watchingProcesses = 0;
  private readonly viewerListeners = new Set<(count: number) => void>();
  private shownViewers = 0;
  private lastDemand = 0;
  private warnedTooLarge: number | undefined;
  private offReady: (() => void) | undefined;
  /** Removes this link's listeners from the stream (at stop). */
  private offLive: (() => void) | undefined;

  constructor(
    private readonly bus: BusConnection,
    readonly name: string,
    live: LiveStream,
    readonly role: BusRole,
    source: Source | undefined,
    private readonly makeSource: () => Promise<Source | undefined>,
    /** Told when the link has stopped (the bus forgets it). */
    private readonly onStopped: () => void = () => {},
    /** Told when the link starts (the bus knows it from then on: a link built by a reload that was refused never replaces the running one). */
    private readonly onStarted: () => void = () => {},
  ) {
    this.live = live;
    this.spare = source;
  }

  start(live: LiveStream): void {
    this.live = live;
    this.onStarted();
    const onPart = (part: EncodedPart) => this.onPart(part);
    const onViewers = (count: number) => this.onViewers(count);
    const onDemand = () => this.onDemand();
    live.on('part', onPart);
    live.on('viewers', onViewers);
    live.on('demand', onDemand);
    // A link stopped by a reload that gave the stream a new one must not go on publishing its parts.
    this.offLive = () => {
      live.off('part', onPart);
      live.off('viewers', onViewers);
      live.off('demand', onDemand);
    };
    this.offReady = this.bus.onReady(() => void this.resync());
    if (this.role === 'local') {
      // Frames come from this process (push, stdin): it publishes whatever it gets.
      this.running = this.spare;
      this.spare = undefined;
      this.running?.start(live);
    }
    this.ticking = setInterval(() => void this.tick(), BUS_TICK_MS);
    this.ticking.unref?.();
    void this.tick().then(() => this.checkDown());
  }

  /** The number of viewers the source is shown: this process's, plus one per other process with viewers. */
  private get globalViewers(): number {
    const local = this.live?.viewers ?? 0;
    return local + Math.max(0, this.watchingProcesses - (local > 0 ? 1 : 0));
  }

  private showViewers(): void {
    const count = this.globalViewers;
    if (count === this.shownViewers) return;
    this.shownViewers = count;
    for (const listener of [...this.viewerListeners]) listener(count);
  }

  /** The stream as the owner's source sees it (src/bus/source-view.ts). */
  private sourceView(live: LiveStream): LiveStream {
    return sourceView(live, {
      viewers: () => this.globalViewers,
      viewerListeners: this.viewerListeners,
      stateChanged: () => this.announceState(),
    });
  }

  // ---- publishing -------------------------------------------------------------------------

  private onPart(part: EncodedPart): void {
    if (this.ingesting) return;
    if (this.role === 'leased' && !this.owning) return;
    if (part.body.length > this.bus.maxFrameBytes) {
      this.counters.framesTooLarge++;
      const now = performance.now();
      if (this.warnedTooLarge === undefined || now - this.warnedTooLarge > 10_000) {
        this.warnedTooLarge = now;
        this.bus.logger.warn('SP_ERR_BUS_FRAME_TOO_LARGE', `stream ${this.name}: a frame of ${part.body.length} bytes is over the bus's ${this.bus.maxFrameBytes}-byte limit (--redis-max-frame-bytes); served here only, not to other processes (${this.counters.framesTooLarge} so far)`);
      }
      return;
    }
    if (!this.bus.writable) {
      this.counters.framesUnsent++;
      return;
    }
    if (this.publishing) {
      if (this.waiting) this.counters.framesCoalesced++;
      this.waiting = part;
      return;
    }
    void this.publish(part);
  }

  private async publish(part: EncodedPart): Promise<void> {
    this.publishing = true;
    let next: EncodedPart | undefined = part;
    while (next) {
      const frame: BusFrame = { epoch: this.epoch, seq: ++this.seq, contentType: next.contentType, timestamp: next.timestamp, publishedAt: Date.now(), body: next.body };
      next = undefined;
      try {
        const reached = await this.bus.publish(this.name, encodeBusFrame(frame), this.role === 'leased' ? this.token : '');
        if (reached === -1) {
          await this.lose('another process holds the lease');
          break;
        }
        this.counters.framesOut++;
      } catch (error) {
        if (isServerPushError(error)) this.bus.logger.warn(error.code, `stream ${this.name}: not put on the bus: ${error.message}`);
        else this.counters.framesUnsent++;
      }
      next = this.waiting;
      this.waiting = undefined;
    }
    this.publishing = false;
  }

  // ---- the lease, presence, and the periodic work -------------------------------------------

  private async tick(): Promise<void> {
    if (this.busy || this.stopping.signal.aborted) return;
    this.busy = true;
    try {
      if (this.role === 'leased') await this.leaseTick();
      else if (this.seq > 0 && this.bus.writable) await this.bus.keepLatest(this.name).catch(() => {});
      await this.presenceTick();
    } finally {
      this.busy = false;
    }
  }

  private async leaseTick(): Promise<void> {
    if (this.owning) {
      let renewed: boolean | undefined;
      try {
        renewed = await this.bus.renew(this.name, this.token);
      } catch {
        renewed = undefined;
      }
      // Redis unreachable (renewed undefined): the source goes on for this process's viewers. No
      // other process can take the lease meanwhile unless it reaches Redis when this one cannot (a
      // partition); then both pull until this one is back and finds the lease taken (decision 0020).
      if (renewed === true) this.lastRenewed = performance.now();
      else if (renewed === false) await this.lose('another process holds the lease');
      return;
    }
    if (!this.bus.writable) return;
    // Just after Redis came back (perhaps restarted empty), the owner before the outage renews
    // its lease first (within a tick): the source does not move for an outage.
    if (this.bus.reconnectedAt !== undefined && performance.now() - this.bus.reconnectedAt < 2 * BUS_TICK_MS) return;
    let taken = false;
    try {
      taken = await this.bus.acquire(this.name, this.token);
    } catch {
      return;
    }
    if (taken && !this.stopping.signal.aborted) await this.take();
  }

  /** This process took the lease: it runs the source (and no longer subscribes). */
  private async take(): Promise<void> {
    this.owning = true;
    this.lastRenewed = performance.now();
    this.counters.leasesTaken++;
    this.epoch = newEpoch();
    this.seq = 0;
    this.lastIn = undefined;
    this.waiting = undefined;
    const live = this.live!;
    this.bus.logger.info(`stream ${this.name}: this process runs the source (it holds the lease)`);
    await this.updateSubscription();
    let source = this.spare;
    this.spare = undefined;
    if (!source) {
      try {
        source = await this.makeSource();
      } catch (error) {
        this.bus.logger.error('SP_ERR_SOURCE_FAILED', `stream ${this.name}: cannot make the source again: ${this.bus.describe(error)}`);
        await this.lose('the source could not be made');
        return;
      }
    }
    if (!this.owning || this.stopping.signal.aborted) {
      this.spare = source;
      return;
    }
    this.running = source;
    this.showViewers();
    source?.start(this.sourceView(live));
  }

  /** This process no longer holds the lease: it stops the source and follows the bus instead. */
  private async lose(why: string): Promise<void> {
    if (!this.owning) return;
    this.owning = false;
    this.counters.leasesLost++;
    const running = this.running;
    this.running = undefined;
    if (!this.stopping.signal.aborted) this.bus.logger.warn('SP_ERR_LEASE_LOST', `stream ${this.name}: stopped the source here: ${why}; frames now come from the bus`);
    this.viewerListeners.clear();
    await running?.stop().catch(() => {});
    await this.updateSubscription();
  }

  private async presenceTick(): Promise<void> {
    if (!this.bus.writable) return;
    const local = this.live?.viewers ?? 0;
    try {
      // A process with viewers renews its presence; the owner of a leased source reads everyone's.
      if (local > 0) this.watchingProcesses = await this.bus.presence(this.name, this.bus.leaseMs);
      else if (this.owning) this.watchingProcesses = await this.bus.presence(this.name, -1);
    } catch {
      return;
    }
    if (this.owning) this.showViewers();
  }

  // ---- viewers, demand and the subscription -------------------------------------------------

  private onViewers(count: number): void {
    if (count > 0) {
      clearTimeout(this.linger);
      this.linger = undefined;
      if (count === 1 && this.role === 'leased' && !this.owning) void this.sendDemand();
      if (count === 1 && this.bus.writable) void this.bus.presence(this.name, this.bus.leaseMs).catch(() => 0);
    } else if (!this.linger) {
      // Nobody watches here any more (the owner's source may idle), but stay subscribed a little:
      // a viewer that reconnects finds the stream fresh.
      if (this.bus.writable) void this.bus.presence(this.name, 0).catch(() => 0);
      this.linger = setTimeout(() => {
        this.linger = undefined;
        void this.updateSubscription();
      }, BUS_SUBSCRIPTION_LINGER_MS);
      this.linger.unref?.();
    }
    if (this.owning) this.showViewers();
    void this.updateSubscription();
  }

  /** Someone asked for the stream here (liveRefusal): the owner of a source that pulls on demand hears of it. */
  private onDemand(): void {
    if (this.role === 'leased' && !this.owning) void this.sendDemand();
  }

  private async sendDemand(): Promise<void> {
    const now = performance.now();
    if (now - this.lastDemand < 500 || !this.bus.writable) return;
    this.lastDemand = now;
    await this.bus.demand(this.name).catch(() => {});
  }

  /** The owner's source went down: the other processes' streams go down too (new viewers get 503 as with a local stream). */
  announceState(): void {
    const state = this.live?.source;
    if (!state || state.up || !this.owning || !this.bus.writable) return;
    void this.bus.sourceDown(this.name, state.reason).catch(() => {});
  }

  /** The owner (another process) says its source is down. */
  remoteDown(reason: string): void {
    if (!this.owning && this.live && this.role === 'leased') this.live.setSource({ up: false, reason });
  }

  /** The owner heard that another process was asked for the stream. */
  remoteDemand(): void {
    if (this.owning) this.live?.demand();
  }

  private get wantsFrames(): boolean {
    if (this.stopping.signal.aborted || this.owning) return false;
    return (this.live?.viewers ?? 0) > 0 || this.linger !== undefined;
  }

  private async updateSubscription(): Promise<void> {
    if (this.subscribing) await this.subscribing.catch(() => {});
    if (this.wantsFrames === this.subscribed) return;
    const task = this.wantsFrames ? this.subscribe() : this.unsubscribe();
    this.subscribing = task;
    try {
      await task;
    } finally {
      if (this.subscribing === task) this.subscribing = undefined;
    }
  }

  private async subscribe(): Promise<void> {
    this.subscribed = true;
    // node-redis keeps the listener and subscribes it again after every reconnection.
    await this.bus.subscribe(this.name, this.listener).catch(() => {});
    await this.catchUp();
  }

  private async unsubscribe(): Promise<void> {
    this.subscribed = false;
    await this.bus.unsubscribe(this.name, this.listener).catch(() => {});
  }

  /** Reads the latest-frame key: a newcomer's first frame, and what was missed while not subscribed. */
  private async catchUp(): Promise<void> {
    if (!this.bus.writable) return;
    let message: Uint8Array | undefined;
    try {
      message = await this.bus.latest(this.name);
    } catch {
      return;
    }
    if (message) this.receive(message, false);
    await this.checkDown();
  }

  /** Reads whether the owner's source is down (a notice this process may have missed: it started or reconnected after it). */
  private async checkDown(): Promise<void> {
    if (this.role !== 'leased' || this.owning || !this.bus.writable) return;
    const down = await this.bus.downReason(this.name).catch(() => undefined);
    if (down !== undefined && !this.owning) this.live?.setSource({ up: false, reason: down });
  }

  /** The bus is (back) up: the subscription was restored by the client; catch up with the newest frame. */
  private async resync(): Promise<void> {
    if (this.subscribed) await this.catchUp();
    else await this.checkDown();
    await this.tick();
  }

  /** Another process runs the source (this one holds no lease and is not the publisher of a local stream). */
  get following(): boolean {
    return this.role === 'leased' && !this.owning && !this.stopping.signal.aborted;
  }

  /** Resolves once a request for the stream can get the newest frame on the bus (bounded wait). */
  async prepare(): Promise<void> {
    if (this.owning || this.role === 'local' && this.running) return;
    if (this.subscribed && this.lastIn) return;
    if (!this.bus.writable) return;
    // A request is coming: subscribe now (it lingers if the request is refused or only a snapshot).
    this.onViewers(this.live?.viewers ?? 0);
    const ready = (async () => {
      await this.updateSubscription();
      if (!this.lastIn) await this.catchUp();
    })();
    await Promise.race([ready, new Promise((resolve) => setTimeout(resolve, BUS_PREPARE_WAIT_MS).unref?.())]);
  }

  private receive(message: Uint8Array, live: boolean): void {
    if (!this.live || this.stopping.signal.aborted) return;
    if (this.owning && this.role === 'leased') return;
    let frame: BusFrame;
    try {
      frame = decodeBusFrame(message);
    } catch (error) {
      this.bus.logger.warn('SP_ERR_BUS_BAD_FRAME', `stream ${this.name}: ${this.bus.describe(error)}`);
      return;
    }
    if (frame.epoch === this.epoch && this.seq > 0) return; // our own
    const last = this.lastIn;
    if (last) {
      const stale = frame.epoch === last.epoch ? frame.seq <= last.seq : frame.publishedAt < last.publishedAt;
      if (stale) {
        if (!live) this.counters.framesStale++;
        return;
      }
      if (frame.epoch === last.epoch && frame.seq > last.seq + 1 && live) this.counters.framesLost += frame.seq - last.seq - 1;
    }
    if (frame.body.length > this.bus.maxFrameBytes) {
      this.counters.framesTooLarge++;
      return;
    }
    this.lastIn = { epoch: frame.epoch, seq: frame.seq, publishedAt: frame.publishedAt };
    if (live) this.lag.add(Math.max(0, Date.now() - frame.publishedAt));
    this.ingesting = true;
    try {
      this.live.push({ contentType: frame.contentType, body: frame.body, timestamp: frame.timestamp });
      this.counters.framesIn++;
    } catch (error) {
      if (isServerPushError(error)) this.bus.logger.warn(error.code, `stream ${this.name}: a frame from the bus was refused: ${error.message}`);
    } finally {
      this.ingesting = false;
    }
  }

  // ---- status and stop ---------------------------------------------------------------------

  toJSON(): Record<string, unknown> {
    return {
      role: this.role,
      // leased: this process holds the lease and runs the source; local: it has published frames.
      owner: this.role === 'leased' ? this.owning : this.seq > 0,
      subscribed: this.subscribed,
      processesWithViewers: this.watchingProcesses,
      lagMs: this.lag.last,
      lagP99Ms: this.lag.p99,
      lagMaxMs: this.lag.max,
      ...this.counters,
      ...(this.running?.toJSON ? { source: this.running.toJSON() } : {}),
    };
  }

  /** Stops the source (if this process runs it), releases the lease and the presence, unsubscribes. */
  async stop(): Promise<void> {
    if (this.stopping.signal.aborted) return;
    this.stopping.abort();
    // Never started (built by a reload that was refused): it holds nothing in Redis, and must not
    // clear the presence that the running link of the same stream keeps for this process.
    if (!this.offLive) return this.onStopped();
    clearInterval(this.ticking);
    clearTimeout(this.linger);
    this.linger = undefined;
    this.offReady?.();
    this.offLive?.();
    const running = this.running;
    this.running = undefined;
    await running?.stop().catch(() => {});
    if (this.bus.writable) {
      if (this.owning) await this.bus.release(this.name, this.token).catch(() => {});
      await this.bus.presence(this.name, 0).catch(() => 0);
    }
    this.owning = false;
    if (this.subscribed) await this.unsubscribe();
    this.onStopped();
  }
}
