import type { IncomingMessage, ServerResponse } from 'node:http';
export { sendBody, sendError } from '../adapters/node-http.ts';
import type { ServerPushErrorCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import { isImageType } from '../protocol/content-type.ts';

/** The path and query of a request target (origin form or absolute form), or undefined. */
export function parseTarget(url: string | undefined): { path: string; query: URLSearchParams } | undefined {
  if (!url) return undefined;
  let target = url;
  // Absolute form (RFC 9112 §3.2.2), as sent to proxies.
  if (/^https?:\/\//i.test(target)) {
    try {
      const parsed = new URL(target);
      target = parsed.pathname + parsed.search;
    } catch {
      return undefined;
    }
  }
  if (!target.startsWith('/')) return undefined;
  const q = target.indexOf('?');
  return q === -1
    ? { path: target, query: new URLSearchParams() }
    : { path: target.slice(0, q), query: new URLSearchParams(target.slice(q + 1)) };
}

export function countHeader(req: IncomingMessage, name: string): number {
  let n = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === name) n++;
  return n;
}

/** `?only=image|text|image/png`: a content-type filter, or undefined for all. */
export function typeFilter(only: string | null): ((contentType: string) => boolean) | undefined {
  if (!only) return undefined;
  const wanted = only.toLowerCase();
  if (wanted === 'image') return isImageType;
  return (contentType) => {
    const essence = contentType.split(';')[0]!.trim().toLowerCase();
    return essence === wanted || essence.startsWith(`${wanted}/`);
  };
}

/** What every endpoint of the server shares: counters, logger, shutdown. */
export interface EndpointContext {
  readonly counters: { clients: number; clientsTotal: number; partsSent: number; bytesSent: number; droppedClients: number };
  readonly logger: Logger;
  readonly stop: AbortSignal;
  /** Emits `'part'` on the server. */
  emitPart(event: { client: number; stream: string; name: string; contentType: string; bytes: number; sentAt: number }): void;
  nextClientId(): number;
}

/** One named stream's HTTP side. */
export interface Endpoint {
  readonly name: string;
  readonly kind: 'slideshow' | 'live';
  stream(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void>;
  snapshot(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** Image documents only? (for the index page's `<img>`) */
  previewQuery(): Promise<string>;
  toJSON(): Record<string, unknown>;
  close(): Promise<void>;
}
