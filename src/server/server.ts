import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { EventEmitter, setMaxListeners } from 'node:events';
import { basename } from 'node:path';
import { createBoundary } from '../protocol/boundary.ts';
import { isImageType } from '../protocol/content-type.ts';
import { MultipartFraming } from '../protocol/encoder.ts';
import { FolderCatalog, type FolderDocument } from '../sources/folder-catalog.ts';
import { playSlideshow } from '../sources/slideshow.ts';
import { NodeMultipartResponse, streamHeaders } from '../adapters/node-http.ts';
import { ServerPushError, type ServerPushErrorCode } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { ServerStatus } from './status.ts';
import { renderIndexPage } from './index-page.ts';

/** Options of {@link createServer}. */
export interface ServeOptions {
  /** The folder whose documents are pushed. */
  dir: string;
  /** TCP port; 0 picks a free one. @default 8080 */
  port?: number;
  /** Address to listen on. @default '127.0.0.1' */
  host?: string;
  /** Time between documents, in milliseconds. @default 5000 */
  intervalMs?: number;
  /** After the last document start again at the first, instead of ending the response. @default false */
  loop?: boolean;
  /** Documents larger than this are skipped with a warning. @default 16777216 (16 MiB) */
  maxPartBytes?: number;
  /** A client that has not taken a part for this long is dropped. @default 30000 */
  stallTimeoutMs?: number;
  /** The multipart boundary; random by default (190 bits). */
  boundary?: string;
  /** Where warnings and errors go. @default silent */
  logger?: Logger;
}

/** One part as it went out, emitted as `'part'` on the server. */
export interface PartEvent {
  client: number;
  name: string;
  contentType: string;
  bytes: number;
  /** `Date.now()` when the part's body was handed to the socket. */
  sentAt: number;
}

function parseTarget(url: string | undefined): { path: string; query: URLSearchParams } | undefined {
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

function countHeader(req: IncomingMessage, name: string): number {
  let n = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === name) n++;
  return n;
}

function typeFilter(only: string | null): ((contentType: string) => boolean) | undefined {
  if (!only) return undefined;
  const wanted = only.toLowerCase();
  if (wanted === 'image') return isImageType;
  return (contentType) => {
    const essence = contentType.split(';')[0]!.trim().toLowerCase();
    return essence === wanted || essence.startsWith(`${wanted}/`);
  };
}

/**
 * serverpush's HTTP server: pushes the documents of a folder to every client of `/stream`.
 * Emits `'part'` ({@link PartEvent}) for each part sent.
 */
export class ServerPushServer extends EventEmitter {
  readonly http: Server;
  readonly status = new ServerStatus();
  readonly framing: MultipartFraming;
  private readonly catalog: FolderCatalog;
  private readonly options: Required<Omit<ServeOptions, 'boundary' | 'logger'>>;
  private readonly logger: Logger;
  private readonly stop = new AbortController();
  private readonly streams = new Set<Promise<unknown>>();
  private clientIds = 0;

