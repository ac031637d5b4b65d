/**
 * Live fan-out harness: the npm package mjpeg-proxy re-serving an upstream MJPEG stream to every
 * viewer, as its README shows (`new MjpegProxy(url).proxyRequest` as the route's handler).
 * The upstream is a minimal MJPEG camera in this same process (its CPU counts with the proxy's):
 * an HTTP server at /upstream that writes each pushed frame as one part,
 * `--B CRLF Content-Type CRLF Content-Length CRLF CRLF <jpeg> CRLF`, in one write.
 * See live-harness.ts.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { MjpegProxy } from 'mjpeg-proxy';
import { harnessMain } from './live-harness.ts';

const BOUNDARY = 'upstreamcameraboundary';

harnessMain(async () => {
  const cameras = new Set<ServerResponse>();
  const camera = createServer((req, res) => {
    if (req.url !== '/upstream') {
      res.writeHead(404).end();
      return;
    }
    res.socket?.setNoDelay(true);
    res.writeHead(200, { 'Content-Type': `multipart/x-mixed-replace; boundary=${BOUNDARY}`, 'Cache-Control': 'no-cache' });
    cameras.add(res);
    res.once('close', () => cameras.delete(res));
  });
  camera.listen(0, '127.0.0.1');
  await once(camera, 'listening');
  const upstream = `http://127.0.0.1:${(camera.address() as AddressInfo).port}/upstream`;
  const proxy = new MjpegProxy(upstream);
  const server = createServer((req, res) => {
    if (req.url !== '/stream') {
      res.writeHead(404).end();
      return;
    }
    proxy.proxyRequest(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    path: '/stream',
    push: (frame) => {
      const head = Buffer.from(`--${BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${frame.length}\r\n\r\n`, 'latin1');
      for (const res of cameras) {
        res.cork();
        res.write(head);
        res.write(frame);
        res.write('\r\n');
        res.uncork();
      }
    },
  };
});
