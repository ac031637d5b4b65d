/**
 * The server's streams as a set that a reload can change while it serves (issue 13, reload
 * without drops): added streams start, removed ones end their viewers cleanly (the closing
 * delimiter), a stream whose source changed gets the new source while its viewers stay, a stream
 * changed otherwise (its type, boundary, limits) is replaced (its viewers end cleanly and
 * reconnect), and the viewers of unchanged streams see nothing. A new set that cannot be built is
 * refused whole (`SP_ERR_CONFIG`) and the running one kept.
 */
import { setMaxListeners } from 'node:events';
import { ServerPushError } from '../errors.ts';
import type { Endpoint, EndpointContext } from './http-util.ts';
import { createEndpoint, type EndpointResources } from './endpoints.ts';
import { LiveEndpoint } from './live-endpoint.ts';
import type { StreamSpec } from './stream-spec.ts';

/** What a reload did, by stream name. */
export interface StreamChanges {
  added: string[];
  removed: string[];
  /** The source changed: it was restarted, the viewers stayed. */
  restarted: string[];
  /** Changed otherwise: the stream was made anew, its viewers ended cleanly. */
  replaced: string[];
  unchanged: string[];
}

/** Options of a live stream itself: a change to one makes a new stream (not just a new source). */
const STREAM_KEYS = ['maxPartBytes', 'stallTimeoutMs', 'maxUnsentBytes', 'dropDuplicates', 'serveLastWhenDown', 'boundary'] as const;

/** A stream served as a live stream (one source, many viewers): every type but a per-client slideshow. */
function isLive(spec: StreamSpec): boolean {
  return spec.type !== 'slideshow' || spec.sync === true;
}

/** The spec as canonical JSON (keys sorted, at every depth), to tell a change. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().filter((key) => (value as Record<string, unknown>)[key] !== undefined).map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

interface Member {
  spec: StreamSpec;
  endpoint: Endpoint;
  start(): void;
  /** Ends this stream's slideshow clients (a per-stream shutdown); aborted too when the server stops. */
  stop: AbortController;
  detach(): void;
}

export interface StreamSetOptions {
  /** The server's shutdown. */
  stop: AbortSignal;
  context: Omit<EndpointContext, 'stop'>;
  resources: EndpointResources;
  /** Told of each endpoint made (metrics count its writes). */
  onEndpoint?: (endpoint: Endpoint) => void;
  /** Told when a reload restarted a stream's source. */
  onRestart?: (name: string) => void;
}

export class StreamSet {
  /** The endpoints served now, by name (the server's routes read it at each request). */
  readonly endpoints = new Map<string, Endpoint>();
  private readonly members = new Map<string, Member>();
  private running = false;
  /** Reloads run one after the other. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: StreamSetOptions) {}

  /** Builds the first streams (none started). Throws coded errors as `createEndpoint` does. */
  static async create(specs: Record<string, StreamSpec>, options: StreamSetOptions): Promise<StreamSet> {
    const set = new StreamSet(options);
    for (const [name, spec] of Object.entries(specs)) {
      const member = await set.build(name, spec);
      set.members.set(name, member);
      set.endpoints.set(name, member.endpoint);
    }
    return set;
  }

  /** Starts every stream's source (the server listens); later ones start as they are added. */
  start(): void {
    if (this.running) return;
    this.running = true;
    for (const member of this.members.values()) member.start();
  }

  /** The specs served now. */
  get specs(): Record<string, StreamSpec> {
    return Object.fromEntries([...this.members].map(([name, member]) => [name, member.spec]));
  }

  /**
   * Serves `specs` from now on (see the file's comment). Builds every new stream first: if one
   * cannot be built, throws `SP_ERR_CONFIG` (or the folder's code) and nothing changes.
   */
  apply(specs: Record<string, StreamSpec>, onSwap?: () => void): Promise<StreamChanges> {
    const run = this.queue.then(() => this.applyNow(specs, onSwap));
    this.queue = run.catch(() => {});
    return run;
  }

  /** `onSwap` is called once every new stream is built, just before the set served changes (nothing awaited between). */
  private async applyNow(specs: Record<string, StreamSpec>, onSwap?: () => void): Promise<StreamChanges> {
    if (Object.keys(specs).length === 0) throw new ServerPushError('SP_ERR_CONFIG', 'no stream to serve');
    const changes: StreamChanges = { added: [], removed: [], restarted: [], replaced: [], unchanged: [] };
    const built = new Map<string, Member>();
    try {
      for (const [name, spec] of Object.entries(specs)) {
        const old = this.members.get(name);
        if (old && canonical(old.spec) === canonical(spec)) {
          changes.unchanged.push(name);
          continue;
        }
        built.set(name, await this.build(name, spec));
        if (!old) changes.added.push(name);
        else if (isLive(old.spec) && isLive(spec) && old.endpoint instanceof LiveEndpoint && STREAM_KEYS.every((key) => canonical(old.spec[key]) === canonical(spec[key]))) changes.restarted.push(name);
        else changes.replaced.push(name);
      }
    } catch (error) {
      await Promise.allSettled([...built.values()].map((member) => this.retire(member)));
      throw error;
    }
    changes.removed = [...this.members.keys()].filter((name) => !(name in specs));
    onSwap?.();
    const retiring: Member[] = [];
    for (const name of changes.removed) {
      retiring.push(this.members.get(name)!);
      this.members.delete(name);
      this.endpoints.delete(name);
    }
    for (const name of [...changes.added, ...changes.replaced]) {
      const member = built.get(name)!;
      const old = this.members.get(name);
      if (old) retiring.push(old);
      this.members.set(name, member);
      this.endpoints.set(name, member.endpoint);
      if (this.running) member.start();
    }
    const restarts: Array<Promise<void>> = [];
    for (const name of changes.restarted) {
      const member = this.members.get(name)!;
      const fresh = built.get(name)!;
      const source = (fresh.endpoint as LiveEndpoint).detachSource();
      member.spec = fresh.spec;
      // The fresh endpoint (its unused LiveStream) is dropped; only its source is kept.
      fresh.detach();
      restarts.push((member.endpoint as LiveEndpoint).replaceSource(source).then(() => this.options.onRestart?.(name)));
    }
    await Promise.all([...restarts, ...retiring.map((member) => this.retire(member))]);
    return changes;
  }

  /** Stops every stream (the server stops). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.members.values()].map((member) => member.endpoint.close()));
  }

  private async build(name: string, spec: StreamSpec): Promise<Member> {
    const stop = new AbortController();
    // Every slideshow client of the stream listens for its end on this signal.
    setMaxListeners(0, stop.signal);
    const onServerStop = () => stop.abort();
    this.options.stop.addEventListener('abort', onServerStop, { once: true });
    if (this.options.stop.aborted) stop.abort();
    const detach = () => this.options.stop.removeEventListener('abort', onServerStop);
    try {
      const { endpoint, start } = await createEndpoint(name, spec, { ...this.options.context, stop: stop.signal }, this.options.resources);
      this.options.onEndpoint?.(endpoint);
      return { spec, endpoint, start, stop, detach };
    } catch (error) {
      detach();
      throw error;
    }
  }

  /** Ends a stream that is no longer served: its viewers end cleanly, its source stops. */
  private async retire(member: Member): Promise<void> {
    member.stop.abort();
    member.detach();
    await member.endpoint.close();
  }
}
