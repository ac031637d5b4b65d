import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { get, type IncomingMessage } from 'node:http';
import { createServer, type ServeOptions, type ServerPushServer } from '../../src/server/server.ts';
import type { Logger } from '../../src/log.ts';
import { StrictMultipartReader } from './multipart-reader.ts';

export const EXAMPLES = new URL('../../examples/slideshow/', import.meta.url).pathname;

/** A logger that keeps every line, for assertions. */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (message) => lines.push(`info ${message}`),
    warn: (code, message) => lines.push(`warn ${code} ${message}`),
    error: (code, message) => lines.push(`error ${code} ${message}`),
  };
}

/** A fresh temporary folder holding `files` (name -> contents). */
export async function makeFolder(files: Record<string, string | Uint8Array> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'serverpush-test-'));
  for (const [name, contents] of Object.entries(files)) await writeFile(join(dir, name), contents);
  return dir;
}

export async function removeFolder(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Starts a server on port 0 with a recording logger. */
export async function startServer(options: ServeOptions): Promise<{ server: ServerPushServer; url: URL; logger: ReturnType<typeof recordingLogger> }> {
  const logger = recordingLogger();
  const server = await createServer({ port: 0, logger, ...options });
  const url = await server.listen();
  return { server, url, logger };
}

export interface OpenStream {
  response: IncomingMessage;
  reader: StrictMultipartReader;
  /** Resolves when the response has ended (or errors on a framing error). */
  ended: Promise<void>;
  connectedAt: number;
  close(): void;
}

export function boundaryOf(response: IncomingMessage): string {
  const match = /^multipart\/x-mixed-replace; boundary=(.+)$/.exec(response.headers['content-type'] ?? '');
  if (!match) throw new Error(`not a multipart stream: ${response.statusCode} ${response.headers['content-type']}`);
  return match[1]!;
}

/** GETs a stream with Node's own HTTP client and reads it strictly. */
export function openStream(url: URL | string, headers: Record<string, string> = {}): Promise<OpenStream> {
  const connectedAt = Date.now();
  return new Promise((resolve, reject) => {
    const request = get(url, { headers }, (response) => {
      let reader: StrictMultipartReader;
      try {
        reader = new StrictMultipartReader(boundaryOf(response));
      } catch (error) {
        response.resume();
        reject(error);
        return;
      }
      const ended = new Promise<void>((done, fail) => {
        response.on('data', (chunk: Buffer) => {
          try {
            reader.push(chunk);
          } catch (error) {
            fail(error);
            request.destroy();
          }
        });
        response.on('end', () => {
          try {
            reader.end();
            done();
          } catch (error) {
            fail(error);
          }
        });
        response.on('error', fail);
      });
      ended.catch(() => {});
      resolve({ response, reader, ended, connectedAt, close: () => request.destroy() });
    });
    request.on('error', reject);
  });
}

/** GETs a URL and returns status, headers and the whole body. */
export function fetchText(url: URL | string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: string }> {
  return fetch(url, init).then(async (response) => ({ status: response.status, headers: response.headers, body: await response.text() }));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` every 20 ms until it returns true; throws, naming what it waited for (`what`, or
 * the check's source), when `timeoutMs` passes first. Resolves true, so `assert.ok(await
 * eventually(…))` reads as before.
 */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 2000, what?: string): Promise<true> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(20);
  }
  if (await check()) return true;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what ?? check.toString()}`);
}
