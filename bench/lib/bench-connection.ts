/** What the two benchmark clients (live-client.ts, stream-client.ts) share: one TCP connection's lifecycle. */
import type { Socket } from 'node:net';

/** The part of a client's result that the connection itself fills in. */
export interface ConnectionResult {
  /** The first socket or protocol error, e.g. `EMFILE`. */
  error?: string;
  /** The server closed the connection before the bench stopped it. */
  closedEarly: boolean;
}

/** One bench client's connection: records its first error and whether the server closed it first. */
export class BenchConnection<R extends ConnectionResult> {
  readonly result: R;
  protected socket: Socket | undefined;
  private stopping = false;

  constructor(result: R) {
    this.result = result;
  }

  /** Takes `socket` (Nagle off), sends `request` on it, and watches for errors and an early close. */
  protected attach(socket: Socket, request: string): void {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.write(request);
    socket.on('error', (error: NodeJS.ErrnoException) => this.fail(error.code ?? error.message));
    socket.on('close', () => { if (!this.stopping) this.result.closedEarly = true; });
  }

  /** Closes the connection; what arrives afterwards is not counted. */
  stop(): void {
    this.stopping = true;
    this.socket?.destroy();
  }

  protected fail(reason: string): void {
    this.result.error ??= reason;
    this.socket?.destroy();
  }
}
