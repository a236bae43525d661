/** A real redis-server on a loopback port, private to one test. */

import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.js';

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  stop(): Promise<void>;
  /** Starts again on the same port (after stop). */
  start(): Promise<void>;
}

function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => {
      s.destroy();
      // A server with a password answers, but refuses PING before AUTH.
      resolve(/^(\+PONG|-NOAUTH)/.test(d.toString()));
    });
    s.once('error', () => resolve(false));
  });
}

/** `options.password`: the server requires it (requirepass); `url` then carries it. */
export async function startRedis(options: { password?: string } = {}): Promise<TestRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        ...(options.password !== undefined ? ['--requirepass', options.password] : []),
      ],
      {
        stdio: 'ignore',
      },
    );
    const deadline = Date.now() + 10_000;
    while (!(await pings(port))) {
      if (child.exitCode !== null)
        throw new Error(`redis-server exited ${child.exitCode} (is it installed?)`);
      if (Date.now() > deadline) throw new Error('redis-server did not answer PING in 10 s');
      await sleep(20);
    }
  };
  await start();
  return {
    port,
    url:
      options.password !== undefined
        ? `redis://:${encodeURIComponent(options.password)}@127.0.0.1:${port}`
        : `redis://127.0.0.1:${port}`,
    start,
    stop: async () => {
      // Killed by a signal, a child has a signalCode and no exitCode: stopped twice, it must not wait.
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}
