/**
 * WebKitGTK — WebCore and JavaScriptCore as in Safari, with libsoup instead of Apple's network
 * stack — driven over W3C WebDriver (plain HTTP) by Debian's WebKitWebDriver, which starts the
 * engine's MiniBrowser. MiniBrowser has no headless mode: it runs on an Xvfb display of its own
 * (`-displayfd` picks a free one). WebKitWebDriver 2.50 has no WebDriver BiDi, so there are no
 * preload scripts: a test hooks a page once it is loaded (see `RECORD_SHOWS`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from './server.ts';
import { freePort } from './ports.ts';

export const WEBKIT_DRIVER = process.env['WEBKIT_DRIVER_PATH'] ?? '/usr/bin/WebKitWebDriver';
export const XVFB = process.env['XVFB_PATH'] ?? '/usr/bin/Xvfb';

/** The MiniBrowser of libwebkit2gtk-4.1-0 (what webkit2gtk-driver depends on), or of webkitgtk-6.0. */
export const MINIBROWSER = process.env['WEBKIT_MINIBROWSER_PATH'] ?? (() => {
  for (const lib of ['/usr/lib', '/usr/libexec']) {
    let arches: string[] = [];
    try {
      arches = readdirSync(lib);
    } catch {
      continue;
    }
    for (const dir of ['', ...arches]) {
      for (const api of ['webkit2gtk-4.1', 'webkitgtk-6.0', 'webkit2gtk-4.0']) {
        const path = join(lib, dir, api, 'MiniBrowser');
        if (existsSync(path)) return path;
      }
    }
  }
  return undefined;
})();

/** Why the WebKit tests cannot run here, or false. */
export function webkitSkipReason(): string | false {
  const missing: string[] = [];
  if (!existsSync(WEBKIT_DRIVER)) missing.push(`${WEBKIT_DRIVER} not found (apt-get install webkit2gtk-driver; .ci/run does)`);
  else if (!MINIBROWSER) missing.push('the MiniBrowser of WebKitGTK not found (apt-get install webkit2gtk-driver)');
  if (!existsSync(XVFB)) missing.push(`${XVFB} not found (apt-get install xvfb; .ci/run does)`);
  return missing.length === 0 ? false : missing.join('; ');
}

/** An error answered by the driver: `error` is the W3C error code (`no such frame`, `javascript error`…). */
export class WebDriverError extends Error {
  constructor(readonly error: string, message: string) {
    super(`${error}: ${message}`);
  }
}

/** Signals a process started `detached` and everything in its process group. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Ends a process group: SIGTERM (Xvfb then removes its socket and lock file), SIGKILL after 3 s. */
async function endGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signalGroup(child, 'SIGTERM');
  await Promise.race([exited, sleep(3000)]);
  signalGroup(child, 'SIGKILL');
}

