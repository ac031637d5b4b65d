/**
 * The viewer in Debian's Firefox ESR, driven over WebDriver BiDi (which Firefox speaks natively)
 * by the small client below: playwright-core's own Firefox support needs Playwright's patched
 * build, and its BiDi mode sends commands Firefox ESR 153 does not know
 * (emulation.setMediaFeaturesOverride). Skipped when firefox-esr is not installed.
 */
import { needs } from './helpers/tools.ts';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile, readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLES, startServer, sleep } from './helpers/server.ts';
import { RECORD_SHOWS, type Shown } from './helpers/viewer-page.ts';
import { assertProbeBlocked, assertShownOnTime, sandboxProbeServer, slideshowServer, SLIDESHOW_IMAGE_WIDTHS, SLIDESHOW_KINDS, SLIDESHOW_SEQS } from './helpers/viewer-scenes.ts';
import { compareFileNames } from '../src/sources/folder-catalog.ts';

const FIREFOX = process.env['FIREFOX_PATH'] ?? '/usr/bin/firefox-esr';
const { skip } = needs('firefox');

/** The WebSocket client bundled in playwright-core (Node 20 has no WebSocket without a flag). */
interface Socket {
  on(event: 'open' | 'close', listener: () => void): void;
  on(event: 'message', listener: (data: Buffer) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  send(data: string): void;
  close(): void;
}
const require = createRequire(import.meta.url);
const { ws: WebSocket } = require('playwright-core/lib/utilsBundle') as { ws: new (url: string) => Socket };

type BidiValue = { type: string; value?: unknown };

/** A Firefox with one tab, and the few WebDriver BiDi commands these tests need. */
class Firefox {
  private id = 0;
  private readonly pending = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>();

  /** The tab's browsing context, and the browser's version. */
  context = '';
  version = '';

