import type { ServeObserver, ViewerSession } from '../adapters/serve.ts';
import type { ViewerEnd } from '../hub/viewer.ts';

/**
 * What `GET /status` answers, and `server.status`: counters told by the serving path of every
 * viewer (its observer and totals), the uptime, and each stream's own document. Every time in it
 * is in seconds (timestamps are Unix seconds, as `X-Timestamp`).
 */
export class ServerStatus implements ServeObserver {
  private readonly startedAt = performance.now();
  private describeStreams: () => Record<string, unknown> = () => ({});
  /** Stream clients connected now (slideshow clients and live viewers). */
  clients = 0;
  /** Stream clients served since the start. */
  clientsTotal = 0;
  /** Parts written to stream clients. */
  partsSent = 0;
  /** Bytes written to stream clients. */
  bytesSent = 0;
  /** Stream clients dropped because their socket took nothing for the stall timeout (slideshows and live). */
  droppedClients = 0;

  private describeBus: (() => Record<string, unknown>) | undefined;

  /** Sets where `bus` comes from (the Redis bus, `--redis`); without one `/status` has no `bus`. */
  setBus(describe: () => Record<string, unknown>): void {
    this.describeBus = describe;
  }

  /** Sets where {@link streams} comes from (the server's endpoints). */
  setStreams(describe: () => Record<string, unknown>): void {
    this.describeStreams = describe;
  }

  /** Seconds since the server was created, to the hundredth. */
  get uptimeSeconds(): number {
    return Math.round((performance.now() - this.startedAt) / 10) / 100;
  }

  /** Each stream's document, by name (see the README, `GET /status`). */
  get streams(): Record<string, unknown> {
    return this.describeStreams();
  }

  started(_session: ViewerSession): void {
    this.clients++;
    this.clientsTotal++;
  }

  ended(_session: ViewerSession, reason: ViewerEnd): void {
    this.clients--;
    if (reason === 'stalled') this.droppedClients++;
  }

  /** The `/status` document. */
  toJSON() {
    return {
      clients: this.clients,
      clientsTotal: this.clientsTotal,
      partsSent: this.partsSent,
      bytesSent: this.bytesSent,
      droppedClients: this.droppedClients,
      uptimeSeconds: this.uptimeSeconds,
      streams: this.streams,
      ...(this.describeBus ? { bus: this.describeBus() } : {}),
    };
  }
}
