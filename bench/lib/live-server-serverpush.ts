/**
 * Live fan-out harness: serverpush's built server (dist/, `npm run build` first) with one `push`
 * stream at /stream; each frame goes in through `server.live().push()`. See live-harness.ts.
 */
import { harnessMain } from './live-harness.ts';

harnessMain(async () => {
  const dist = new URL('../../dist/index.js', import.meta.url).href;
  const { createServer } = await import(dist) as typeof import('../../src/index.ts');
  const server = await createServer({ port: 0, host: '127.0.0.1', streams: { default: { type: 'push' } } });
  const url = await server.listen();
  const live = server.live();
  return {
    port: Number(url.port),
    path: '/stream',
    push: (frame) => { live.push({ contentType: 'image/jpeg', body: frame }); },
  };
});