  private constructor(private readonly child: ChildProcess, private readonly socket: Socket, private readonly profile: string) {
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as { id?: number; type?: string; error?: string; message?: string; result?: unknown };
      const waiter = message.id === undefined ? undefined : this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id!);
      if (message.type === 'error') waiter.reject(new Error(`${message.error}: ${message.message}`));
      else waiter.resolve(message.result);
    });
  }

  static async launch(): Promise<Firefox> {
    const profile = await mkdtemp(join(tmpdir(), 'serverpush-firefox-'));
    await writeFile(join(profile, 'user.js'), [
      'user_pref("browser.shell.checkDefaultBrowser", false);',
      'user_pref("datareporting.policy.dataSubmissionEnabled", false);',
      'user_pref("app.update.disabledForTesting", true);',
      'user_pref("browser.startup.homepage_override.mstone", "ignore");',
    ].join('\n'));
    const child = spawn(FIREFOX, ['--headless', '--no-remote', '--profile', profile, '--remote-debugging-port=0', 'about:blank'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const endpoint = await new Promise<string>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`Firefox did not start: ${text}`)), 60_000);
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
        const match = /WebDriver BiDi listening on (ws:\/\/\S+)/.exec(text);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
      child.once('exit', (code) => reject(new Error(`Firefox exited with ${code}: ${text}`)));
    });
    const socket = new WebSocket(`${endpoint}/session`);
    await new Promise<void>((resolve, reject) => {
      socket.on('open', resolve);
      socket.on('error', reject);
    });
    const firefox = new Firefox(child, socket, profile);
    const session = await firefox.send('session.new', { capabilities: {} }) as { capabilities: { browserVersion: string } };
    const tree = await firefox.send('browsingContext.getTree', {}) as { contexts: Array<{ context: string }> };
    await firefox.send('script.addPreloadScript', { functionDeclaration: `() => {${RECORD_SHOWS}}` });
    firefox.context = tree.contexts[0]!.context;
    firefox.version = session.capabilities.browserVersion;
    return firefox;
  }

  send(method: string, params: object): Promise<unknown> {
    const id = ++this.id;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  async goto(url: string): Promise<void> {
    await this.send('browsingContext.navigate', { context: this.context, url, wait: 'interactive' });
  }

  /** Evaluates `expression` (which must give JSON-able data) in the tab or in one of its frames. */
  async evaluate<T>(expression: string, context = this.context): Promise<T> {
    const result = await this.send('script.evaluate', { expression: `JSON.stringify(${expression})`, target: { context }, awaitPromise: false }) as { type: string; result?: BidiValue; exceptionDetails?: { text: string } };
    if (result.type !== 'success') throw new Error(`evaluate failed: ${result.exceptionDetails?.text}`);
    return (result.result!.value === undefined ? undefined : JSON.parse(String(result.result!.value))) as T;
  }

  async waitFor(expression: string, timeoutMs = 15_000, context = this.context): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.evaluate<boolean>(`Boolean(${expression})`, context))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${expression}`);
      await sleep(50);
    }
  }

  /** The frames of the tab (all depths). */
  async frames(): Promise<Array<{ context: string; url: string }>> {
    const tree = await this.send('browsingContext.getTree', { root: this.context }) as { contexts: Array<{ context: string; url: string; children?: unknown[] }> };
    const out: Array<{ context: string; url: string }> = [];
    const walk = (nodes: Array<{ context: string; url: string; children?: unknown[] }>) => {
      for (const node of nodes) {
        out.push({ context: node.context, url: node.url });
        walk((node.children ?? []) as typeof nodes);
      }
    };
    walk(tree.contexts);
    return out.slice(1);
  }

  async close(): Promise<void> {
    await Promise.race([this.send('browser.close', {}).catch(() => {}), sleep(3000)]);
    this.socket.close();
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
    await rm(this.profile, { recursive: true, force: true });
  }
}

let firefox: Firefox | undefined;
before(async () => {
  if (!skip) firefox = await Firefox.launch();
});
after(() => firefox?.close());

test('Firefox ESR: every document of examples/slideshow appears in the viewer in order, each within 100 ms of being sent', { skip }, async (t) => {
  const ff = firefox!;
  t.diagnostic(`Firefox ${ff.version}`);
  const { url, sent } = await slideshowServer(t, 400);
  await ff.goto(new URL('view', url).href);
  await ff.waitFor('window.shows && window.shows.length >= 10');
  const seen = await ff.evaluate<Shown[]>('window.shows');
  const names = (await readdir(EXAMPLES)).sort(compareFileNames);
  assert.deepEqual(sent.map((e) => e.name), names);
  assert.deepEqual(seen.map((s) => s.seq), SLIDESHOW_SEQS);
  assert.deepEqual(seen.map((s) => s.kind), SLIDESHOW_KINDS);
  assert.deepEqual(seen.filter((s) => s.kind === 'image').map((s) => Number(s.seen.split('x')[0])), SLIDESHOW_IMAGE_WIDTHS);
  assertShownOnTime(t, seen, sent);
  await ff.waitFor(`document.getElementById('viewer').dataset.state === 'ended'`);
});

test('Firefox ESR: the html sandbox holds: a pushed document runs, but cannot read the viewer page', { skip }, async (t) => {
  const ff = firefox!;
  const url = await sandboxProbeServer(t, 2000);
  await ff.goto(new URL('view', url).href);
  await ff.waitFor('window.shows && window.shows.length >= 1');
  let out: string | null = null;
  for (const frame of await ff.frames()) {
    const text = await ff.evaluate<string | null>(`document.getElementById('out') && document.getElementById('out').textContent`, frame.context).catch(() => null);
    if (text) out = text;
  }
  assert.ok(out, 'the pushed document is in a frame');
  assertProbeBlocked(t, out);
  assert.equal(await ff.evaluate<string>('document.title'), 'default — serverpush viewer');
});

test('Firefox ESR: opening a mixed stream directly gets the viewer, which plays it', { skip }, async (t) => {
  const ff = firefox!;
  const { server, url } = await startServer({ dir: EXAMPLES, intervalMs: 600 });
  t.after(() => server.close());
  await ff.goto(new URL('stream', url).href);
  await ff.waitFor('window.shows && window.shows.length >= 3');
  assert.deepEqual((await ff.evaluate<Shown[]>('window.shows')).slice(0, 3).map((s) => s.kind), ['html', 'image', 'text']);
});
