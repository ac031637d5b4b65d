// Builds serverpush's optional socket options helper (native/socket-options.c) with node-gyp, at
// install (`npm ci`, `npm install`). It needs a C compiler and Node's headers; when it cannot be
// built, serverpush works without it and this script says so instead of failing the install:
// the kernel then bounds what a stalled viewer's socket may hold only by net.ipv4.tcp_wmem
// (README: Clients that stop reading). SERVERPUSH_SKIP_NATIVE=1 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const note = (text) => process.stderr.write(`serverpush: ${text}\n`);

function nodeGyp() {
  // npm sets npm_config_node_gyp for lifecycle scripts to the node-gyp it bundles.
  const candidates = [process.env.npm_config_node_gyp];
  if (process.env.npm_execpath) {
    try {
      candidates.push(createRequire(process.env.npm_execpath).resolve('node-gyp/bin/node-gyp.js'));
    } catch {
      // not beside this npm
    }
  }
  // Run by hand: the npm installed beside this node.
  candidates.push(join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'));
  return candidates.find((path) => path && existsSync(path));
}

if (process.env.SERVERPUSH_SKIP_NATIVE) {
  note('SERVERPUSH_SKIP_NATIVE is set: the socket options helper is not built.');
} else if (process.platform === 'win32') {
  note('the socket options helper is for Linux and macOS; not built on Windows.');
} else {
  const gyp = nodeGyp();
  // Build against the headers of the running Node when they are installed beside it (npm passes
  // its nodedir setting as npm_config_nodedir), so that node-gyp does not try to download them.
  const prefix = join(dirname(process.execPath), '..');
  const nodedir = process.env.npm_config_nodedir || (existsSync(join(prefix, 'include/node/node_api.h')) ? prefix : undefined);
  const args = ['rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
  const run = gyp
    ? spawnSync(process.execPath, [gyp, ...args], { cwd: root, encoding: 'utf8' })
    : spawnSync('node-gyp', args, { cwd: root, encoding: 'utf8' });
  if (run.error || run.status !== 0) {
    const why = run.error ? run.error.message : (run.stderr || run.stdout).trim().split('\n').slice(-3).join(' | ');
    note(`could not build the socket options helper (${why}).`);
    note('serverpush works without it, but cannot bound the kernel memory of a viewer that stops reading;');
    note('set `sysctl net.ipv4.tcp_notsent_lowat=131072` on the host instead (README: Clients that stop reading).');
  }
}
