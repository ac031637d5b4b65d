/**
 * Stress-row harness: serverpush's built CLI, `serverpush serve --exec GENERATOR`, the frames coming
 * through the command's pipe as concatenated JPEGs (bench/lib/frame-generator.ts), as a user runs
 * it with ffmpeg. `--arg stall-timeout=S` sets `--stall-timeout`; `--arg unsent=N` sets
 * `--max-unsent-bytes` (when the build has it). See live-external.ts.
 */
import { join } from 'node:path';
import { benchRoot, externalHarnessMain, spawnServer } from './live-external.ts';

externalHarnessMain(async (setup) => {
  const cli = join(benchRoot, 'dist/cli/main.js');
  const extra: string[] = [];
  const stall = setup.args.get('stall-timeout');
  if (stall !== undefined) extra.push('--stall-timeout', stall);
  const unsent = setup.args.get('unsent');
  if (unsent !== undefined) extra.push('--max-unsent-bytes', unsent);
  // `--arg probe=FILE`: the diagnostic preload push-probe.ts logs each frame's source delay to FILE.
  const probe = setup.args.get('probe');
  const probeArgs = probe === undefined ? [] : ['--import', 'tsx', '--import', './bench/lib/push-probe.ts'];
  const command = [...setup.pin, process.execPath, ...setup.nodeArgs, ...probeArgs, cli, 'serve', '--exec', setup.generator, '--port', '0', '--host', '127.0.0.1', ...extra];
  return await spawnServer(command, (line) => {
    const match = / info serving (?:.* )?at http:\/\/127\.0\.0\.1:(\d+)\//.exec(line);
    return match ? Number(match[1]) : undefined;
  }, probe === undefined ? {} : { env: { ...process.env, SP_PUSH_PROBE: probe } });
});
