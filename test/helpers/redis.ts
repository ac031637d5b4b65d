/**
 * A real redis-server for a test: started on a free loopback port, without persistence, killed
 * after. It can be stopped and started again on the same port (Redis going away mid-stream).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createClient } from '@redis/client';
import { freePort } from './ports.ts';

export interface RedisProcess {
  port: number;
  url: string;
  /** Stops it (SIGKILL: no goodbye to the clients); `start()` brings it back on the same port. */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** Runs one command on it (a fresh connection each time). */
  command(args: string[]): Promise<unknown>;
}

/** Starts redis-server (`requirePass` sets a password). */
export async function startRedis(options: { requirePass?: string } = {}): Promise<RedisProcess> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...(options.requirePass ? ['--requirepass', options.requirePass] : [])];
    child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${output}`)), 10_000);
      child!.stdout!.on('data', (text: string) => {
        output += text;
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child!.once('exit', (code) => { clearTimeout(timer); reject(new Error(`redis-server exited with ${code}: ${output}`)); });
    });
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    async kill() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
    start,
    async command(args) {
      const client = createClient({ url: `redis://127.0.0.1:${port}`, ...(options.requirePass ? { password: options.requirePass } : {}) });
      client.on('error', () => {});
      await client.connect();
      try {
        return await client.sendCommand(args);
      } finally {
        client.destroy();
      }
    },
  };
}
