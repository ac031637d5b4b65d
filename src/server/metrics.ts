/**
 * `GET /metrics`: the server's counters in the Prometheus text format (prom-client), one registry
 * per server so that two servers in one process do not clash. Node server only (not src/web.ts).
 *
 * Most values are read at scrape time from what the hub and the serving path count anyway
 * (LiveStream.counters, its subscribers' skips, each Viewer's parts and bytes), so that serving a
 * frame costs nothing more; the two histograms are kept in plain arrays here (a prom-client
 * histogram hashes its labels at every observation, too much at 10,000 viewers × 30 frames a
 * second) and written out as Prometheus histograms. No label is per viewer (cardinality): streams
 * by name, requests by route kind, drops and skips by reason.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { ServeObserver, ViewerSession, Refusal, StreamRequest } from '../adapters/serve.ts';
import type { Viewer, ViewerEnd } from '../hub/viewer.ts';
import type { Endpoint } from './http-util.ts';
import { LiveEndpoint } from './live-endpoint.ts';

/** Upper bounds (seconds) of the frame age at the socket write. */
export const FRAME_AGE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Upper bounds (seconds) of a new viewer's wait for its first frame. */
export const FIRST_FRAME_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Why a viewer was dropped, as `serverpush_viewers_dropped_total{reason}` says. */
const DROP_REASONS = ['stalled', 'limit', 'shutdown'] as const;

/** A histogram in plain numbers: counts per bucket (not cumulative), sum, count. */
class Buckets {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/** What the metrics keep of one stream (by name; kept after the stream is removed, so counters never go back). */
interface StreamTally {
  readonly viewers: Set<Viewer>;
  viewersTotal: number;
  /** Parts and bytes of the viewers that ended (those of the viewers now are read from them). */
  endedParts: number;
  endedBytes: number;
  readonly dropped: Record<(typeof DROP_REASONS)[number], number>;
  /** Sources restarted by a reload (the stream's spec changed). */
  restarts: number;
  readonly frameAge: Buckets;
  readonly firstFrame: Buckets;
}

/** The parts of the bus's `/status` document (src/bus/redis-bus.ts `toJSON`) that are metrics. */
interface BusStreamStatus {
  framesIn?: number;
  framesOut?: number;
  framesLost?: number;
  lagP99Ms?: number | null;
}
interface BusStatus {
  connected?: boolean;
  reconnects?: number;
  streams?: Record<string, BusStreamStatus>;
}

type Sample = { labels?: Record<string, string | number>; value: number; metricName?: string };

/** Counters of the server, and `/metrics`. */
export class ServerMetrics implements ServeObserver {
  readonly registry = new Registry();
  private readonly tallies = new Map<string, StreamTally>();
  private readonly requests = new Map<string, number>();
  private readonly authFailures = new Map<string, number>();
  private readonly refusals = new Map<string, number>();
  private bus: (() => BusStatus) | undefined;

