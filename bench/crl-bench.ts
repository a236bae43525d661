/**
 * CRL parsing at scale: CRLs made by `openssl ca -gencrl` from an index.txt
 * of N revocations, parsed by our positional DER reader (parseCrl) and, for
 * comparison, by asn1js + pkijs CertificateRevocationList from the same bytes.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { loadCertificatesPem } from '../src/cms/certificate.js';
import { parseCrl } from '../src/pki/revocation/crl.js';
import { createTestCa } from '../test/helpers/pki.js';
import { type Latency, summarize, timeEachSync } from './latency.js';
import { crlDer, revokedIndexLines } from './pki-fixtures.js';

export interface CrlRow {
  readonly entries: number;
  readonly bytes: number;
  /** `openssl ca -gencrl`, for scale. */
  readonly opensslMs: number;
  readonly parse: Latency;
  /** crl.signedBy(issuer key) on a fresh parse each time (the verdict is memoised per key). */
  readonly signedBy: Latency;
  /** One crl.lookup(serial), mean over many. */
  readonly lookupUs: number;
  /** asn1js.fromBER with its default limits, then pkijs: 'ok' or why it failed. */
  readonly pkijsDefaultLimits: string;
  /** asn1js.fromBER with raised limits, then pkijs (medians); why not, when it failed. */
  readonly pkijs: PkijsTiming | string;
}

/** Enough for 100 000 entries (about 8 nodes each); the defaults are 10 000 nodes. */
export const RAISED_LIMITS = { maxNodes: 20_000_000, maxContentLength: 256 << 20 } as const;

interface PkijsTiming {
  /** asn1js.fromBER alone. */
  readonly berMs: number;
  /** fromBER plus new CertificateRevocationList. */
  readonly totalMs: number;
}

/** Parses with asn1js + pkijs; why it failed, as text, when it did. */
function pkijsParse(
  der: Buffer,
  entries: number,
  limits?: typeof RAISED_LIMITS,
): PkijsTiming | string {
  try {
    const start = performance.now();
    const ber = asn1js.fromBER(der, limits ? { ...limits, copyInput: false } : undefined);
    const berMs = performance.now() - start;
    if (ber.offset === -1 || ber.result.error) throw new Error(ber.result.error || 'not BER');
    const crl = new pkijs.CertificateRevocationList({ schema: ber.result });
    const totalMs = performance.now() - start;
    const count = crl.revokedCertificates?.length ?? 0;
    return count === entries ? { berMs, totalMs } : `read ${count} of ${entries} entries`;
  } catch (err) {
    return `fails: ${(err instanceof Error ? err.message : String(err)).slice(0, 80)}`;
  }
}

/** Medians of `runs` pkijs parses (after one untimed when runs > 1), or the first failure. */
function pkijsTimings(der: Buffer, entries: number, runs: number): PkijsTiming | string {
  if (runs > 1) {
    const warm = pkijsParse(der, entries, RAISED_LIMITS);
    if (typeof warm === 'string') return warm;
  }
  const ber: number[] = [];
  const total: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = pkijsParse(der, entries, RAISED_LIMITS);
    if (typeof t === 'string') return t;
    ber.push(t.berMs);
    total.push(t.totalMs);
  }
  return { berMs: summarize(ber).p50, totalMs: summarize(total).p50 };
}

/** pkijs takes about 0.2 ms per entry: a single run for the large CRL keeps the bench short. */
export const pkijsRunsFor = (entries: number) => (entries >= 50_000 ? 1 : 3);

const serialHex = (i: number) => (0x100000 + i).toString(16);

export async function crlBenchmarks(
  sizes: readonly number[],
  runs: number,
  log: (s: string) => void,
): Promise<CrlRow[]> {
  const dir = await mkdtemp(join(tmpdir(), 'domsec-crl-bench-'));
  try {
    const ca = await createTestCa(dir, 'Bench CRL CA');
    const issuerKey = loadCertificatesPem(ca.certPem)[0]!.publicKey;
    const rows: CrlRow[] = [];
    for (const entries of sizes) {
      await writeFile(ca.indexPath, revokedIndexLines(entries));
      const made = performance.now();
      const der = await crlDer(ca);
      const opensslMs = performance.now() - made;
      log(`  CRL of ${entries} entries: ${der.length} bytes, openssl ${opensslMs.toFixed(0)} ms`);

      const parsed = parseCrl(der);
      if (parsed.size !== entries || !parsed.signedBy(issuerKey))
        throw new Error(`parseCrl read ${parsed.size} of ${entries} entries or a bad signature`);
      const parse = timeEachSync(runs, 1, () => parseCrl(der));
      const verifyMs: number[] = [];
      for (let i = 0; i < runs; i++) {
        const fresh = parseCrl(der);
        const start = performance.now();
        if (!fresh.signedBy(issuerKey)) throw new Error('CRL signature does not verify');
        verifyMs.push(performance.now() - start);
      }
      const probes = 100_000;
      const serials = Array.from({ length: 1000 }, (_, i) => serialHex((i * 7919) % entries));
      let found = 0;
      const start = performance.now();
      for (let i = 0; i < probes; i++) if (parsed.lookup(serials[i % serials.length]!)) found++;
      const lookupUs = ((performance.now() - start) * 1000) / probes;
      if (found !== probes) throw new Error(`lookup found ${found} of ${probes} revoked serials`);

      const defaults = pkijsParse(der, entries);
      const pkijsDefaultLimits = typeof defaults === 'string' ? defaults : 'ok';
      const pkijsTiming = pkijsTimings(der, entries, pkijsRunsFor(entries));
      const row: CrlRow = {
        entries,
        bytes: der.length,
        opensslMs,
        parse,
        signedBy: summarize(verifyMs),
        lookupUs,
        pkijsDefaultLimits,
        pkijs: pkijsTiming,
      };
      log(
        `  ${entries}: parseCrl ${parse.p50.toFixed(1)} ms, pkijs ${typeof pkijsTiming === 'string' ? pkijsTiming : `${pkijsTiming.totalMs.toFixed(0)} ms`}`,
      );
      rows.push(row);
    }
    return rows;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
