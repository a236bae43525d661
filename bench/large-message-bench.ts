/**
 * A 25 MB message through a running `domsec-milter serve` while small
 * messages keep coming: the small messages' latency beside the same run's
 * unloaded latency, and the milter's peak RSS beside the large message's size.
 * Messages go over the milter protocol directly (our client, as Postfix
 * sends them), so the figures are the milter's, not an MTA's queue.
 */

import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { certificatePem, generateDomainPki } from '../src/pki/keygen.js';
import { writeDomainPki } from '../src/pki/keygen-files.js';
import { startServe } from '../test/helpers/cli.js';
import { runMessage, servedMilter } from '../test/helpers/gateway-app.js';
import { type Latency, summarize } from './latency.js';
import { makeMessage } from './smime-bench.js';

const SENDER = fileURLToPath(new URL('./large-sender.js', import.meta.url));

export interface LargeMessageResult {
  readonly size: number;
  readonly unloaded: Latency;
  readonly loaded: Latency;
  /** Large messages completed while the small ones were measured, and their mean seconds. */
  readonly largeCompleted: number;
  readonly largeSeconds: number;
  readonly baselineRssBytes: number;
  readonly peakRssBytes: number;
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

const OUTBOUND = {
  from: '<alice@example.org>',
  rcpts: ['<bob@example.net>'],
  address: '127.0.0.1',
};

/** Times 10 KB sign+encrypt messages through the milter at `port`, one at a time. */
export function smallMessages(port: number): {
  send(): Promise<void>;
  time(n: number): Promise<number[]>;
} {
  const milter = servedMilter(port);
  const small = makeMessage(10 * 1024);
  const send = async () => {
    const r = await runMessage(milter, small, OUTBOUND);
    if (!r.edits.some((e) => e.type === 'replaceBody'))
      throw new Error('small message was not protected');
  };
  return {
    send,
    async time(n) {
      const ms: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await send();
        ms.push(performance.now() - t);
      }
      return ms;
    },
  };
}

export interface Sender {
  /** Each message's line as printed (seconds first), in order. */
  readonly lines: string[];
  /** Stops it once at least one message went through. */
  stop(): Promise<void>;
}

/**
 * Large messages, one after another from another process (its copying must
 * not delay this one's timing): `what` is a size (outbound) or files (inbound, see large-sender.ts).
 */
export function startSender(port: number, ...what: string[]): Sender {
  const sender = spawn(process.execPath, [SENDER, String(port), ...what], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  sender.stdout!.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n')) if (line.trim()) lines.push(line.trim());
  });
  const exited = new Promise((resolve) => sender.once('exit', resolve));
  return {
    lines,
    async stop() {
      // At least one large message must have been completed, else nothing was measured.
      while (lines.length === 0 && sender.exitCode === null)
        await new Promise((r) => setTimeout(r, 50));
      sender.kill();
      await exited;
      if (lines.length === 0) throw new Error('no large message went through');
    },
  };
}

export async function largeMessageBenchmark(
  o: { size: number; smallMessages: number; rounds: number },
  log: (s: string) => void,
): Promise<LargeMessageResult> {
  const dir = await mkdtemp(join(tmpdir(), 'domsec-large-'));
  const [org, net] = await Promise.all([
    generateDomainPki('example.org'),
    generateDomainPki('example.net'),
  ]);
  await writeDomainPki(join(dir, 'org'), 'example.org', org);
  writeFileSync(join(dir, 'partner.pem'), certificatePem(net.encryption.certificate));
  const serve = await startServe({
    DOMSEC_LOG_LEVEL: 'warn',
    DOMSEC_LOCAL_DOMAINS: 'example.org',
    DOMSEC_KEYS_DIR: join(dir, 'org'),
    DOMSEC_PARTNER_CERTS: join(dir, 'partner.pem'),
  });
  const pid = serve.process.pid!;
  const small = smallMessages(serve.port);
  try {
    for (let i = 0; i < 1000; i++) await small.send(); // warm-up: past V8's optimising compiler
    const baselineRssBytes = rssBytes(pid);
    let peakRssBytes = baselineRssBytes;
    const sampler = setInterval(() => {
      peakRssBytes = Math.max(peakRssBytes, rssBytes(pid));
    }, 10);
    // Unloaded and loaded in alternating blocks: a shared host's drift falls on both sides alike.
    const unloaded: number[] = [];
    const loaded: number[] = [];
    const largeTimes: number[] = [];
    const perBlock = Math.ceil(o.smallMessages / o.rounds);
    for (let round = 0; round < o.rounds; round++) {
      unloaded.push(...(await small.time(perBlock)));
      const sender = startSender(serve.port, String(o.size));
      // Until the first large message is under way, then measure while they keep coming.
      await new Promise((r) => setTimeout(r, 300));
      loaded.push(...(await small.time(perBlock)));
      await sender.stop();
      largeTimes.push(...sender.lines.map(Number));
      // The message cut off by the kill may still be in the transform worker: let it finish.
      await new Promise((r) => setTimeout(r, 1000));
    }
    clearInterval(sampler);
    const result = {
      size: o.size,
      unloaded: summarize(unloaded),
      loaded: summarize(loaded),
      largeCompleted: largeTimes.length,
      largeSeconds: largeTimes.reduce((a, b) => a + b, 0) / largeTimes.length,
      baselineRssBytes,
      peakRssBytes,
    };
    log(
      `  unloaded p99 ${result.unloaded.p99.toFixed(2)} ms, with ${o.size} B messages in flight p99 ${result.loaded.p99.toFixed(2)} ms; ${largeTimes.length} large done`,
    );
    return result;
  } finally {
    await serve.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
