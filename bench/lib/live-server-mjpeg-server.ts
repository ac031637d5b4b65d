/**
 * Live fan-out harness: the npm package mjpeg-server, used as its README shows: one request
 * handler per viewer (`createReqHandler(req, res)`), and each frame written to every handler
 * (`handler.write(jpeg)`). See live-harness.ts.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { createReqHandler, type MjpegReqHandler } from 'mjpeg-server';
import { harnessMain } from './live-harness.ts';

harnessMain(async () => {
  const handlers = new Set<MjpegReqHandler>();
  const server = createServer((req, res) => {
    if (req.url !== '/stream') {
      res.writeHead(404).end();
      return;
    }
    const handler = createReqHandler(req, res);
    // A write after the viewer left must not crash the harness.
    handler.on('error', () => {});
    handlers.add(handler);
    res.once('close', () => handlers.delete(handler));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    path: '/stream',
    push: (frame) => { for (const handler of handlers) handler.write(frame); },
  };
});
