// The npm peers of the live fan-out bench ship no types; what bench/lib/live-server-*.ts uses.
declare module 'mjpeg-server' {
  import type { IncomingMessage, ServerResponse } from 'node:http';
  import type { Writable } from 'node:stream';
  /** A Writable: each `write(jpeg)` sends one part to this response. */
  export interface MjpegReqHandler extends Writable {
    close(): void;
  }
  export function createReqHandler(req: IncomingMessage, res: ServerResponse): MjpegReqHandler;
}

declare module 'mjpeg-proxy' {
  import type { IncomingMessage, ServerResponse } from 'node:http';
  export class MjpegProxy {
    constructor(mjpegUrl: string);
    proxyRequest(req: IncomingMessage, res: ServerResponse): void;
  }
}
