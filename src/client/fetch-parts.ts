import { ServerPushError } from '../errors.ts';
import { multipartBoundary } from '../protocol/content-type.ts';
import type { MultipartLimits } from '../protocol/parser.ts';
import type { MultipartPart } from '../protocol/part.ts';
import { readParts } from '../protocol/read-parts.ts';

/** The server answered with a status other than 2xx; `status` is that status. */
export class HttpStatusError extends ServerPushError {
  readonly status: number;

  constructor(status: number, message: string) {
    super('SP_ERR_HTTP_STATUS', message);
    this.name = 'HttpStatusError';
    this.status = status;
  }
}

/** Options of {@link fetchParts}. */
export interface FetchPartsOptions extends MultipartLimits {
  /** Aborts the request or the reading of the stream; `fetchParts` then rejects with its reason. */
  signal?: AbortSignal;
  /** Request headers, e.g. `{ authorization: 'Basic …' }`. */
  headers?: Record<string, string> | Array<[string, string]>;
  /**
   * Use this boundary and accept any Content-Type — for servers that send a wrong one (ffmpeg's
   * HTTP output says `application/octet-stream` unless given `-content_type`).
   * @default the boundary parameter of the response's multipart Content-Type
   */
  boundary?: string;
  /** The fetch to use. @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
}

function reasonOf(error: unknown): string {
  const cause = (error as { cause?: { message?: unknown } } | undefined)?.cause;
  const message = error instanceof Error ? error.message : String(error);
  return typeof cause?.message === 'string' ? `${message}: ${cause.message}` : message;
}

/**
 * GETs `url` and yields the parts of its multipart response as they complete (see
 * `readParts`). Runs in Node >= 20 and browsers. Throws `SP_ERR_CONNECTION` when the server cannot
 * be reached or the connection fails mid-stream, `SP_ERR_HTTP_STATUS` ({@link HttpStatusError})
 * for a non-2xx status, `SP_ERR_NOT_MULTIPART` / `SP_ERR_NO_BOUNDARY` for a response that is not
 * a multipart stream, the parser's codes for a malformed stream, and the signal's reason when
 * aborted.
 */
export async function* fetchParts(url: string | URL, options: FetchPartsOptions = {}): AsyncGenerator<MultipartPart, void, undefined> {
  const { signal, headers, boundary, fetch = globalThis.fetch, ...limits } = options;
  const init: RequestInit = { redirect: 'follow' };
  if (signal) init.signal = signal;
  if (headers) init.headers = headers;
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    // A coded error of the given fetch (e.g. SP_ERR_AUTH_FAILED of authenticatingFetch) says more than "cannot get".
    if (error instanceof ServerPushError) throw error;
    throw new ServerPushError('SP_ERR_CONNECTION', `cannot get ${String(url)}: ${reasonOf(error)}`, { cause: error });
  }
  let declared = boundary;
  try {
    if (!response.ok) throw new HttpStatusError(response.status, `${String(url)} answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`);
    declared ??= multipartBoundary(response.headers.get('content-type'));
  } catch (error) {
    await response.body?.cancel().catch(() => {});
    throw error;
  }
  try {
    yield* readParts(response, { ...limits, boundary: declared, ...(signal ? { signal } : {}) });
  } catch (error) {
    if (signal?.aborted || error instanceof ServerPushError) throw error;
    throw new ServerPushError('SP_ERR_CONNECTION', `the stream from ${String(url)} failed: ${reasonOf(error)}`, { cause: error });
  }
}
