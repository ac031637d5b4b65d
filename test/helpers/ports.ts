import { createServer } from 'node:net';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (listened on, then closed): for programs the
 * tests start that cannot listen on port 0 and say which port they got (nginx, redis-server,
 * WebKitWebDriver, ffmpeg -listen).
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
