/**
 * Issue 11, item 8: the README's quick start works as written — the commands of its code block run
 * by `sh`, in order, with nothing but a folder of JPEGs. Two substitutions only: `npx serverpush`
 * runs this checkout's built CLI (npx would find it in a clone, seconds slower; the `get --wait`
 * line is what absorbs that), and port 8080 becomes a free port (the machine is shared).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI } from './helpers/cli.ts';
import { makeFolder, removeFolder } from './helpers/server.ts';
import { FRAMES } from './helpers/camera.ts';
import { needs } from './helpers/tools.ts';
import { freePort } from './helpers/ports.ts';

const README = await readFile(new URL('../README.md', import.meta.url), 'utf8');
const FRAME_DIR = fileURLToPath(new URL('./fixtures/frames/', import.meta.url));

/** The quick start's code block that serves ./jpegs. */
function quickStartBlock(): string {
  const section = README.slice(README.indexOf('## Quick start'), README.indexOf('\n## ', README.indexOf('## Quick start') + 1));
  const block = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!).find((text) => text.includes('serve ./jpegs'));
  assert.ok(block, 'the quick start has a block serving ./jpegs');
  return block;
}

test('the README quick start, run as written: the server is waited for, ffmpeg saves the frames, the server is stopped', needs('ffmpeg'), async (t) => {
  const block = quickStartBlock();
  assert.match(block, /--wait/, 'the block waits for the server before ffmpeg connects');
  const dir = await makeFolder();
  t.after(() => removeFolder(dir));
  await mkdir(join(dir, 'jpegs'));
  for (const name of (await readdir(FRAME_DIR)).filter((n) => n.endsWith('.jpg'))) await copyFile(join(FRAME_DIR, name), join(dir, 'jpegs', name));
  await mkdir(join(dir, 'bin'));
  await writeFile(join(dir, 'bin', 'serverpush'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`);
  await chmod(join(dir, 'bin', 'serverpush'), 0o755);
  const port = await freePort();
  // Without `--port`, the README's server listens on 8080: the free port goes in as a default.
  // `set -m`: job control, as in the interactive shell the reader types into (`kill %1` then ends
  // the server's whole job); `wait` for it, so that its last log line is read.
  // If a line fails (set -e) or the test gives up (SIGTERM), the server's job is ended all the same.
  const script = `set -m -e\ntrap 'kill %1 2>/dev/null || true' EXIT TERM\nnpx() { "$@"; }\n${block.replaceAll('8080', String(port)).replace('serve ./jpegs', `serve --port ${port} ./jpegs`)}\nwait\n`;
  const sh = spawn('bash', ['-c', script], { cwd: dir, env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env['PATH']}` }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  sh.stdout.setEncoding('utf8').on('data', (text: string) => { output += text; });
  sh.stderr.setEncoding('utf8').on('data', (text: string) => { output += text; });
  const timer = setTimeout(() => sh.kill('SIGTERM'), 60_000);
  const [code] = (await once(sh, 'exit')) as [number];
  clearTimeout(timer);
  assert.equal(code, 0, output);
  assert.doesNotMatch(output, /Connection refused|error/i, output);
  const saved = (await readdir(dir)).filter((name) => /^frame\d{3}\.jpg$/.test(name)).sort();
  assert.equal(saved.length, 5, `five frames saved: ${saved.join(' ')}\n${output}`);
  for (const name of saved) {
    const body = await readFile(join(dir, name));
    assert.ok(FRAMES.some((frame) => frame.equals(body)), `${name} is one of the folder's JPEGs, whole`);
  }
  assert.match(output, /SIGTERM: ending \d+ stream\(s\) and stopping/, 'the server was stopped by the last line');
});
