/**
 * What serverpush does to be run as a service (issue 13), beside the serving path: `/metrics`,
 * `/healthz`, `/readyz`, the viewer limits, one log line per session, and HTTP requests counted by
 * route kind. The server holds one {@link Operations}; its logic lives in metrics.ts, limits.ts,
 * session-log.ts and here.
 */
import type { ServerResponse } from 'node:http';
import type { ServeHooks, ServeObserver } from '../adapters/serve.ts';
import type { Logger } from '../log.ts';
import type { Endpoint } from './http-util.ts';
import { sendBody } from './http-util.ts';
import { LiveEndpoint } from './live-endpoint.ts';
import { ServerMetrics } from './metrics.ts';
import { httpServerLimits, resolveLimits, ViewerLimits, type ServerLimits } from './limits.ts';
import { SessionLog } from './session-log.ts';
import { DEFAULT_SOURCE_START_GRACE_MS } from '../defaults.ts';

/** Tells every observer, in order. */
export function combineObservers(...observers: ServeObserver[]): ServeObserver {
  return {
    refused: (stream, request, refusal) => { for (const observer of observers) observer.refused?.(stream, request, refusal); },
    started: (session) => { for (const observer of observers) observer.started?.(session); },
    firstPart: (session) => { for (const observer of observers) observer.firstPart?.(session); },
    ended: (session, reason) => { for (const observer of observers) observer.ended?.(session, reason); },
  };
}

/** The kind of a route, as `serverpush_http_requests_total{route}` says (never the raw path). */
export type RouteKind = 'stream' | 'snapshot' | 'index' | 'status' | 'viewer' | 'metrics' | 'healthz' | 'readyz' | 'redirect' | 'not_found' | 'other';

export interface OperationsOptions {
  limits?: ServerLimits | undefined;
  /** `/readyz`: a source with no frame yet is ready for this long after its start. @default 10000 */
  sourceStartGraceMs?: number | undefined;
  logger: Logger;
}

export class Operations {
  readonly metrics: ServerMetrics;
  readonly limits: ViewerLimits;
  private readonly sessionLog: SessionLog;
  private readonly graceMs: number;

  constructor(private readonly endpoints: () => ReadonlyMap<string, Endpoint>, options: OperationsOptions) {
    this.metrics = new ServerMetrics(endpoints);
    this.limits = new ViewerLimits(resolveLimits(options.limits));
    this.sessionLog = new SessionLog(options.logger);
    this.graceMs = options.sourceStartGraceMs ?? DEFAULT_SOURCE_START_GRACE_MS;
  }

  /** What Node's HTTP server is given (request head size, slowloris timeouts). */
  get httpOptions(): ReturnType<typeof httpServerLimits> {
    return httpServerLimits(this.limits.current);
  }

  /** `base` (the server's own hooks) with the limits' admission and every observer added. */
  hooks(base: ServeHooks & { observer: ServeObserver }): ServeHooks {
    return { ...base, admit: this.limits.admit, observer: combineObservers(this.limits, base.observer, this.metrics, this.sessionLog) };
  }

  /**
   * Counts the request once it is answered (`serverpush_http_requests_total`); call the function
   * returned with its route kind once known (else `not_found`).
   */
  trackRequest(res: ServerResponse): (kind: RouteKind) => void {
    let kind: RouteKind = 'not_found';
    res.once('close', () => this.metrics.request(kind, res.statusCode));
    return (known) => { kind = known; };
  }

  /**
   * `/metrics`; with `mayReadStream`, the series of streams the client may not read are left out
   * (a stream's name is never disclosed to someone who may not read it, as in `/status`).
   */
  async sendMetrics(res: ServerResponse, mayReadStream?: (name: string) => boolean): Promise<void> {
    const text = await this.metrics.text();
    sendBody(res, 200, this.metrics.contentType, mayReadStream ? withoutHiddenStreams(text, mayReadStream) : text);
  }

  /** `/healthz`: the process is alive and answers. */
  sendHealth(res: ServerResponse): void {
    sendBody(res, 200, 'application/json; charset=utf-8', `${JSON.stringify({ status: 'ok' })}\n`);
  }

  /**
   * `/readyz`: 200 when the server listens and every stream's source is up (or within its start
   * grace); else 503 with the streams that are not ready and why (those the client may not read
   * only counted, as `otherStreamsNotReady`).
   */
  sendReady(res: ServerResponse, listening: boolean, mayReadStream: (name: string) => boolean = () => true): void {
    const notReady: Record<string, string> = {};
    let others = 0;
    for (const [name, endpoint] of this.endpoints()) {
      const reason = endpoint instanceof LiveEndpoint ? endpoint.notReady(this.graceMs) : undefined;
      // A stream the client may not read is counted, not named (access control: names cannot be probed).
      if (reason !== undefined && mayReadStream(name)) notReady[name] = reason;
      else if (reason !== undefined) others++;
    }
    const ready = listening && Object.keys(notReady).length === 0 && others === 0;
    const body = ready ? { status: 'ready' } : { status: 'not ready', ...(listening ? {} : { listening: false }), streams: notReady, ...(others > 0 ? { otherStreamsNotReady: others } : {}) };
    sendBody(res, ready ? 200 : 503, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`, ready ? {} : { 'Retry-After': '1' });
  }
}

/** The exposition `text` without the samples labelled with a stream that `mayReadStream` refuses. */
export function withoutHiddenStreams(text: string, mayReadStream: (name: string) => boolean): string {
  return text
    .split('\n')
    .filter((line) => {
      if (line.startsWith('#')) return true;
      // Stream names are [A-Za-z0-9._-]: no escapes inside the label's quotes.
      const stream = /[{,]stream="([^"]*)"/.exec(line);
      return !stream || mayReadStream(stream[1]!);
    })
    .join('\n');
}
