import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { EventEmitter, setMaxListeners } from 'node:events';
import { ServerPushError } from '../errors.ts';
import type { ServeOptions } from './serve-options.ts';
import { redactingLogger, silentLogger, type Logger } from '../log.ts';
import type { LiveStream } from '../hub/live-stream.ts';
import { ServerStatus } from './status.ts';
import { renderIndexPage } from './index-page.ts';
import { ViewerRoutes, indexEntries, normalizeCors } from './viewer-routes.ts';
import { countHeader, parseTarget, sendBody, sendError, sendRefusal, type Endpoint, type EndpointContext } from './http-util.ts';
import { LiveEndpoint } from './live-endpoint.ts';
import type { StreamSpec } from './stream-spec.ts';
import { serveNode } from '../adapters/node-http.ts';
import type { ServeHooks } from '../adapters/serve.ts';
import type { StreamBus } from '../bus/bus-types.ts';
import { DEFAULT_BACKLOG, DEFAULT_CLOSE_GRACE_MS, DEFAULT_HOST, DEFAULT_PORT } from '../defaults.ts';
import { Operations } from './operations.ts';
import { Router, normalizeBasePath, routeKind } from './router.ts';
import { resolveLimits, type ServerLimits } from './limits.ts';
import type { ServerMetrics } from './metrics.ts';
import { StreamSet, type StreamChanges } from './stream-set.ts';
import { createAccessPolicy, type AccessPolicy } from './access/policy.ts';
import { AccessGuard, isRefusal, resourceOf, type Admitted, type GuardRequest, type RequestOrigin } from './access/guard.ts';
import { redactRequestUrl, redactTarget } from '../redact.ts';
import { isValidHost } from './host-header.ts';
import { certificateSummary, exposedWithoutProtection, loadTlsMaterial, plainTransport, secureTransport, type CertificateInfo, type TlsFiles, type TlsMaterial, type Transport } from './tls.ts';

export type { ServeOptions, PartEvent } from './serve-options.ts';

/** serverpush's HTTP server: routes, status, shutdown, and the streams it serves. */
export class ServerPushServer extends EventEmitter {
  /** The listening server: `node:http`'s, or with `tls` a `node:http2` secure server (HTTP/2 and HTTP/1.1). */
  readonly http: Server | Http2SecureServer;
  /**
   * What `/status` shows: `clients`, `clientsTotal`, `partsSent`, `bytesSent`, `droppedClients`,
   * `uptimeSeconds`, `streams` (`JSON.stringify(server.status)` is the `/status` document).
   */
  readonly status: ServerStatus;
  private readonly endpoints: Map<string, Endpoint>;
  private readonly starters: Array<() => void>;
  private readonly options: { port: number; host: string; backlog: number };
  /** What a request names, below `basePath` (router.ts). */
  private readonly router: Router;
  private readonly logger: Logger;
  private readonly stop: AbortController;
  private readonly viewer: ViewerRoutes;
  /** What every stream request passes through (adapters/serve.ts): shutdown, counters, logs. */
  private readonly serveHooks: ServeHooks;
  /** The one access check of every request (access/guard.ts); its policy can be swapped with {@link setAccess}. */
  private readonly guard: AccessGuard;
  private started = false;
  /** Metrics, limits, health and session logs (operations.ts). */
  private readonly ops: Operations;
  /** Open stream sessions, checked again when the access policy changes (a revoked client is cut). */
  private readonly sessions = new Set<{ from: RequestOrigin; request: Omit<GuardRequest, 'streams'>; res: ServerResponse }>();
  /** The streams, changed by {@link applyStreams}. */
  private readonly streams: StreamSet | undefined;

  private readonly transport: Transport;
  private readonly tlsFiles: TlsFiles | undefined;
  /** The warning for a server reachable unprotected from other machines (logged once, at listen). */
  private readonly exposure: string | undefined;

  /** The bus the live streams are shared on (`ServeOptions.redis`), closed after the streams. */
  readonly bus: StreamBus | undefined;

