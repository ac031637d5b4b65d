/**
 * The Redis bus (issue 14, docs/decisions/0020-redis-bus.md): frames of live streams travel
 * between serverpush processes over Redis pub/sub, each stream's newest frame is kept in a key
 * with a TTL for newcomers, and a lease per stream makes exactly one process run its source.
 * Loaded by the server only when `ServeOptions.redis` is given (a dynamic import).
 *
 * Keys and channels, for a stream NAME (`{NAME}` keeps a stream's keys in one Redis Cluster slot):
 *   PREFIX{NAME}:frames   channel: every frame, once (binary, src/bus/frame-codec.ts)
 *   PREFIX{NAME}:latest   string: the newest frame, same bytes, PX TTL refreshed by the owner
 *   PREFIX{NAME}:lease    string: the owner's token, SET NX PX, renewed and released by Lua
 *   PREFIX{NAME}:watchers sorted set: processes with viewers, scored by when their presence ends
 *   PREFIX{NAME}:down     string: why the source is down (set by its owner, cleared by the next frame)
 *   PREFIX ctl            channel: `demand NAME` (someone asked for a stream that pulls on demand),
 *                         `down NAME\nREASON` (its source went down)
 */
import { createClient, RESP_TYPES } from '@redis/client';
import { ServerPushError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { Secrets, redactUrl } from '../redact.ts';
import type { Source } from '../sources/source.ts';
import type { LiveStream } from '../hub/live-stream.ts';
import type { BusConnection, BusLink, BusRole, RedisBusOptions, StreamBus } from './bus-types.ts';
import { StreamLink } from './stream-link.ts';
import { newEpoch } from './frame-codec.ts';
import { DEFAULT_REDIS_LATEST_TTL_MS, DEFAULT_REDIS_LEASE_MS, DEFAULT_REDIS_MAX_FRAME_BYTES } from '../defaults.ts';

type Client = ReturnType<typeof createClient>;
type Argument = string | Buffer;

/**
 * SET latest + PUBLISH, one copy of the frame sent; refused (-1) when a lease token is given and
 * is not the owner's. A frame means the source is up: its down notice goes.
 */
const PUBLISH = `
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[4] then return -1 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[3])
return redis.call('PUBLISH', ARGV[1], ARGV[2])`;
/**
 * Renews the lease (and the TTLs of the latest frame and of a down notice) when it is still ours, or takes it again when
 * nobody holds it (a Redis restarted empty): 1; 0 when another process holds it.
 */
const RENEW = `
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
elseif holder ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return 1`;
/** Compare-and-delete: releases the lease only when it is ours. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;
/** Presence: ARGV[2] > 0 adds this process for that many ms, 0 removes it; answers how many processes have viewers. Redis's clock, not ours. */
const PRESENCE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl * 2)
elseif ttl == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return redis.call('ZCARD', KEYS[1])`;

const SCRIPTS = { PUBLISH, RENEW, RELEASE, PRESENCE } as const;
type ScriptName = keyof typeof SCRIPTS;

/** The Redis URL's parts as the client takes them (password apart). */
function clientOptions(url: string): { url: string; tls: boolean } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ServerPushError('SP_ERR_CONFIG', `redis: not a URL: ${JSON.stringify(redactUrl(url))}`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new ServerPushError('SP_ERR_CONFIG', `redis: the URL must be redis://HOST:PORT/DB or rediss://…, got ${redactUrl(parsed)}`);
  if (parsed.pathname !== '' && parsed.pathname !== '/' && !/^\/\d{1,2}$/.test(parsed.pathname)) throw new ServerPushError('SP_ERR_CONFIG', `redis: the database must be a number (redis://HOST:PORT/0), got ${JSON.stringify(parsed.pathname)}`);
  parsed.password = '';
  return { url: parsed.href, tls: parsed.protocol === 'rediss:' };
}

