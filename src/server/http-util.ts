import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError } from '../adapters/node-http.ts';
export { sendBody, sendError } from '../adapters/node-http.ts';
import type { Refusal, Servable } from '../adapters/serve.ts';
import { isImageType } from '../protocol/content-type.ts';

/** Answers a refusal of the serving path as a coded JSON error. */
export function sendRefusal(res: ServerResponse, refusal: Refusal): void {
  sendError(res, refusal.status, refusal.code, refusal.message, { ...refusal.headers });
}

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

/** What every endpoint of the server shares: shutdown, slideshow part events, client ids. */
export interface EndpointContext {
  readonly stop: AbortSignal;
  /** Emits `'part'` on the server. */
  emitPart(event: { client: number; stream: string; name: string; contentType: string; bytes: number; sentAt: number }): void;
  nextClientId(): number;
}

/** One named stream's HTTP side: what the routes, the index page and the viewer need of it. */
export interface Endpoint {
  readonly name: string;
  readonly kind: 'slideshow' | 'live';
  /** What the index page calls it (a slideshow: its folder's name; a live stream: its name). */
  readonly title: string;
  /** The stream starts again after its end (a looping slideshow, every live stream): the viewer reconnects when it ends. */
  readonly loop: boolean;
  /** What `GET /stream…` serves, through the one serving path. */
  readonly servable: Servable;
  snapshot(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** The query of the index page's `<img>` preview (e.g. image documents only). */
  previewQuery(): string;
  /** True when the stream carries (of the types `accept` lets through) parts an `<img>` cannot show. */
  hasNonImages(accept?: (contentType: string) => boolean): Promise<boolean>;
  /** True when an `<img>` of the stream (with its `previewQuery()`) shows it. */
  previewsAsImage(): Promise<boolean>;
  toJSON(): Record<string, unknown>;
  close(): Promise<void>;
}
