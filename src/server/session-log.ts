import type { ServeObserver, ViewerSession } from '../adapters/serve.ts';
import type { ViewerEnd } from '../hub/viewer.ts';
import { logEvent, type Logger } from '../log.ts';

/**
 * One log line per viewer session, at its end (issue 13): `event: "session"`, the stream, the
 * client's address, the user access control let in (if any), its user agent, how long it lasted,
 * the frames and bytes it got, the frames it skipped, and why it ended (`disconnected`,
 * `finished`, `stalled`, `shutdown`, `limit`). Never the query (a signed link's signature).
 */
export class SessionLog implements ServeObserver {
  constructor(private readonly logger: Logger) {}

  ended(session: ViewerSession, reason: ViewerEnd): void {
    const { viewer, request } = session;
    const durationMs = Math.round(performance.now() - viewer.startedAt);
    const client = request.remoteAddress ?? 'unknown';
    logEvent(this.logger, 'info', `stream ${session.stream}: viewer ${client} left after ${(durationMs / 1000).toFixed(1)} s (${reason}), ${viewer.partsSent} frames`, {
      event: 'session',
      stream: session.stream,
      client,
      user: request.user ?? null,
      userAgent: request.userAgent ?? null,
      durationMs,
      frames: viewer.partsSent,
      bytes: viewer.bytesSent,
      skipped: viewer.partsSkipped,
      reason,
    });
  }
}
