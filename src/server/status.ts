/** Counters behind `GET /status`. */
export class ServerStatus {
  private readonly startedAt = performance.now();
  clients = 0;
  clientsTotal = 0;
  partsSent = 0;
  bytesSent = 0;
  droppedClients = 0;

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
