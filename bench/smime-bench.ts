/**
 * In-process S/MIME throughput beside the same run's raw RSA-2048 signing
 * rate (both with many operations in flight, so both cores work), and the
 * peak memory of one 25 MB message in a child process of its own.
 */

import { spawnSync } from 'node:child_process';
import { constants, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { OID } from '../src/cms/oids.js';
import { AnchorValidator } from '../src/pki/anchor-validator.js';
import { generateDomainPki } from '../src/pki/keygen.js';
import { transformInbound } from '../src/smime/inbound.js';
import { transformOutbound } from '../src/smime/outbound.js';
import type { InboundContext, OutboundContext } from '../src/smime/types.js';

export interface SmimeBenchRow {
  readonly name: string;
  readonly size: number;
  readonly perSecond: number;
  readonly ratioToRawSign?: number;
}

const IN_FLIGHT = 32;

export function makeMessage(size: number): Buffer {
  const head = Buffer.from(
    'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: bench\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n',
  );
  const line = Buffer.from(
    'The quick brown fox jumps over the lazy dog, 0123456789 times over.\r\n',
  );
  // Filled in place: no message-sized string ever exists (it would inflate the memory baseline).
  const out = Buffer.allocUnsafe(size);
  head.copy(out, 0);
  for (let off = head.length; off < size; off += line.length)
    line.copy(out, off, 0, Math.min(line.length, size - off));
  out.write('\r\n', size - 2, 'latin1');
  return out;
}

/** Runs `op` `total` times with IN_FLIGHT concurrent; returns operations per second. */
async function rate(total: number, op: () => Promise<unknown>): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < total) {
        next++;
        await op();
      }
    }),
  );
  return total / ((performance.now() - start) / 1000);
}

export async function contexts() {
  const [org, net] = await Promise.all([
    generateDomainPki('example.org'),
    generateDomainPki('example.net'),
  ]);
  const signer = {
    certificate: org.signing.certificate,
    chain: [org.ca.certificate],
    privateKey: org.signing.privateKey,
  };
  const out = (caps?: string[]): OutboundContext => ({
    signer,
    recipients: [
      { certificate: net.encryption.certificate, ...(caps ? { capabilities: caps } : {}) },
    ],
    options: { sign: true, encrypt: true },
  });
  const inbound: InboundContext = {
    keys: [{ certificate: net.encryption.certificate, privateKey: net.encryption.privateKey }],
    validator: new AnchorValidator([org.ca.certificate]),
  };
  return { org, out, inbound };
}

export async function smimeBenchmarks(log: (s: string) => void): Promise<SmimeBenchRow[]> {
  const { org, out, inbound } = await contexts();
  const key = org.signing.privateKey;
  const digest = Buffer.alloc(64, 1);
  const signOnce = () =>
    new Promise((resolve, reject) =>
      sign('sha256', digest, { key, padding: constants.RSA_PKCS1_PADDING }, (e, s) =>
        e ? reject(e) : resolve(s),
      ),
    );
  await rate(200, signOnce); // warm-up
  const raw = await rate(3000, signOnce);
  log(`  raw RSA-2048 sign: ${raw.toFixed(0)}/s`);
  const rows: SmimeBenchRow[] = [
    { name: 'raw RSA-2048 sign (crypto.sign, 32 in flight)', size: 0, perSecond: raw },
  ];
  for (const [size, count] of [
    [10 * 1024, 3000],
    [1024 * 1024, 60],
  ] as const) {
    const message = makeMessage(size);
    const cbc = out();
    const gcm = out([OID.aes256Gcm]);
    const cases: [string, () => Promise<unknown>][] = [
      [
        'sign',
        () => transformOutbound(message, { ...cbc, options: { sign: true, encrypt: false } }),
      ],
      ['sign+encrypt (AES-256-CBC, RSA v1.5)', () => transformOutbound(message, cbc)],
      ['sign+encrypt (AES-256-GCM)', () => transformOutbound(message, gcm)],
    ];
    const protectedMessage = await transformOutbound(message, cbc);
    if (!protectedMessage.ok) throw new Error('bench setup failed');
    cases.push(['decrypt+verify (CBC)', () => transformInbound(protectedMessage.message, inbound)]);
    for (const [name, op] of cases) {
      await rate(Math.max(5, count / 20), op);
      const perSecond = await rate(count, op);
      log(`  ${size} B ${name}: ${perSecond.toFixed(1)}/s`);
      rows.push({ name, size, perSecond, ratioToRawSign: perSecond / raw });
    }
  }
  return rows;
}

export interface MemoryRow {
  readonly name: string;
  readonly size: number;
  readonly peakRssBytes: number;
  readonly baselineRssBytes: number;
}

const MEMORY_CHILD = fileURLToPath(new URL('./smime-memory.js', import.meta.url));

/** Peak RSS of one large message, each case in a fresh process. */
export function memoryBenchmarks(size: number): MemoryRow[] {
  const dir = mkdtempSync(join(tmpdir(), 'domsec-mem-'));
  const run = (mode: string) => {
    const r = spawnSync(process.execPath, ['--expose-gc', MEMORY_CHILD, mode, String(size), dir], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`memory bench ${mode} failed: ${r.stderr}`);
    return r.stdout;
  };
  try {
    run('prepare');
    return ['baseline', 'sign+encrypt', 'decrypt+verify'].map((name) => {
      const { peak, baseline } = JSON.parse(run(name).trim().split('\n').at(-1)!) as {
        peak: number;
        baseline: number;
      };
      return { name, size, peakRssBytes: peak, baselineRssBytes: baseline };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
