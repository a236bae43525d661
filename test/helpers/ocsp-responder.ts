/**
 * A real OCSP responder: `openssl ocsp` answering from a test CA's index.txt.
 * openssl can only take a port (it listens on every address); tests talk to
 * it over 127.0.0.1 only.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.js';

/**
 * Whether the responder answers HTTP. A bare connect-and-close probe would
 * wedge `openssl ocsp` (it then waits on that dead connection for good), so
 * the probe sends a real request and waits for any answer.
 */
function answersHttp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setTimeout(2000, () => {
      s.destroy();
      resolve(false);
    });
    s.once('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
    s.once('data', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface OcspResponderOptions {
  readonly indexPath: string;
  /** The CA whose certificates the index lists. */
  readonly caCertPath: string;
  /** Certificate and key that sign the responses (the CA itself or a delegated responder). */
  readonly signerCertPath: string;
  readonly signerKeyPath: string;
  /** Known in advance when certificates must name the URL. */
  readonly port?: number;
  /** Minutes until nextUpdate; omitted: responses carry no nextUpdate. */
  readonly nextUpdateMinutes?: number;
}

export interface OcspResponder {
  readonly port: number;
  readonly url: string;
  stop(): Promise<void>;
}

export async function startOcspResponder(o: OcspResponderOptions): Promise<OcspResponder> {
  const port = o.port ?? (await freePort());
  const args = ['ocsp', '-port', String(port), '-index', o.indexPath, '-CA', o.caCertPath];
  args.push('-rsigner', o.signerCertPath, '-rkey', o.signerKeyPath, '-ignore_err');
  if (o.nextUpdateMinutes !== undefined) args.push('-nmin', String(o.nextUpdateMinutes));
  const child: ChildProcess = spawn('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const deadline = Date.now() + 10_000;
  while (!(await answersHttp(port))) {
    if (child.exitCode !== null)
      throw new Error(`openssl ocsp exited ${child.exitCode}: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`openssl ocsp did not listen on ${port}: ${stderr}`);
    await sleep(20);
  }
  return {
    port,
    url: `http://127.0.0.1:${port}/`,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}
