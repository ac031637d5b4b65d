/**
 * HTTPS and HTTP/2 for serverpush's own server (issue 12 item 6, decision 0017): the certificate
 * and key files, one listening server that offers HTTP/2 by ALPN and keeps HTTP/1.1 for the
 * clients that need it (ffmpeg, curl --http1.1, OpenCV), and what `close()` must do with the
 * connections of such a server (Node's `closeIdleConnections()`/`closeAllConnections()` exist on
 * `http.Server` only).
 */
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import { isIP } from 'node:net';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { ServerPushError } from '../errors.ts';
import { sendError } from '../adapters/node-http.ts';
import { limitUnsentBytes } from '../adapters/socket-buffer.ts';
import { DEFAULT_MAX_UNSENT_BYTES, HTTP2_MAX_CONCURRENT_STREAMS, IDLE_CONNECTION_TIMEOUT_MS } from '../defaults.ts';

/** Where the certificate and its private key are (PEM files). */
export interface TlsFiles {
  /** The certificate chain, PEM: the server's certificate first, then the intermediates. */
  certFile: string;
  /** The private key of that certificate, PEM (not encrypted). */
  keyFile: string;
}

/** A certificate and key read and checked: they parse and belong together. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** What the logs say of the certificate (no secret in it). */
  info: CertificateInfo;
}

/** What serverpush tells of a certificate it serves (start-up log, reload log, `reloadTls()`). */
export interface CertificateInfo {
  subject: string;
  serialNumber: string;
  /** SHA-256 fingerprint, `AB:CD:…`. */
  fingerprint256: string;
  validTo: string;
}

async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'not found' : code === 'EACCES' ? 'not readable (permission denied)' : code === 'EISDIR' ? 'a directory, not a file' : (error as Error).message;
    throw new ServerPushError('SP_ERR_TLS', `the TLS ${what} ${file} is ${why}`, { cause: error });
  }
}

/**
 * Reads the certificate and key and checks them: both PEM, the key the certificate's own.
 * Throws `SP_ERR_TLS` naming the file and what is wrong (never the key's bytes).
 */
export async function loadTlsMaterial(files: TlsFiles): Promise<TlsMaterial> {
  const [cert, key] = await Promise.all([readPem(files.certFile, 'certificate', ), readPem(files.keyFile, 'key')]);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (error) {
    throw new ServerPushError('SP_ERR_TLS', `the TLS certificate ${files.certFile} is not a PEM certificate (${(error as Error).message})`, { cause: error });
  }
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    const message = (error as Error).message;
    throw new ServerPushError('SP_ERR_TLS', /mismatch/i.test(message)
      ? `the TLS key ${files.keyFile} does not belong to the certificate ${files.certFile}`
      : `the TLS key ${files.keyFile} cannot be used (${message}); it must be an unencrypted PEM private key`, { cause: error });
  }
  return { cert, key, info: describeCertificate(certificate) };
}

function describeCertificate(certificate: X509Certificate): CertificateInfo {
  return { subject: certificate.subject.replace(/\n/g, ', '), serialNumber: certificate.serialNumber, fingerprint256: certificate.fingerprint256, validTo: certificate.validTo };
}

/** One line for the logs: `CN=localhost, serial 1A2B…, valid until …`. */
export function certificateSummary(info: CertificateInfo): string {
  return `${info.subject}, serial ${info.serialNumber}, SHA-256 ${info.fingerprint256}, valid until ${info.validTo}`;
}

/** The request handler of either server: the HTTP/2 compatibility API gives the same members the routes use. */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The listening server and how to close its connections: plain `http` (the default), or HTTPS
 * offering `h2` and `http/1.1` by ALPN on the same port.
 */
export interface Transport {
  readonly server: Server | Http2SecureServer;
  readonly secure: boolean;
  /**
   * First step of a graceful stop: connections that carry no request are closed, every HTTP/2
   * session is told GOAWAY (no new streams; the open ones may finish).
   */
  closeIdle(): void;
  /** Last step: every connection still open is cut. */
  closeAll(): void;
  /** Serves `material` to every new connection; open ones keep theirs. */
  setMaterial(material: TlsMaterial): void;
}

/**
 * What bounds a request's head: its size, and how long a client may take to send it (slowloris;
 * limits.ts `httpServerLimits`).
 */
export type RequestHeadLimits = Pick<ServerOptions, 'maxHeaderSize' | 'headersTimeout' | 'requestTimeout' | 'connectionsCheckingInterval'>;

/** Plain HTTP/1.1 (`node:http`). */
export function plainTransport(handler: RequestHandler, limits: RequestHeadLimits = {}): Transport {
  const server = createHttpServer({ noDelay: true, requireHostHeader: true, ...limits }, handler);
  return {
    server,
    secure: false,
    closeIdle: () => server.closeIdleConnections(),
    closeAll: () => server.closeAllConnections(),
    setMaterial: () => { throw new ServerPushError('SP_ERR_TLS', 'this server does not serve TLS'); },
  };
}

/**
 * HTTPS with HTTP/2 by ALPN and HTTP/1.1 kept (`allowHTTP1`): a client that offers `h2` (every
 * browser, curl --http2) gets HTTP/2, one that offers `http/1.1` or no ALPN at all (ffmpeg, OpenCV,
 * curl --http1.1) gets HTTP/1.1 on the same port.
 */