  /** `endpoints`: the server's streams now (read at each scrape). */
  constructor(private readonly endpoints: () => ReadonlyMap<string, Endpoint>) {
    collectDefaultMetrics({ register: this.registry });
    // Gauges named like counters (promtool refuses them); the same counts are in nodejs_active_handles, _requests, _resources.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    const perStream = (read: (tally: StreamTally, endpoint: Endpoint | undefined) => number | undefined) => (): Sample[] => {
      const samples: Sample[] = [];
      for (const [stream, tally] of this.allTallies()) {
        const value = read(tally, this.endpoints().get(stream));
        if (value !== undefined) samples.push({ labels: { stream }, value });
      }
      return samples;
    };
    const liveOf = (endpoint: Endpoint | undefined) => (endpoint instanceof LiveEndpoint ? endpoint : undefined);
    this.define('serverpush_viewers', 'Viewers (stream clients) connected now.', 'gauge', perStream((tally) => tally.viewers.size));
    this.define('serverpush_viewers_total', 'Viewers served since the start.', 'counter', perStream((tally) => tally.viewersTotal));
    this.define('serverpush_frames_in_total', 'Frames (parts) a live stream accepted from its source.', 'counter', perStream((_, endpoint) => liveOf(endpoint)?.live.counters.partsIn));
    this.define('serverpush_frames_refused_total', 'Frames a live stream refused (too large, not a whole image, boundary in the body).', 'counter', perStream((_, endpoint) => liveOf(endpoint)?.live.counters.partsRefused));
    this.define('serverpush_frames_out_total', 'Frames (parts) written to viewers.', 'counter', perStream((tally) => tally.endedParts + sum(tally.viewers, (viewer) => viewer.partsSent)));
    this.define('serverpush_bytes_out_total', 'Bytes written to viewers (multipart framing included).', 'counter', perStream((tally) => tally.endedBytes + sum(tally.viewers, (viewer) => viewer.bytesSent)));
    this.define('serverpush_frames_skipped_total', 'Frames not sent: to a viewer that was busy (a newer one replaced it), held back by its ?fps cap, or dropped as a duplicate of the previous one.', 'counter', () => {
      const samples: Sample[] = [];
      for (const [stream, endpoint] of this.endpoints()) {
        if (!(endpoint instanceof LiveEndpoint)) continue;
        const { live } = endpoint;
        samples.push(
          { labels: { stream, reason: 'busy' }, value: live.subscriberHooks.partsSkippedBusy },
          { labels: { stream, reason: 'fps' }, value: live.subscriberHooks.partsSkippedFps },
          { labels: { stream, reason: 'duplicate' }, value: live.counters.duplicatesDropped },
        );
      }
      return samples;
    });
    this.define('serverpush_frames_superseded_total', 'Whole frames a pipe source read but did not push, a newer one having come with them.', 'counter', perStream((_, endpoint) => liveOf(endpoint)?.live.counters.framesSuperseded));
    this.define('serverpush_viewers_dropped_total', 'Viewers the server ended: stalled (took nothing for the stall timeout), limit (maximum session duration), shutdown (the server stopped or the stream was removed or replaced).', 'counter', () => {
      const samples: Sample[] = [];
      for (const [stream, tally] of this.allTallies()) for (const reason of DROP_REASONS) samples.push({ labels: { stream, reason }, value: tally.dropped[reason] });
      return samples;
    });
    this.define('serverpush_viewers_refused_total', 'Stream requests refused by the serving path, by error code (limits, no frame yet, source down, shutting down, bad ?fps).', 'counter', () => [...this.refusals].map(([key, value]) => {
      const [stream, code] = key.split('\n') as [string, string];
      return { labels: { stream, code }, value };
    }));
    this.define('serverpush_source_state', 'The state of a live stream\'s source: 1 for the state it is in (up: frames come; starting: no frame yet; idle: paused for want of viewers; stalled: no frame for its stall time; down), 0 for the others.', 'gauge', () => {
      const samples: Sample[] = [];
      for (const [stream, endpoint] of this.endpoints()) {
        if (!(endpoint instanceof LiveEndpoint)) continue;
        const state = endpoint.sourceState;
        for (const each of ['up', 'starting', 'idle', 'stalled', 'down'] as const) samples.push({ labels: { stream, state: each }, value: state === each ? 1 : 0 });
      }
      return samples;
    });
    this.define('serverpush_source_restarts_total', 'Times a stream\'s source was restarted because a reload changed it.', 'counter', perStream((tally, endpoint) => (liveOf(endpoint) ? tally.restarts : undefined)));
    this.define('serverpush_source_reconnects_total', 'Times an exec source restarted its command or a relay connected again to its upstream.', 'counter', perStream((_, endpoint) => {
      const connections = liveOf(endpoint)?.sourceConnections;
      return connections === undefined ? undefined : Math.max(0, connections - 1);
    }));
    this.defineHistogram('serverpush_frame_age_seconds', 'Age of a frame when it is written to a viewer\'s socket: from its arrival from the source (live streams).', (tally) => tally.frameAge);
    this.defineHistogram('serverpush_first_frame_seconds', 'Time from a new viewer\'s response head to its first frame written.', (tally) => tally.firstFrame);
    this.define('serverpush_http_requests_total', 'HTTP requests answered, by route kind and status (a stream counts when it ends).', 'counter', () => [...this.requests].map(([key, value]) => {
      const [route, status] = key.split(' ') as [string, string];
      return { labels: { route, status }, value };
    }));
    this.define('serverpush_auth_failures_total', 'Requests refused by access control, by reason.', 'counter', () => [...this.authFailures].map(([reason, value]) => ({ labels: { reason }, value })));
    // The Redis bus (--redis): no samples without one.
    const busStreams = (read: (stream: BusStreamStatus) => number | undefined) => (): Sample[] => {
      const samples: Sample[] = [];
      for (const [stream, status] of Object.entries(this.bus?.().streams ?? {})) {
        const value = read(status);
        if (typeof value === 'number') samples.push({ labels: { stream }, value });
      }
      return samples;
    };
    this.define('serverpush_bus_connected', 'With --redis: 1 while this process is connected to Redis, else 0.', 'gauge', () => {
      const bus = this.bus?.();
      return bus ? [{ value: bus.connected ? 1 : 0 }] : [];
    });
    this.define('serverpush_bus_reconnects_total', 'With --redis: times the connection to Redis was lost and made again.', 'counter', () => {
      const bus = this.bus?.();
      return bus ? [{ value: bus.reconnects ?? 0 }] : [];
    });
    this.define('serverpush_bus_frames_in_total', 'With --redis: frames of a stream received from the bus (published by another process).', 'counter', busStreams((stream) => stream.framesIn));
    this.define('serverpush_bus_frames_out_total', 'With --redis: frames of a stream this process published on the bus.', 'counter', busStreams((stream) => stream.framesOut));
    this.define('serverpush_bus_frames_lost_total', 'With --redis: frames missing between two received ones of the same publisher.', 'counter', busStreams((stream) => stream.framesLost));
    this.define('serverpush_bus_lag_p99_seconds', 'With --redis: 99th percentile of the time from a frame\'s publication to its delivery to this process\'s hub, over the recent frames.', 'gauge', busStreams((stream) => (typeof stream.lagP99Ms === 'number' ? stream.lagP99Ms / 1000 : undefined)));
  }

