/**
 * Stress-row harness: the C reference server (bench/reference-server.c), compiled with gcc -O2
 * into the run's folder, fed by the same frame generator through a shell pipe
 * (`generator | reference`). `--arg notsent-lowat=N` gives its sockets TCP_NOTSENT_LOWAT = N.
 * See live-external.ts.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { benchRoot, externalHarnessMain, spawnServer } from './live-external.ts';

externalHarnessMain(async (setup) => {
  const binary = join(setup.dir, 'reference-server');
  const cc = spawnSync('gcc', ['-O2', '-Wall', '-o', binary, join(benchRoot, 'bench/reference-server.c')], { encoding: 'utf8' });
  if (cc.error || cc.status !== 0) throw new Error(`gcc could not build bench/reference-server.c: ${cc.error?.message ?? cc.stderr}`);
  const portFile = join(setup.dir, 'port');
  const lowat = setup.args.get('notsent-lowat') ?? '0';
  // The server writes its port and pid to portFile: the bench samples that process.
  const pipeline = `${setup.generator} | ${binary} ${portFile} ${lowat}`;
  return await spawnServer([...setup.pin, 'sh', '-c', pipeline], () => undefined, { portFile });
});