async function startXvfb(): Promise<{ child: ChildProcess; display: string }> {
  const child = spawn(XVFB, ['-displayfd', '3', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'], { detached: true, stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  const display = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Xvfb did not start: ${stderr}`)), 20_000);
    child.stdio[3]!.on('data', (data: Buffer) => {
      clearTimeout(timer);
      resolve(`:${String(data).trim()}`);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Xvfb exited with ${code}: ${stderr}`));
    });
  });
  return { child, display };
}

/** A WebKitWebDriver on a free port, once it answers /status. */
async function startDriver(display: string): Promise<{ child: ChildProcess; base: string }> {
  let last = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn(WEBKIT_DRIVER, [`--port=${port}`], { detached: true, env: { ...process.env, DISPLAY: display, NO_AT_BRIDGE: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-4000); });
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        const status = await fetch(`${base}/status`);
        if (status.ok) return { child, base };
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    last = `WebKitWebDriver on port ${port} ${child.exitCode === null ? 'did not answer' : `exited with ${child.exitCode}`}: ${stderr}`;
    await endGroup(child);
  }
  throw new Error(last);
}

const started = new Set<ChildProcess>();
process.once('exit', () => { for (const child of started) signalGroup(child, 'SIGTERM'); });

/** A MiniBrowser window and the few WebDriver commands these tests need. */
export class WebKit {
  /** WebKitGTK's version, e.g. `2.50.6`. */
  version = '';
  private session = '';

  private constructor(private readonly base: string, private readonly children: ChildProcess[]) {}

  /** `capabilities` are added to the session's (e.g. `acceptInsecureCerts: true` for a test's own certificate). */
  static async launch(capabilities: Record<string, unknown> = {}): Promise<WebKit> {
    const xvfb = await startXvfb();
    started.add(xvfb.child);
    let driver: { child: ChildProcess; base: string };
    try {
      driver = await startDriver(xvfb.display);
    } catch (error) {
      await endGroup(xvfb.child);
      throw error;
    }
    started.add(driver.child);
    const webkit = new WebKit(driver.base, [driver.child, xvfb.child]);
    try {
      // pageLoadStrategy none: a page holding an endless stream never loads; goto() waits itself.
      const created = await webkit.request<{ sessionId: string; capabilities: { browserVersion: string } }>('POST', '/session', {
        capabilities: { alwaysMatch: { pageLoadStrategy: 'none', 'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] }, ...capabilities } },
      });
      webkit.session = created.sessionId;
      webkit.version = created.capabilities.browserVersion;
    } catch (error) {
      await webkit.close();
      throw error;
    }
    return webkit;
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers: { 'Content-Type': 'application/json; charset=utf-8' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const answer = await response.json() as { value: { error?: string; message?: string } | T };
    const value = answer.value as { error?: string; message?: string } | null;
    if (!response.ok || (value !== null && typeof value === 'object' && typeof value.error === 'string')) {
      throw new WebDriverError(value?.error ?? `HTTP ${response.status}`, value?.message ?? '');
    }
    return answer.value as T;
  }

  /** A command of the session, e.g. `command('POST', '/url', { url })`. */
  command<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.request<T>(method, `/session/${this.session}${path}`, body);
  }

  /**
   * Runs `body` (a function body; `arguments` are `args`) in the current frame, and returns what
   * it returns, through JSON (WebKitWebDriver cannot return arrays made in another frame's realm).
   */
  async run<T>(body: string, ...args: unknown[]): Promise<T> {
    const text = await this.command<string | null>('POST', '/execute/sync', {
      script: `const result = (function () { ${body} }).apply(this, arguments); return result === undefined ? null : JSON.stringify(result);`,
      args,
    });
    return (text === null ? undefined : JSON.parse(text)) as T;
  }

  /** Like {@link run}, for the body of an async function: returns what its promise resolves to, or throws what it rejects with. */
  async runAsync<T>(body: string, ...args: unknown[]): Promise<T> {
    const text = await this.command<string>('POST', '/execute/async', {
      script: `const done = arguments[arguments.length - 1];
        (async function () { ${body} }).apply(this, Array.prototype.slice.call(arguments, 0, -1)).then(
          (result) => done(JSON.stringify({ result: result === undefined ? null : result })),
          (error) => done(JSON.stringify({ error: String(error) })));`,
      args,
    });
    const outcome = JSON.parse(text) as { result?: T; error?: string };
    if (outcome.error !== undefined) throw new Error(`the page's script failed: ${outcome.error}`);
    return outcome.result as T;
  }

  /** The value of `expression` in the current frame (JSON-able). */
  evaluate<T>(expression: string): Promise<T> {
    return this.run<T>(`return (${expression});`);
  }

  /**
   * Polls `expression` every `everyMs` until it is truthy. Each poll is a script run in the page:
   * tests that time the page poll slowly, so as not to disturb what they measure.
   */
  async waitFor(expression: string, { timeoutMs = 15_000, everyMs = 50, message = '' }: { timeoutMs?: number; everyMs?: number; message?: string } = {}): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.evaluate<boolean>(`Boolean(${expression})`))) {
      if (Date.now() > deadline) throw new Error(`${message ? `${message}: ` : ''}timed out after ${timeoutMs} ms waiting for ${expression}`);
      await sleep(everyMs);
    }
  }

  /**
   * Navigates the window to `url` and waits until its document is there: parsed
   * (`interactive`), or only committed (`commit`: a stream opened directly never finishes).
   */
  async goto(url: string, until: 'interactive' | 'commit' = 'interactive'): Promise<void> {
    await this.command('POST', '/frame', { id: null });
    await this.command('POST', '/url', { url });
    const arrived = `document.URL === ${JSON.stringify(url)}${until === 'interactive' ? ` && document.readyState !== 'loading'` : ''}`;
    const deadline = Date.now() + 15_000;
    for (;;) {
      // A script may run in the old document, which the navigation then unloads under it.
      if (await this.evaluate<boolean>(arrived).catch((error: unknown) => (error instanceof WebDriverError ? false : Promise.reject(error)))) return;
      if (Date.now() > deadline) throw new Error(`${url} did not load within 15 s`);
      await sleep(50);
    }
  }

  /** Makes the `index`th frame of the current document current, or the top document with null. */
  async frame(index: number | null): Promise<void> {
    await this.command('POST', '/frame', { id: index });
  }

  /** The window's title (polled by tests of documents that replace themselves, such as a stream opened directly). */
  title(): Promise<string> {
    return this.command<string>('GET', '/title');
  }

  async close(): Promise<void> {
    if (this.session) await Promise.race([this.command('DELETE', '').catch(() => {}), sleep(5000)]);
    for (const child of this.children) {
      await endGroup(child);
      started.delete(child);
    }
  }
}
