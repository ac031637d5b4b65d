import type { ServeObserver, ViewerSession } from '../adapters/serve.ts';
import type { ViewerEnd } from '../hub/viewer.ts';

/** Counters behind `GET /status`: told by the serving path of every viewer (its observer and totals). */
export class ServerStatus implements ServeObserver {
  private readonly startedAt = performance.now();
  clients = 0;
  clientsTotal = 0;
  partsSent = 0;
  bytesSent = 0;
  droppedClients = 0;

  started(_session: ViewerSession): void {
    this.clients++;
    this.clientsTotal++;
  }

  ended(_session: ViewerSession, reason: ViewerEnd): void {
    this.clients--;
    if (reason === 'stalled') this.droppedClients++;
  }

  toJSON(extra: Record<string, unknown> = {}) {
    return {
      clients: this.clients,
      clientsTotal: this.clientsTotal,
      partsSent: this.partsSent,
      bytesSent: this.bytesSent,
      droppedClients: this.droppedClients,
      uptimeSeconds: Math.round((performance.now() - this.startedAt) / 10) / 100,
      ...extra,
    };
  }
}
