/**
 * The public surface: what each entry exports, and that the runtime-neutral entry
 * (`serverpush/fetch`, dist/web.js) loads no Node-only module, so it runs in Bun, Deno, workers
 * and browsers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

const DIST = new URL('../dist/', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { exports: Record<string, { default: string } | string> };

/** Every module `file` imports, transitively (relative specifiers), and every bare/`node:` specifier met. */
function importGraph(file: string): { files: Set<string>; external: Set<string> } {
  const files = new Set<string>();
  const external = new Set<string>();
  const visit = (path: string) => {
    if (files.has(path)) return;
    files.add(path);
    const text = readFileSync(path, 'utf8');
    for (const match of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
      const specifier = match[1] ?? match[2]!;
      if (specifier.startsWith('.')) visit(resolve(dirname(path), specifier));
      else external.add(specifier);
    }
  };
  visit(file);
  return { files, external };
}

/** The Node built-in modules a fresh process has loaded after importing `specifier` (minus those loaded by importing nothing). */
function builtinsLoadedBy(specifier: string): string[] {
  const script = (what: string) => `${what}; process.stdout.write(JSON.stringify(process.moduleLoadList.filter((m) => m.startsWith('NativeModule '))))`;
  const run = (what: string) => JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script(what)], { encoding: 'utf8' })) as string[];
  const baseline = new Set(run(`await import('data:text/javascript,export default 1')`));
  return run(`await import(${JSON.stringify(specifier)})`).filter((m) => !baseline.has(m)).map((m) => m.slice('NativeModule '.length));
}

test('serverpush/fetch, the runtime-neutral entry, imports no node: module at all, and loads no http, net, fs or child_process', () => {
  const entry = pkg.exports['./fetch'] as { default: string };
  const file = new URL(entry.default, new URL('../', import.meta.url)).pathname;
  const { files, external } = importGraph(file);
  assert.ok(files.size > 10, `followed the imports (${files.size} files)`);
  assert.deepEqual([...external], [], 'no node: or package import in the runtime-neutral entry');
  const loaded = builtinsLoadedBy(file);
  for (const forbidden of ['http', 'https', 'http2', 'net', 'tls', 'fs', 'fs/promises', 'child_process']) {
    assert.ok(!loaded.includes(forbidden), `importing serverpush/fetch loaded node:${forbidden} (${loaded.join(', ')})`);
  }
  // The control: the root entry (the Node server) does load them, so the check can fail.
  const root = builtinsLoadedBy(new URL('index.js', DIST).pathname);
  assert.ok(root.includes('http') && root.includes('child_process'), `the root entry loads the Node server (${root.join(', ')})`);
});

test('serverpush/fetch gives the hub, liveResponse, the protocol and the client; internals are not exported', async () => {
  const web = await import(new URL('web.js', DIST).href) as Record<string, unknown>;
  for (const name of ['LiveStream', 'Viewer', 'liveResponse', 'serveResponse', 'serveStream', 'liveServable', 'streamHeaders', 'MultipartParser', 'MultipartFraming', 'encodePartHeaders', 'readParts', 'createBoundary', 'fetchParts', 'ServerPushError', 'DEFAULT_STALL_TIMEOUT_MS']) {
    assert.equal(typeof web[name] !== 'undefined', true, `serverpush/fetch exports ${name}`);
  }
  const root = await import(new URL('index.js', DIST).href) as Record<string, unknown>;
  for (const name of ['createServer', 'liveHandler', 'serveNode', 'LiveStream', 'WatchSource', 'CommandSource', 'RelaySource', 'createStreamLogger']) {
    assert.equal(typeof root[name] !== 'undefined', true, `serverpush exports ${name}`);
  }
  // Byte helpers, header-block parsing, the server's constructor and the response classes are internal.
  for (const name of ['indexOfBytes', 'utf8', 'createSearch', 'parseHeaderBlock', 'contentLengthOf', 'ReceivedPart', 'ServerPushServer', 'NodeMultipartResponse', 'Subscriber', 'playSlideshow', 'FolderCatalog', 'sendError', 'sendBody', 'serveLiveViewer']) {
    assert.equal(name in root || name in web, false, `${name} is not public`);
  }
});