  /** Where the bus's figures come from (`--redis`): its `/status` document. */
  setBus(describe: () => Record<string, unknown>): void {
    this.bus = describe as () => BusStatus;
  }

  /** The `/metrics` document. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * Counts a request refused by access control (`reason`: e.g. `missing`, `bad_credentials`,
   * `forbidden`, `bad_signature`, `expired`). For the access-control check.
   */
  authFailure(reason: string): void {
    this.authFailures.set(reason, (this.authFailures.get(reason) ?? 0) + 1);
  }

  /** Counts an HTTP request answered, by route kind (not its path) and status. */
  request(route: string, status: number): void {
    const key = `${route} ${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  /** Starts counting a stream's writes (a new endpoint: at creation and at each reload). */
  attach(endpoint: Endpoint): void {
    const tally = this.tally(endpoint.name);
    if (endpoint instanceof LiveEndpoint) {
      endpoint.live.subscriberHooks.onWrite = (part) => tally.frameAge.observe((performance.now() - part.arrivedAt) / 1000);
    }
  }

  /** A reload restarted the source of `stream`. */
  sourceRestarted(stream: string): void {
    this.tally(stream).restarts++;
  }

  refused(stream: string, _request: StreamRequest, refusal: Refusal): void {
    const key = `${stream}\n${refusal.code}`;
    this.refusals.set(key, (this.refusals.get(key) ?? 0) + 1);
  }

  started(session: ViewerSession): void {
    const tally = this.tally(session.stream);
    tally.viewers.add(session.viewer);
    tally.viewersTotal++;
  }

  firstPart(session: ViewerSession): void {
    const { viewer } = session;
    if (viewer.firstPartAt !== undefined) this.tally(session.stream).firstFrame.observe((viewer.firstPartAt - viewer.startedAt) / 1000);
  }

  ended(session: ViewerSession, reason: ViewerEnd): void {
    const tally = this.tally(session.stream);
    const { viewer } = session;
    if (!tally.viewers.delete(viewer)) return;
    tally.endedParts += viewer.partsSent;
    tally.endedBytes += viewer.bytesSent;
    if (reason === 'stalled' || reason === 'limit' || reason === 'shutdown') tally.dropped[reason]++;
  }

  private tally(stream: string): StreamTally {
    let tally = this.tallies.get(stream);
    if (!tally) {
      tally = { viewers: new Set(), viewersTotal: 0, endedParts: 0, endedBytes: 0, dropped: { stalled: 0, limit: 0, shutdown: 0 }, restarts: 0, frameAge: new Buckets(FRAME_AGE_BUCKETS), firstFrame: new Buckets(FIRST_FRAME_BUCKETS) };
      this.tallies.set(stream, tally);
    }
    return tally;
  }

  /** Every stream served now, and those that were (their counters stay). */
  private allTallies(): Map<string, StreamTally> {
    for (const name of this.endpoints().keys()) this.tally(name);
    return this.tallies;
  }

  /**
   * Registers a metric whose samples are read at scrape time: prom-client's registry takes any
   * object with a `get()` answering its name, help, type and samples (as its own metrics do).
   */
  private define(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', read: () => Sample[]): void {
    this.registry.registerMetric({ name, help, type, get: () => ({ name, help, type, values: read(), aggregator: 'sum' }) } as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  private defineHistogram(name: string, help: string, buckets: (tally: StreamTally) => Buckets): void {
    this.define(name, help, 'histogram', () => {
      const samples: Sample[] = [];
      for (const [stream, tally] of this.allTallies()) {
        const histogram = buckets(tally);
        let cumulative = 0;
        histogram.bounds.forEach((bound, i) => {
          cumulative += histogram.counts[i]!;
          samples.push({ metricName: `${name}_bucket`, labels: { stream, le: bound }, value: cumulative });
        });
        samples.push({ metricName: `${name}_bucket`, labels: { stream, le: '+Inf' }, value: histogram.count });
        samples.push({ metricName: `${name}_sum`, labels: { stream }, value: histogram.sum });
        samples.push({ metricName: `${name}_count`, labels: { stream }, value: histogram.count });
      }
      return samples;
    });
  }
}

function sum<T>(items: Iterable<T>, value: (item: T) => number): number {
  let total = 0;
  for (const item of items) total += value(item);
  return total;
}