  constructor(catalog: FolderCatalog, framing: MultipartFraming, options: ServeOptions) {
    super();
    // Every stream listens for shutdown on this one signal: thousands of listeners are expected.
    setMaxListeners(0, this.stop.signal);
    this.catalog = catalog;
    this.framing = framing;
    this.logger = options.logger ?? silentLogger;
    this.options = {
      dir: options.dir,
      port: options.port ?? 8080,
      host: options.host ?? '127.0.0.1',
      intervalMs: options.intervalMs ?? 5000,
      loop: options.loop ?? false,
      maxPartBytes: options.maxPartBytes ?? 16 * 1024 * 1024,
      stallTimeoutMs: options.stallTimeoutMs ?? 30_000,
    };
    this.http = createHttpServer({ noDelay: true, requireHostHeader: true }, (req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        this.logger.error('SP_ERR_BAD_REQUEST', `request ${req.method} ${req.url} failed: ${(error as Error).stack ?? String(error)}`);
        if (!res.headersSent) this.fail(res, 500, 'SP_ERR_BAD_REQUEST', 'internal error');
        else res.destroy();
      });
    });
    this.http.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => this.clientError(error, socket));
  }

  /** Node's HTTP parser refused a request: answer it with a coded error instead of a bare 400. */
  private clientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    if (error.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
    const body = `${JSON.stringify({ error: 'SP_ERR_BAD_REQUEST', message: tooLarge ? 'request headers too large' : `malformed request (${error.code ?? 'parse error'})` })}\n`;
    socket.end(`HTTP/1.1 ${tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }

  /** Starts listening. Throws `SP_ERR_ADDRESS_IN_USE` when the port is taken. */
  async listen(): Promise<URL> {
    const { port, host } = this.options;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        this.http.off('listening', onListening);
        reject(error.code === 'EADDRINUSE'
          ? new ServerPushError('SP_ERR_ADDRESS_IN_USE', `port ${port} on ${host} is already in use; choose another with --port`, { cause: error })
          : new ServerPushError('SP_ERR_LISTEN', `cannot listen on ${host}:${port}: ${error.message}`, { cause: error }));
      };
      const onListening = () => {
        this.http.off('error', onError);
        resolve();
      };
      this.http.once('error', onError);
      this.http.once('listening', onListening);
      this.http.listen(port, host);
    });
    return this.url;
  }

  /** The server's base URL, e.g. `http://127.0.0.1:8080/`. */
  get url(): URL {
    const address = this.http.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return new URL(`http://${host}:${address.port}/`);
  }

  /**
   * Stops: refuses new connections, ends every stream with its closing delimiter, and after
   * `graceMs` cuts the connections that are still open.
   */
  async close(graceMs = 2000): Promise<void> {
    this.stop.abort();
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    const timer = setTimeout(() => this.http.closeAllConnections(), graceMs);
    await Promise.allSettled([...this.streams]);
    this.http.closeIdleConnections();
    await closed;
    clearTimeout(timer);
  }

  private fail(res: ServerResponse, status: number, code: ServerPushErrorCode, message: string, headers: Record<string, string> = {}): void {
    const body = `${JSON.stringify({ error: code, message })}\n`;
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...headers });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = parseTarget(req.url);
    if (!target) return this.fail(res, 400, 'SP_ERR_BAD_REQUEST', 'malformed request target');
    if (countHeader(req, 'host') > 1) return this.fail(res, 400, 'SP_ERR_BAD_REQUEST', 'more than one Host header');
    const route = target.path === '/' ? 'index' : target.path === '/stream' ? 'stream' : target.path === '/status' ? 'status' : undefined;
    if (!route) return this.fail(res, 404, 'SP_ERR_NOT_FOUND', `no such path; try / , /stream or /status`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return this.fail(res, 405, 'SP_ERR_METHOD_NOT_ALLOWED', `${req.method} is not allowed here`, { Allow: 'GET, HEAD' });
    }
    if (route === 'status') return this.sendStatus(res);
    if (route === 'index') return this.sendIndex(res);
    return this.stream(req, res, target.query);
  }

  private sendStatus(res: ServerResponse): void {
    const body = `${JSON.stringify(this.status.toJSON({ intervalSeconds: this.options.intervalMs / 1000, loop: this.options.loop, folder: { ...this.catalog.counters } }))}\n`;
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }

  private async sendIndex(res: ServerResponse): Promise<void> {
    const names = await this.catalog.list();
    const hasOtherDocuments = names.some((name) => !/\.(jpe?g|gif|png|svg|webp)$/i.test(name));
    const body = renderIndexPage({ title: basename(this.catalog.root), hasOtherDocuments });
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache' });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }

  private async stream(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    if (this.stop.signal.aborted) return this.fail(res, 503, 'SP_ERR_NO_DOCUMENTS', 'the server is shutting down');
    const accept = typeFilter(query.get('only'));
    const first = await this.catalog.next(undefined, false, accept);
    if (!first) {
      return this.fail(res, 503, 'SP_ERR_NO_DOCUMENTS', 'the folder holds no document that can be served yet', { 'Retry-After': String(Math.ceil(this.options.intervalMs / 1000)) });
    }
    if (req.method === 'HEAD') {
      // Node would hold the headers of an endless HEAD response until end(): answer them alone.
      res.writeHead(200, streamHeaders(this.framing.boundary));
      res.end();
      return;
    }
    const client = ++this.clientIds;
    const sink = new NodeMultipartResponse(req, res, this.status);
    this.status.clients++;
    this.status.clientsTotal++;
    sink.signal.addEventListener('abort', () => { this.status.clients--; }, { once: true });
    sink.start(this.framing.boundary);
    const played = playSlideshow(this.catalog, this.framing, sink, first, {
      intervalMs: this.options.intervalMs,
      loop: this.options.loop,
      stallTimeoutMs: this.options.stallTimeoutMs,
      stop: this.stop.signal,
      ...(accept ? { accept } : {}),
      onPart: (document: FolderDocument, sentAt: number) => {
        this.status.partsSent++;
        this.emit('part', { client, name: document.name, contentType: document.contentType, bytes: document.body.length, sentAt } satisfies PartEvent);
      },
    });
    this.streams.add(played);
    try {
      const end = await played;
      if (end === 'stalled') {
        this.status.droppedClients++;
        this.logger.warn('SP_ERR_SLOW_CLIENT', `dropped client ${client} (${req.socket.remoteAddress}): it took no data for ${this.options.stallTimeoutMs} ms`);
        sink.destroy();
      }
    } finally {
      this.streams.delete(played);
    }
  }
}

/**
 * Creates a server for a folder. Throws `SP_ERR_DIR_NOT_FOUND` or `SP_ERR_NOT_A_DIRECTORY` when
 * `dir` is not a folder. Call `listen()` to start it.
 */
export async function createServer(options: ServeOptions): Promise<ServerPushServer> {
  const framing = new MultipartFraming(options.boundary ?? createBoundary());
  const catalog = await FolderCatalog.open(options.dir, {
    framing,
    ...(options.maxPartBytes !== undefined ? { maxPartBytes: options.maxPartBytes } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  return new ServerPushServer(catalog, framing, options);
}