  /** Use {@link createServer}. */
  constructor(endpoints: Map<string, Endpoint>, starters: Array<() => void>, stop: AbortController, status: ServerStatus, options: ServeOptions, access: AccessPolicy, streams?: StreamSet, tls?: TlsMaterial, bus?: StreamBus) {
    super();
    this.bus = bus;
    if (bus) status.setBus(() => bus.toJSON());
    this.status = status;
    this.endpoints = endpoints;
    status.setStreams(() => Object.fromEntries([...endpoints].map(([name, endpoint]) => [name, endpoint.toJSON()])));
    this.starters = starters;
    this.stop = stop;
    this.logger = options.logger ?? silentLogger;
    this.options = { port: options.port ?? DEFAULT_PORT, host: options.host ?? DEFAULT_HOST, backlog: options.backlog ?? DEFAULT_BACKLOG };
    this.router = new Router(options.basePath, () => this.streamNames);
    this.streams = streams;
    this.ops = new Operations(() => this.endpoints, { limits: options.limits, sourceStartGraceMs: options.sourceStartGraceMs, logger: this.logger });
    for (const endpoint of endpoints.values()) this.ops.metrics.attach(endpoint);
    if (bus) this.ops.metrics.setBus(() => bus.toJSON());
    this.serveHooks = this.ops.hooks({ stop: stop.signal, observer: status, totals: status, logger: this.logger });
    access.checkStreams([...endpoints.keys()]);
    this.guard = new AccessGuard(access, this.logger);
    this.viewer = new ViewerRoutes(endpoints, options.cors === undefined ? undefined : normalizeCors(options.cors));
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((error: unknown) => {
        // Logged once, with its stack; the client learns only that it was our fault.
        this.logger.error('SP_ERR_INTERNAL', `request ${req.method} ${redactRequestUrl(req.url)} failed: ${(error as Error).stack ?? String(error)}`);
        if (!res.headersSent) sendError(res, 500, 'SP_ERR_INTERNAL', 'internal error');
        else res.destroy();
      });
    };
    // HTTPS (HTTP/2 by ALPN, HTTP/1.1 kept) or plain HTTP: the same routes either way (tls.ts).
    this.transport = tls ? secureTransport(tls, handler, this.ops.httpOptions) : plainTransport(handler, this.ops.httpOptions);
    this.tlsFiles = options.tls;
    this.exposure = exposedWithoutProtection({ host: this.options.host, tls: options.tls, htpasswd: options.access?.htpasswd, tokens: options.access?.tokens ?? options.access?.tokensFile ?? options.access?.jwt });
    this.http = this.transport.server;
    this.http.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => this.clientError(error, socket));
  }

  /** The live stream named `name` (e.g. to `push()` frames into a `push` stream). */
  live(name = 'default'): LiveStream {
    const endpoint = this.endpoints.get(name);
    if (!(endpoint instanceof LiveEndpoint)) throw new ServerPushError('SP_ERR_UNKNOWN_STREAM', `no live stream named ${JSON.stringify(name)}`);
    return endpoint.live;
  }

  /** The server's Prometheus metrics (`GET /metrics`); access control counts its refusals with `metrics.authFailure(reason)`. */
  get metrics(): ServerMetrics {
    return this.ops.metrics;
  }

  /**
   * Serves `specs` from now on, without dropping anyone: added streams start, removed ones end
   * their viewers cleanly, a stream whose source changed restarts it (its viewers stay), one
   * changed otherwise is made anew, unchanged ones are not touched. A set that cannot be built is
   * refused whole with a coded error (`SP_ERR_CONFIG`, `SP_ERR_DIR_NOT_FOUND`…), the running one kept.
   */
  async applyStreams(specs: Record<string, StreamSpec>): Promise<StreamChanges> {
    if (!this.streams) throw new ServerPushError('SP_ERR_CONFIG', 'this server cannot change its streams');
    return this.streams.apply(specs);
  }

  /**
   * A new config: its streams ({@link applyStreams}), its viewer limits and session duration, and
   * its access policy (checked against the new streams before anything changes).
   */
  async reload(config: { streams: Record<string, StreamSpec>; limits?: ServerLimits; access?: AccessPolicy }): Promise<StreamChanges> {
    // The limits given are the whole set (what the config no longer sets is back to its default);
    // the request-head limits stay as the server started (they apply from the next start).
    const current = this.ops.limits.current;
    const limits = config.limits === undefined ? current : resolveLimits({ ...config.limits, maxHeaderBytes: current.maxHeaderBytes, headersTimeoutMs: current.headersTimeoutMs, requestTimeoutMs: current.requestTimeoutMs });
    config.access?.checkStreams(Object.keys(config.streams));
    if (!this.streams) throw new ServerPushError('SP_ERR_CONFIG', 'this server cannot change its streams');
    // The new policy and limits take effect with the new streams, not after the old sources have
    // stopped: a stream added with access rules is never served under the old policy.
    return this.streams.apply(config.streams, () => {
      this.ops.limits.set(limits);
      if (config.access) this.putPolicy(config.access);
    });
  }

  /**
   * Puts another access policy in force (made by `createAccessPolicy`, e.g. after the config file
   * changed); requests that come next are checked against it. Counts of failed authentications are
   * kept. Throws `SP_ERR_CONFIG` when it names a stream the server does not have.
   */
  setAccess(policy: AccessPolicy): void {
    policy.checkStreams(this.streamNames);
    this.putPolicy(policy);
  }

  /** Puts `policy` in force and ends the open stream sessions it no longer admits (a user, token, scope or address revoked). */
  private putPolicy(policy: AccessPolicy): void {
    this.guard.setPolicy(policy);
    for (const session of this.sessions) {
      void this.guard.check(session.from, { ...session.request, streams: this.streamNames }, { recheck: true }).then((answer) => {
        // A password check that could not run now (busy) is no refusal.
        if (!isRefusal(answer) || answer.code === 'SP_ERR_AUTH_BUSY' || this.guard.current !== policy) return;
        this.logger.info(`access: ended a session of ${redactTarget(session.request.path, session.request.query)}: the new access policy refuses it (${answer.code})`);
        session.res.destroy();
      }, () => {});
    }
  }

  /** The access policy in force. */
  get access(): AccessPolicy {
    return this.guard.current;
  }

  /** Names of the streams served. */
  get streamNames(): string[] {
    return [...this.endpoints.keys()];
  }

  /** Node's HTTP parser refused a request: answer it with a coded error instead of a bare 400. */
  private clientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    // A failed TLS handshake has no HTTP to answer.
    if (error.code === 'ECONNRESET' || !socket.writable || error.code?.startsWith('ERR_SSL')) return void socket.destroy();
    const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
    // headersTimeout / requestTimeout (limits.ts): the request did not come in time (slowloris).
    const late = error.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const body = `${JSON.stringify(late ? { error: 'SP_ERR_TIMEOUT', message: 'the request did not arrive in time' } : { error: 'SP_ERR_BAD_REQUEST', message: tooLarge ? 'request headers too large' : `malformed request (${error.code ?? 'parse error'})` })}\n`;
    socket.end(`HTTP/1.1 ${late ? '408 Request Timeout' : tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }

  /** Starts the sources and listens. Throws `SP_ERR_ADDRESS_IN_USE` when the port is taken. */
  async listen(): Promise<URL> {
    const { port, host, backlog } = this.options;
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
      this.http.listen({ port, host, backlog });
    });
    if (!this.started) {
      this.started = true;
      if (this.exposure) this.logger.warn('SP_ERR_UNPROTECTED', this.exposure);
      for (const start of this.starters) start();
    }
    return this.url;
  }

  /** The server's base URL, e.g. `http://127.0.0.1:8080/` (with `basePath`: `…/webcam/`). */
  get url(): URL {
    const address = this.http.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return new URL(`${this.transport.secure ? 'https' : 'http'}://${host}:${address.port}${this.router.basePath}/`);
  }

  /**
   * Reads the certificate and key files again (a renewed certificate) and serves them to every new
   * connection; open connections and their viewers go on with the old one. Logs the outcome.
   * Resolves with the new certificate, or undefined when the server does not serve TLS; throws
   * `SP_ERR_TLS` (and keeps the old certificate) when the new files are missing or do not match.
   */
  async reloadTls(): Promise<CertificateInfo | undefined> {
    if (!this.tlsFiles) return undefined;
    try {
      const material = await loadTlsMaterial(this.tlsFiles);
      this.transport.setMaterial(material);
      this.logger.info(`TLS: reloaded the certificate: ${certificateSummary(material.info)}`);
      return material.info;
    } catch (error) {
      this.logger.error('SP_ERR_TLS', `TLS: kept the old certificate: ${(error as Error).message}`);
      throw error;
    }
  }

  /**
   * Stops: refuses new connections, stops the sources, ends every slideshow with its closing
   * delimiter and every live viewer, and after `graceMs` cuts the connections still open.
   */
  async close(graceMs = DEFAULT_CLOSE_GRACE_MS): Promise<void> {
    this.stop.abort();
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.transport.closeIdle();
    const deadline = performance.now() + graceMs;
    const timer = setTimeout(() => this.transport.closeAll(), graceMs);
    await Promise.allSettled([...this.endpoints.values()].map((endpoint) => endpoint.close()));
    await this.bus?.close();
    // Each stream response closes once its last bytes went out; what is left after that is idle
    // or never sent a request (clients open spare connections), and needs no grace.
    while (this.status.clients > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    this.transport.closeAll();
    await closed;
    clearTimeout(timer);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const routed = this.ops.trackRequest(res);
    const target = parseTarget(req.url);
    if (!target) return sendError(res, 400, 'SP_ERR_BAD_REQUEST', 'malformed request target');
    if (countHeader(req, 'host') > 1) return sendError(res, 400, 'SP_ERR_BAD_REQUEST', 'more than one Host header');
    if (!isValidHost(req.headers.host ?? (req.headers[':authority'] as string | undefined))) return sendError(res, 400, 'SP_ERR_BAD_REQUEST', 'the Host header is not a valid host[:port]');
    if (this.viewer.applyCors(req, res)) return;
    const path = this.router.underBase(target.path, target.query);
    if (path === undefined) return sendError(res, 404, 'SP_ERR_NOT_FOUND', `no such path; this server serves under ${this.router.basePath}/`);
    if (typeof path !== 'string') {
      routed('redirect');
      res.writeHead(308, { Location: path.redirect, 'Content-Length': '0' });
      return void res.end();
    }
    const route = this.router.route(path, target.query);
    routed(routeKind(route));
    if (!route) return sendError(res, 404, 'SP_ERR_NOT_FOUND', 'no such path; try / , /stream, /view, /snapshot or /status');
    // The one access check (access/guard.ts): every route below, whatever its method.
    const from: RequestOrigin = { remoteAddress: req.socket?.remoteAddress, headers: req.headers };
    const resource = resourceOf(route, path);
    const admitted = await this.guard.check(from, { resource, path, query: target.query, streams: this.streamNames });
    if (isRefusal(admitted)) {
      this.ops.metrics.authFailure(AUTH_FAILURE_REASONS[admitted.code] ?? 'other');
      return sendRefusal(res, admitted);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendError(res, 405, 'SP_ERR_METHOD_NOT_ALLOWED', `${req.method} is not allowed here`, { Allow: 'GET, HEAD' });
    }
    if (route === 'status') return this.sendStatus(res, admitted);
    if (route === 'metrics') return this.ops.sendMetrics(res, (name) => admitted.mayReadStream(name));
    if (route === 'healthz') return this.ops.sendHealth(res);
    if (route === 'readyz') return this.ops.sendReady(res, this.http.listening && this.started && !this.stop.signal.aborted, (name) => admitted.mayReadStream(name));
    if (route === 'index') return this.sendIndex(res, admitted);
    if (route === 'viewer') return this.viewer.handle(req, res, path, target.query);
    if ('unknownIndex' in route) return sendError(res, 404, 'SP_ERR_UNKNOWN_STREAM', `no stream with input index ${route.unknownIndex}; this server has ${this.endpoints.size} (0 to ${this.endpoints.size - 1}: ${this.streamNames.join(', ')})`);
    const endpoint = this.endpoints.get(route.endpoint);
    if (!endpoint) return sendError(res, 404, route.endpoint === 'default' ? 'SP_ERR_NOT_FOUND' : 'SP_ERR_UNKNOWN_STREAM', `no stream named ${JSON.stringify(route.endpoint)}; streams: ${this.streamNames.join(', ')}`);
    if (route.action === 'snapshot') return endpoint.snapshot(req, res);
    // A browser opening a stream with html or text parts gets the viewer (must-have 4 of issue 5).
    if (await this.viewer.negotiate(req, res, endpoint, path, target.query)) return;
    const session = { from, request: { resource, path, query: target.query }, res };
    this.sessions.add(session);
    res.once('close', () => this.sessions.delete(session));
    await serveNode(endpoint.servable, req, res, target.query, this.serveHooks, { remoteAddress: admitted.clientAddress, ...(admitted.principal.kind === 'user' || admitted.principal.kind === 'token' || admitted.principal.kind === 'jwt' ? { user: admitted.principal.name } : {}) });
  }

  /** `/status`, with only the streams the client may read. */
  private sendStatus(res: ServerResponse, admitted: Admitted): void {
    const document = this.status.toJSON();
    const streams = Object.fromEntries(Object.entries(document.streams).filter(([name]) => admitted.mayReadStream(name)));
    sendBody(res, 200, 'application/json; charset=utf-8', `${JSON.stringify({ ...document, streams })}\n`);
  }

  /** The index page, with only the streams the client may read. */
  private async sendIndex(res: ServerResponse, admitted: Admitted): Promise<void> {
    const entries = (await indexEntries(this.endpoints)).filter((entry) => admitted.mayReadStream(entry.name));
    const first = [...this.endpoints.values()][0];
    const title = first?.kind === 'slideshow' && this.endpoints.size === 1 ? first.title : 'serverpush';
    sendBody(res, 200, 'text/html; charset=utf-8', renderIndexPage({ title, streams: entries }), { 'Cache-Control': 'no-cache' });
  }
}

/** `serverpush_auth_failures_total`'s `reason` label, by the code access control answered. */
const AUTH_FAILURE_REASONS: Partial<Record<string, string>> = {
  SP_ERR_UNAUTHORIZED: 'unauthorized',
  SP_ERR_FORBIDDEN: 'forbidden',
  SP_ERR_TOKEN_EXPIRED: 'expired',
  SP_ERR_TOO_MANY_FAILURES: 'locked_out',
  SP_ERR_AUTH_BUSY: 'busy',
};

/**
 * Creates a server. Throws coded errors for a bad stream (`SP_ERR_CONFIG`) or folder
 * (`SP_ERR_DIR_NOT_FOUND`, `SP_ERR_NOT_A_DIRECTORY`). Call `listen()` to start it.
 */
export async function createServer(serveOptions: ServeOptions): Promise<ServerPushServer> {
  normalizeBasePath(serveOptions.basePath); // refuse a bad one before any stream is made
  // A missing or mismatched certificate is refused before any source starts.
  const tls = serveOptions.tls === undefined ? undefined : await loadTlsMaterial(serveOptions.tls);
  // No password of a URL reaches a log line, whoever wrote it (a command's stderr included).
  const logger = redactingLogger(serveOptions.logger ?? silentLogger);
  const options: ServeOptions = { ...serveOptions, logger };
  const specs: Record<string, StreamSpec> = { ...options.streams };
  if (options.dir !== undefined) {
    if (specs['default']) throw new ServerPushError('SP_ERR_CONFIG', 'both dir and a stream named "default" were given');
    specs['default'] = {
      type: 'slideshow',
      dir: options.dir,
      ...(options.intervalMs !== undefined ? { intervalMs: options.intervalMs } : {}),
      ...(options.loop !== undefined ? { loop: options.loop } : {}),
      ...(options.maxPartBytes !== undefined ? { maxPartBytes: options.maxPartBytes } : {}),
      ...(options.stallTimeoutMs !== undefined ? { stallTimeoutMs: options.stallTimeoutMs } : {}),
      ...(options.boundary !== undefined ? { boundary: options.boundary } : {}),
    };
  }
  if (Object.keys(specs).length === 0) throw new ServerPushError('SP_ERR_CONFIG', 'no stream to serve: give dir or streams');
  const stop = new AbortController();
  // Every slideshow client listens for shutdown on this one signal: thousands of listeners are expected.
  setMaxListeners(0, stop.signal);
  const status = new ServerStatus();
  let clientIds = 0;
  let server: ServerPushServer | undefined;
  const ctx: EndpointContext = {
    stop: stop.signal,
    emitPart: (event) => server?.emit('part', event),
    nextClientId: () => ++clientIds,
  };
  resolveLimits(options.limits); // refuse bad limits before any stream is made
  const access = await createAccessPolicy(options.access);
  // Refused before the bus connects and any stream is made (nothing to close after).
  access.checkStreams(Object.keys(specs));
  // The Redis client is loaded only when a bus is asked for.
  const bus = options.redis ? await (await import('../bus/redis-bus.ts')).RedisBus.connect(options.redis, logger) : undefined;
  let streams: StreamSet;
  try {
    streams = await StreamSet.create(specs, {
      stop: stop.signal,
      context: { emitPart: ctx.emitPart, nextClientId: ctx.nextClientId },
      resources: { logger, stdin: options.stdin, bus },
      onEndpoint: (endpoint) => server?.metrics.attach(endpoint),
      onRestart: (name) => server?.metrics.sourceRestarted(name),
    });
  } catch (error) {
    await bus?.close();
    throw error;
  }
  server = new ServerPushServer(streams.endpoints, [() => streams.start()], stop, status, options, access, streams, tls, bus);
  if (tls) logger.info(`TLS: serving HTTPS (HTTP/2 and HTTP/1.1) with ${certificateSummary(tls.info)}`);
  return server;
}
