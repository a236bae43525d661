/**
 * Throughput through a real private Postfix: smtp-source sends N messages at
 * concurrency C (one SMTP session each) and the clock stops when the sink has
 * received all N. Variants run interleaved in one process run, several rounds,
 * and each is reported as the median and as a ratio to "no milter".
 */

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startServe } from '../test/helpers/cli.js';
import { freePort } from '../test/helpers/ports.js';
import { type PostfixInstance, startPostfix } from '../test/helpers/postfix.js';
import { type SmtpSink, startSmtpSink } from '../test/helpers/smtp-sink.js';

export interface PostfixBenchOptions {
  readonly messages: number;
  readonly concurrency: number;
  readonly sizes: readonly number[];
  readonly rounds: number;
}

export interface PostfixBenchRow {
  readonly size: number;
  readonly variant: string;
  readonly rates: number[];
  readonly median: number;
  readonly ratio: number;
  /** CPU of the milter process per message, in ms (0 without a milter). */
  readonly milterCpuMs: number;
}

interface Variant {
  readonly name: string;
  readonly postfix: PostfixInstance;
  /** The milter process, for CPU accounting. */
  readonly pid?: number;
  stop(): Promise<void>;
}

const HEADER_MILTER = fileURLToPath(new URL('./header-milter.js', import.meta.url));

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** utime + stime of a process, in ms. */
function cpuMs(pid: number | undefined): number {
  if (!pid) return 0;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function startHeaderMilter(): Promise<{
  address: string;
  pid: number;
  stop(): Promise<void>;
}> {
  const port = await freePort();
  const child = spawn(process.execPath, [HEADER_MILTER, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`header milter exited ${code}`)));
  });
  return {
    address: `inet:127.0.0.1:${port}`,
    pid: child.pid!,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function startVariants(sink: SmtpSink): Promise<Variant[]> {
  const quiet = { default_process_limit: '200' };
  const none = await startPostfix({ relayPort: sink.port, mainCf: quiet });
  const serve = await startServe({ DOMSEC_LOG_LEVEL: 'warn', DOMSEC_MODE: 'pass-through' });
  const pass = await startPostfix({ relayPort: sink.port, milter: serve.address, mainCf: quiet });
  const header = await startHeaderMilter();
  const withHeader = await startPostfix({
    relayPort: sink.port,
    milter: header.address,
    mainCf: quiet,
  });
  return [
    { name: 'no milter', postfix: none, stop: () => none.stop() },
    {
      name: 'pass-through (domsec-milter serve)',
      postfix: pass,
      pid: serve.process.pid,
      stop: async () => {
        await pass.stop();
        await serve.stop();
      },
    },
    {
      name: 'header-adding milter',
      postfix: withHeader,
      pid: header.pid,
      stop: async () => {
        await withHeader.stop();
        await header.stop();
      },
    },
  ];
}

/**
 * smtp-source: `messages` messages over `concurrency` parallel sessions, one
 * message per session; generated bodies of `size` bytes, or a pre-formatted
 * message file (-F).
 */
export function smtpSource(
  port: number,
  messages: number,
  concurrency: number,
  size: number,
  to = 'bob@example.net',
  file?: string,
): Promise<void> {
  const args = [
    '-s',
    String(concurrency),
    '-m',
    String(messages),
    '-f',
    'alice@example.org',
    '-t',
    to,
    '-M',
    'client.test',
  ];
  if (file) args.push('-F', file);
  else args.push('-l', String(size));
  args.push(`127.0.0.1:${port}`);
  return new Promise((resolve, reject) => {
    const child = spawn('smtp-source', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`smtp-source exited ${code}: ${err}`)),
    );
  });
}

async function measure(v: Variant, sink: SmtpSink, o: PostfixBenchOptions, size: number) {
  sink.messages.length = 0;
  const cpuBefore = cpuMs(v.pid);
  const start = performance.now();
  await smtpSource(v.postfix.smtpPort, o.messages, o.concurrency, size);
  await sink.waitFor(o.messages, 600_000);
  const seconds = (performance.now() - start) / 1000;
  const cpu = cpuMs(v.pid) - cpuBefore;
  sink.messages.length = 0;
  return { rate: o.messages / seconds, cpuPerMessage: cpu / o.messages };
}

export async function postfixBenchmarks(
  o: PostfixBenchOptions,
  log: (s: string) => void,
): Promise<PostfixBenchRow[]> {
  const sink = await startSmtpSink();
  const variants = await startVariants(sink);
  const rows: PostfixBenchRow[] = [];
  try {
    for (const size of o.sizes) {
      // Warm-up: every Postfix spawns its daemons and every milter its JIT.
      for (const v of variants)
        await measure(v, sink, { ...o, messages: Math.min(200, o.messages) }, size);
      const rates = new Map<string, number[]>(variants.map((v) => [v.name, []]));
      const cpu = new Map<string, number[]>(variants.map((v) => [v.name, []]));
      for (let round = 0; round < o.rounds; round++) {
        // Rotate the order each round so no variant always runs first or last.
        const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
        for (const v of order) {
          const r = await measure(v, sink, o, size);
          rates.get(v.name)!.push(r.rate);
          cpu.get(v.name)!.push(r.cpuPerMessage);
          log(`  ${size} B, round ${round + 1}, ${v.name}: ${r.rate.toFixed(0)} msgs/s`);
        }
      }
      const baseline = median(rates.get('no milter')!);
      for (const v of variants) {
        const m = median(rates.get(v.name)!);
        rows.push({
          size,
          variant: v.name,
          rates: rates.get(v.name)!,
          median: m,
          ratio: m / baseline,
          milterCpuMs: median(cpu.get(v.name)!),
        });
      }
    }
  } finally {
    for (const v of variants) await v.stop();
    await sink.close();
  }
  return rows;
}