/** The Redis bus; make one with {@link RedisBus.connect}. */
export class RedisBus implements StreamBus, BusConnection {
  /** This process on the bus (presence entries, logs). */
  readonly nodeId = newEpoch();
  readonly maxFrameBytes: number;
  readonly leaseMs: number;
  readonly latestTtlMs: number;
  readonly logger: Logger;
  private readonly prefix: string;
  private readonly displayUrl: string;
  private readonly secrets = new Secrets();
  private readonly commands: Client;
  private readonly subscriber: Client;
  private readonly links = new Map<string, StreamLink>();
  private readonly shas = new Map<ScriptName, string>();
  private readonly readyListeners = new Set<() => void>();
  private closed = false;
  /** Both connections are up. */
  private commandsReady = false;
  private subscriberReady = false;
  private downSince: number | undefined = performance.now();
  /** Times the bus came back after it was lost. */
  reconnects = 0;
  /** When it last came back (performance.now()), or undefined. */
  reconnectedAt: number | undefined;
  private lastError: string | undefined;
  private warnedDown = false;

  private constructor(options: RedisBusOptions, logger: Logger) {
    const { url, tls } = clientOptions(options.url);
    this.logger = logger;
    this.displayUrl = redactUrl(url);
    this.secrets.add(options.password);
    this.prefix = options.prefix ?? 'serverpush:';
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_REDIS_MAX_FRAME_BYTES;
    this.leaseMs = options.leaseMs ?? DEFAULT_REDIS_LEASE_MS;
    this.latestTtlMs = options.latestTtlMs ?? DEFAULT_REDIS_LATEST_TTL_MS;
    const base = {
      url,
      ...(options.password !== undefined ? { password: options.password } : {}),
      socket: {
        ...(tls ? { tls: true as const } : {}),
        connectTimeout: 2000,
        // Quickly back, at most a second apart: viewers wait on it.
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1000),
      },
    };
    // Commands fail at once while Redis is away rather than queue a backlog of frames (latest wins).
    this.commands = createClient({ ...base, disableOfflineQueue: true, name: 'serverpush' });
    // The subscriber keeps its channels and subscribes them again on every reconnection (node-redis).
    this.subscriber = createClient({ ...base, name: 'serverpush-sub' });
    this.watch(this.commands, 'commands', (ready) => { this.commandsReady = ready; });
    this.watch(this.subscriber, 'subscriber', (ready) => { this.subscriberReady = ready; });
  }

  /**
   * Connects to Redis (waiting up to `waitMs` for it; the bus keeps trying in the background when
   * Redis is not there yet). Throws `SP_ERR_CONFIG` for a bad URL or a password Redis refuses.
   */
  static async connect(options: RedisBusOptions, logger: Logger = silentLogger, waitMs = 3000): Promise<RedisBus> {
    const bus = new RedisBus(options, logger);
    await bus.start(waitMs);
    return bus;
  }

  private async start(waitMs: number): Promise<void> {
    let authError: Error | undefined;
    const onError = (error: Error) => {
      if (/WRONGPASS|NOAUTH|invalid password|invalid username/i.test(error.message)) authError = error;
    };
    this.commands.on('error', onError);
    this.subscriber.on('error', onError);
    const connected = Promise.all([this.commands.connect(), this.subscriber.connect()]).then(() => true, () => false);
    const waited = await Promise.race([connected, new Promise<false>((resolve) => {
      const timer = setTimeout(resolve, waitMs, false);
      const check = setInterval(() => { if (authError) { clearTimeout(timer); clearInterval(check); resolve(false); } }, 20);
      void connected.then(() => { clearTimeout(timer); clearInterval(check); });
    })]);
    this.commands.off('error', onError);
    this.subscriber.off('error', onError);
    if (authError) {
      await this.close();
      throw new ServerPushError('SP_ERR_CONFIG', `redis: ${this.displayUrl} refused the credentials (${this.secrets.scrub(authError.message)}); give the password with --redis-password-file or SERVERPUSH_REDIS_PASSWORD`);
    }
    // Not awaited: with Redis not there yet it completes (and is restored after every reconnection) when it is.
    this.subscriber.subscribe(this.key('', 'ctl'), (message: string) => this.control(message)).catch(() => {});
    if (!waited) this.logger.warn('SP_ERR_BUS_DOWN', `redis: cannot reach ${this.displayUrl} yet (${this.lastError ?? 'no answer'}); serving local streams and trying again`);
  }

  /** Follows one connection's state: logs a loss once and the return, and tells the links. */
  private watch(client: Client, role: string, setReady: (ready: boolean) => void): void {
    client.on('ready', () => {
      setReady(true);
      if (role === 'commands') this.shas.clear();
      if (!this.connected) return;
      if (!this.wasUp) {
        this.wasUp = true;
        this.logger.info(`redis: connected to ${this.displayUrl} (bus of live streams; this process is ${this.nodeId})`);
      } else if (this.downSince !== undefined) {
        this.reconnects++;
        this.reconnectedAt = performance.now();
        this.logger.info(`redis: connected again to ${this.displayUrl} after ${Math.round(performance.now() - this.downSince)} ms; streams resume`);
      }
      this.downSince = undefined;
      this.warnedDown = false;
      for (const listener of this.readyListeners) listener();
    });
    const lost = (why: string) => {
      setReady(false);
      if (this.closed) return;
      this.downSince ??= performance.now();
      this.lastError = this.secrets.scrub(why);
      if (this.wasUp && !this.warnedDown) {
        this.warnedDown = true;
        this.logger.warn('SP_ERR_BUS_DOWN', `redis: lost ${this.displayUrl} (${this.lastError}); viewers keep their last frame, retrying`);
      }
    };
    client.on('error', (error: Error) => lost(`${role}: ${error.message}`));
    client.on('end', () => lost(`${role}: connection closed`));
    client.on('reconnecting', () => lost(this.lastError ?? `${role}: reconnecting`));
  }

  /** The bus was up once (a loss after that is warned of; a Redis not there at the start is warned of by start()). */
  private wasUp = false;

  /** Both connections are up. */
  get connected(): boolean {
    return this.commandsReady && this.subscriberReady;
  }

  /** Calls `listener` each time the bus is up again (after the first connection too). */
  onReady(listener: () => void): () => void {
    this.readyListeners.add(listener);
    return () => this.readyListeners.delete(listener);
  }

  /** `PREFIX{NAME}:what`, or `PREFIXwhat` for the bus's own keys. */
  key(stream: string, what: string): string {
    return stream === '' ? `${this.prefix}${what}` : `${this.prefix}{${stream}}:${what}`;
  }

  private async script(name: ScriptName, keys: string[], args: Argument[]): Promise<unknown> {
    let sha = this.shas.get(name);
    if (sha === undefined) {
      sha = String(await this.commands.sendCommand(['SCRIPT', 'LOAD', SCRIPTS[name]]));
      this.shas.set(name, sha);
    }
    try {
      return await this.commands.sendCommand(['EVALSHA', sha, String(keys.length), ...keys, ...args]);
    } catch (error) {
      if (!/NOSCRIPT/.test((error as Error).message)) throw error;
      this.shas.delete(name);
      return this.commands.sendCommand(['EVAL', SCRIPTS[name], String(keys.length), ...keys, ...args]);
    }
  }

  /** True when commands can be sent now. */
  get writable(): boolean {
    return this.commandsReady && !this.closed;
  }

  /** Publishes a frame and makes it the stream's latest: the number of subscribers reached, or -1 when `token` no longer holds the lease. */
  async publish(stream: string, message: Uint8Array, token: string): Promise<number> {
    const body = Buffer.from(message.buffer, message.byteOffset, message.byteLength);
    return Number(await this.script('PUBLISH', [this.key(stream, 'latest'), this.key(stream, 'lease'), this.key(stream, 'down')], [this.key(stream, 'frames'), body, String(this.latestTtlMs), token]));
  }

  /** The stream's latest frame, or undefined. */
  async latest(stream: string): Promise<Uint8Array | undefined> {
    const reply = await this.commands.sendCommand<Buffer | null>(['GET', this.key(stream, 'latest')], { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } });
    return reply === null ? undefined : new Uint8Array(reply.buffer, reply.byteOffset, reply.byteLength);
  }

  /** Takes the lease when nobody holds it. */
  async acquire(stream: string, token: string): Promise<boolean> {
    return String(await this.commands.sendCommand(['SET', this.key(stream, 'lease'), token, 'NX', 'PX', String(this.leaseMs)])) === 'OK';
  }

  /** Renews the lease (and the latest frame's TTL) if `token` still holds it. */
  async renew(stream: string, token: string): Promise<boolean> {
    return Number(await this.script('RENEW', [this.key(stream, 'lease'), this.key(stream, 'latest'), this.key(stream, 'down')], [token, String(this.leaseMs), String(this.latestTtlMs)])) === 1;
  }

  /** Refreshes the latest frame's TTL (a `local` stream's publisher). */
  async keepLatest(stream: string): Promise<void> {
    await this.commands.sendCommand(['PEXPIRE', this.key(stream, 'latest'), String(this.latestTtlMs)]);
  }

  async release(stream: string, token: string): Promise<void> {
    await this.script('RELEASE', [this.key(stream, 'lease')], [token]);
  }

  /** Marks this process as having viewers of `stream` for `ttlMs` (0: no longer; -1: only count). Answers how many processes have viewers. */
  async presence(stream: string, ttlMs: number): Promise<number> {
    return Number(await this.script('PRESENCE', [this.key(stream, 'watchers')], [this.nodeId, String(ttlMs)]));
  }

  /** The source of `stream` is down (`reason`, already free of secrets): a key for newcomers, a notice for the others. The next frame clears it. */
  async sourceDown(stream: string, reason: string): Promise<void> {
    await this.commands.sendCommand(['SET', this.key(stream, 'down'), reason, 'PX', String(this.latestTtlMs)]);
    await this.commands.sendCommand(['PUBLISH', this.key('', 'ctl'), `down ${stream}\n${reason}`]);
  }

  /** Why the source of `stream` is down, or undefined while it is up. */
  async downReason(stream: string): Promise<string | undefined> {
    const reply = await this.commands.sendCommand(['GET', this.key(stream, 'down')]);
    return reply === null || reply === undefined ? undefined : String(reply);
  }

  /** Tells the owner of `stream` that someone asked for it (wakes a source that pulls on demand). */
  async demand(stream: string): Promise<void> {
    await this.commands.sendCommand(['PUBLISH', this.key('', 'ctl'), `demand ${stream}`]);
  }

  async subscribe(stream: string, listener: (message: Buffer) => void): Promise<void> {
    await this.subscriber.subscribe(this.key(stream, 'frames'), listener, true);
  }

  /**
   * Removes `listener` alone: a stream's link replaced by a reload (a new link of the same name,
   * already subscribed) keeps its own subscription when the old one stops.
   */
  async unsubscribe(stream: string, listener: (message: Buffer) => void): Promise<void> {
    await this.subscriber.unsubscribe(this.key(stream, 'frames'), listener, true);
  }

  private control(message: string): void {
    const demand = /^demand (.+)$/.exec(message);
    if (demand) this.links.get(demand[1]!)?.remoteDemand();
    const down = /^down ([^\n]+)\n([\s\S]*)$/.exec(message);
    if (down) this.links.get(down[1]!)?.remoteDown(down[2]!);
  }

  /** An error of the bus as it may be logged (no password). */
  describe(error: unknown): string {
    return this.secrets.scrub(error instanceof Error ? error.message : String(error));
  }

  link(name: string, live: LiveStream, role: BusRole, source: Source | undefined, makeSource: () => Promise<Source | undefined>): BusLink {
    const link = new StreamLink(this, name, live, role, source, makeSource, () => {
      // A link stopped after a reload replaced it leaves its successor in place.
      if (this.links.get(name) === link) this.links.delete(name);
    }, () => this.links.set(name, link));
    return link;
  }

  toJSON(): Record<string, unknown> {
    return {
      type: 'redis',
      url: this.displayUrl,
      connected: this.connected,
      process: this.nodeId,
      reconnects: this.reconnects,
      ...(this.downSince !== undefined && !this.connected ? { downSeconds: Math.round(performance.now() - this.downSince) / 1000, error: this.lastError } : {}),
      maxFrameBytes: this.maxFrameBytes,
      streams: Object.fromEntries([...this.links].map(([name, link]) => [name, link.toJSON()])),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled([...this.links.values()].map((link) => link.stop()));
    this.closed = true;
    this.readyListeners.clear();
    await Promise.allSettled([closeClient(this.commands), closeClient(this.subscriber)]);
  }
}

/** Closes a client whatever its state (a client never connected has nothing to close). */
async function closeClient(client: Client): Promise<void> {
  if (!client.isOpen) return;
  try {
    await client.close();
  } catch {
    client.destroy();
  }
}