export function secureTransport(material: TlsMaterial, handler: RequestHandler, limits: RequestHeadLimits = {}): Transport {
  const sockets = new Set<TLSSocket>();
  const sessions = new Set<Http2Session>();
  /** HTTP/1 requests in flight per socket: a socket without one is idle (keep-alive). */
  const busy = new Map<TLSSocket, number>();
  const server = createSecureServer({ allowHTTP1: true, cert: material.cert, key: material.key, settings: { maxConcurrentStreams: HTTP2_MAX_CONCURRENT_STREAMS, ...(limits.maxHeaderSize === undefined ? {} : { maxHeaderListSize: limits.maxHeaderSize }) } }, (req: Http2ServerRequest | IncomingMessage, res: Http2ServerResponse | ServerResponse) => {
    if ('stream' in req) {
      // The compatibility API's request and response have every member the routes use (url,
      // method, headers, rawHeaders, writeHead, write, end, 'drain', 'close', destroy).
      return handler(req as unknown as IncomingMessage, res as unknown as ServerResponse);
    }
    const socket = req.socket as TLSSocket;
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    (res as ServerResponse).once('close', () => {
      const left = (busy.get(socket) ?? 1) - 1;
      if (left > 0) busy.set(socket, left);
      else busy.delete(socket);
    });
    // What `requireHostHeader` does on the plain server (Node's HTTP/1 fallback here skips it).
    if (req.httpVersion === '1.1' && req.headers.host === undefined) return sendError(res as ServerResponse, 400, 'SP_ERR_BAD_REQUEST', 'an HTTP/1.1 request needs a Host header');
    handler(req, res as ServerResponse);
  });
  // The HTTP/1.1 fallback reads the same head timeouts as node:http's server (slowloris); Node
  // sets them on an allowHTTP1 server (60 s, 300 s) but its types do not say so.
  const fallback = server as unknown as { headersTimeout: number; requestTimeout: number };
  if (limits.headersTimeout !== undefined) fallback.headersTimeout = limits.headersTimeout;
  if (limits.requestTimeout !== undefined) fallback.requestTimeout = limits.requestTimeout;
  server.on('secureConnection', (socket: TLSSocket) => {
    socket.setNoDelay(true);
    // An HTTP/2 connection carries many responses (of any of the server's streams), so the bound
    // on what the kernel queues unsent is set once on its TCP socket, at the default; an HTTP/1.1
    // one gets its stream's own bound when the response starts (node-http.ts). A TLS socket's
    // file descriptor is its TCP connection's.
    if (socket.alpnProtocol === 'h2') limitUnsentBytes(socket, DEFAULT_MAX_UNSENT_BYTES);
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      busy.delete(socket);
    });
  });
  // Idle connections: Node's HTTP/1 fallback closes a keep-alive connection after
  // keepAliveTimeout once it is set (http.Server sets it, Http2SecureServer does not); an HTTP/2
  // session is closed (GOAWAY) once it has had no open stream for as long.
  (server as unknown as { keepAliveTimeout: number }).keepAliveTimeout = IDLE_CONNECTION_TIMEOUT_MS;
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    let open = 0;
    let idle: NodeJS.Timeout | undefined;
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => { if (open === 0 && !session.closed) session.close(); }, IDLE_CONNECTION_TIMEOUT_MS).unref();
    };
    session.on('stream', (stream: ServerHttp2Stream) => {
      open++;
      clearTimeout(idle);
      stream.once('close', () => { if (--open === 0) armIdle(); });
    });
    armIdle();
    session.once('close', () => {
      clearTimeout(idle);
      sessions.delete(session);
    });
    // A session error (a peer's protocol error, a reset) concerns that session only.
    session.on('error', () => {});
  });
  // A failed handshake (a plain-HTTP request to the HTTPS port, an untrusted certificate) is the
  // client's business; Node closes the socket.
  server.on('tlsClientError', () => {});
  return {
    server,
    secure: true,
    closeIdle() {
      for (const session of sessions) if (!session.closed) session.close();
      // An HTTP/2 connection closes with its session; an HTTP/1 one now if it carries no request.
      for (const socket of sockets) if (socket.alpnProtocol !== 'h2' && !busy.has(socket)) socket.destroy();
    },
    closeAll() {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
    },
    setMaterial(next) {
      server.setSecureContext({ cert: next.cert, key: next.key });
    },
  };
}

/** True for an address only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare.endsWith('.localhost')) return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (bare === '::1') return true;
  return /^::ffff:127\./.test(bare);
}

/** What {@link exposedWithoutProtection} looks at: the server's options, by name. */
export interface ExposureOptions {
  host?: string | undefined;
  tls?: unknown;
  /** Authentication options (users, tokens), by name: any of them set counts as authentication. */
  htpasswd?: unknown;
  tokens?: unknown;
}

/**
 * The one warning for a server that other machines can reach unprotected, or undefined: a host
 * other than loopback without TLS (the streams, and any password or token, cross the network in
 * clear text). The one place that decides it — extend it here when more protection options exist
 * (with authentication options, TLS without any of them could warn that anyone may watch).
 */
export function exposedWithoutProtection(options: ExposureOptions): string | undefined {
  if (options.host === undefined || isLoopback(options.host)) return undefined;
  if (options.tls !== undefined) return undefined;
  const auth = options.htpasswd !== undefined || options.tokens !== undefined;
  return `listening on ${options.host}, reachable from other machines, without TLS: ${auth ? 'passwords and tokens cross the network in clear text' : 'anyone who can reach the port may watch every stream, unencrypted'}; serve HTTPS with --tls-cert and --tls-key (README: TLS and HTTP/2)`;
}
