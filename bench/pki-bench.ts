/**
 * Partner certificate and revocation look-ups (issue 4): cached answers
 * through the code the gateway runs (PartnerCertificates -> CachedSource,
 * RevocationChecker) on the in-memory cache and on a real Redis, and cold
 * look-ups per source against real servers (slapd, dnsmasq, openssl ocsp,
 * CRLs over HTTP) with every cache bypassed.
 */

import { performance } from 'node:perf_hooks';
import type { Cache } from '../src/cache/cache.js';
import { MemoryCache } from '../src/cache/memory.js';
import { RedisCache } from '../src/cache/redis.js';
import type { CertificateInfo } from '../src/cms/certificate.js';
import { AnchorValidator } from '../src/pki/anchor-validator.js';
import { CachedSource } from '../src/pki/cached-source.js';
import { DnsClient } from '../src/pki/dns-client.js';
import { DNS_TYPE } from '../src/pki/dns-wire.js';
import { httpFetch } from '../src/pki/http-fetch.js';
import { LdapCertificateSource } from '../src/pki/ldap-source.js';
import {
  type CertificateSource,
  type LookupResult,
  PartnerCertificates,
} from '../src/pki/partners.js';
import {
  RevocationChecker,
  type RevocationMethod,
  type RevocationOptions,
} from '../src/pki/revocation/checker.js';
import { CrlStore } from '../src/pki/revocation/crl-store.js';
import { DOMAIN_ENCRYPTION_LOCAL_PART, smimeaOwnerName } from '../src/pki/smimea-record.js';
import { SmimeaCertificateSource } from '../src/pki/smimea-source.js';
import { StaticCertificateDirectory } from '../src/pki/static-directory.js';
import { type Latency, timeEach } from './latency.js';
import {
  Cleanup,
  LDAP_BASE,
  LOOKED_UP,
  PARTNER_COUNT,
  type PkiFixture,
  partnerDomain,
  startPkiFixture,
} from './pki-fixtures.js';

export interface LatencyRow {
  readonly name: string;
  readonly latency: Latency;
}

export interface PkiBenchResult {
  readonly cached: LatencyRow[];
  readonly cold: LatencyRow[];
  /** Loading the 1000-file PEM directory once (at startup in the gateway). */
  readonly directoryLoadMs: number;
}

export interface PkiBenchOptions {
  /** Timed cached look-ups per row (after a tenth as many untimed). */
  readonly lookups: number;
  /** Timed cold look-ups per source (after a few untimed). */
  readonly coldRuns: number;
}

const TTL = { maxTtlSeconds: 3600, negativeTtlSeconds: 60 };

/** A cache that never answers: every revocation check asks the responder. */
const noCache: Cache = {
  get: async () => undefined,
  set: async () => {},
  delete: async () => {},
  keys: async () => [],
  close: async () => {},
};

/** Counts the look-ups that reach `inner`: the cached rows must reach it once, when priming. */
function counted(inner: CertificateSource): CertificateSource & { readonly calls: number } {
  let calls = 0;
  return {
    name: inner.name,
    get calls() {
      return calls;
    },
    lookup: (domain, at) => {
      calls++;
      return inner.lookup(domain, at);
    },
  };
}

function expectFound(r: LookupResult, want: CertificateInfo, what: string): void {
  if (r.status !== 'found' || r.certificate.fingerprint !== want.fingerprint)
    throw new Error(`${what}: expected the partner's certificate, got ${JSON.stringify(r)}`);
}

function checker(
  methods: RevocationMethod[],
  cache: Cache,
  crls: CrlStore,
  observe?: RevocationOptions['observe'],
): RevocationChecker {
  return new RevocationChecker({
    methods,
    cache,
    crls,
    fetch: httpFetch,
    timeoutMs: 5000,
    ...TTL,
    ...(observe ? { observe } : {}),
  });
}

const crlStore = () =>
  new CrlStore({
    fetch: (url) => httpFetch(url, { timeoutMs: 5000, maxBytes: 64 << 20 }),
    maxAgeMs: 3600_000,
  });

async function redisCache(url: string, hits: { redis: number }): Promise<RedisCache> {
  const cache = new RedisCache({
    url,
    prefix: 'bench:',
    fallback: new MemoryCache(),
    observe: (which, result) => {
      if (which === 'redis' && result === 'hit') hits.redis++;
    },
  });
  const deadline = Date.now() + 5000;
  while (!cache.reachable) {
    if (Date.now() > deadline) {
      await cache.close();
      throw new Error(`Redis at ${url} not reachable within 5 s`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return cache;
}

async function cachedLookups(
  f: PkiFixture,
  opts: PkiBenchOptions,
  cleanup: Cleanup,
  log: (s: string) => void,
): Promise<LatencyRow[]> {
  const domain = partnerDomain(LOOKED_UP);
  const want = f.partners[LOOKED_UP]!;
  const warmUp = Math.ceil(opts.lookups / 10);
  const hits = { redis: 0 };
  const redis = await redisCache(f.redis.url, hits);
  cleanup.add('Redis client', () => redis.close());
  // The partner is in LDAP only: the directory, asked first, scans its certificates in vain.
  const directory = new StaticCertificateDirectory(f.partners.filter((_, i) => i !== LOOKED_UP));
  const { issuer, ocspLeaf } = f.revocation;
  const rows: LatencyRow[] = [];

  const partnerRow = async (name: string, cache: Cache, before: CertificateSource[] = []) => {
    const ldap = counted(new LdapCertificateSource([f.slapd.url(LDAP_BASE)]));
    const partners = new PartnerCertificates([...before, new CachedSource(ldap, cache, TTL)]);
    const redisBefore = hits.redis;
    const latency = await timeEach(opts.lookups, warmUp, async () =>
      expectFound(await partners.lookup(domain), want, name),
    );
    if (ldap.calls !== 1) throw new Error(`${name}: LDAP asked ${ldap.calls} times, not once`);
    if (cache === redis && hits.redis - redisBefore < opts.lookups + warmUp - 1)
      throw new Error(`${name}: Redis answered only ${hits.redis - redisBefore} look-ups`);
    log(`  ${name}: p50 ${latency.p50.toFixed(3)} ms, p99 ${latency.p99.toFixed(3)} ms`);
    rows.push({ name, latency });
  };
  await partnerRow('partner certificate, in-memory cache', new MemoryCache());
  await partnerRow('partner certificate, Redis', redis);
  await partnerRow(
    `partner certificate, in-memory cache, after a ${directory.size}-certificate directory without it`,
    new MemoryCache(),
    [directory],
  );

  const revocationRow = async (name: string, cache: Cache) => {
    let fromCache = 0;
    let asked = 0;
    const c = checker(['ocsp'], cache, crlStore(), (method) => {
      if (method === 'cache') fromCache++;
      else asked++;
    });
    const latency = await timeEach(opts.lookups, warmUp, async () => {
      const r = await c.check(ocspLeaf, issuer, new Date());
      if (r.status !== 'good') throw new Error(`${name}: ${JSON.stringify(r)}`);
    });
    if (asked !== 1 || fromCache !== opts.lookups + warmUp - 1)
      throw new Error(`${name}: responder asked ${asked} times, cache answered ${fromCache}`);
    log(`  ${name}: p50 ${latency.p50.toFixed(3)} ms, p99 ${latency.p99.toFixed(3)} ms`);
    rows.push({ name, latency });
  };
  const redisBefore = hits.redis;
  await revocationRow('revocation answer (OCSP good), in-memory cache', new MemoryCache());
  await revocationRow('revocation answer (OCSP good), Redis', redis);
  if (hits.redis - redisBefore < opts.lookups + warmUp - 1)
    throw new Error(`revocation answer, Redis: Redis answered only ${hits.redis - redisBefore}`);
  return rows;
}

async function coldLookups(
  f: PkiFixture,
  opts: PkiBenchOptions,
  log: (s: string) => void,
): Promise<{ rows: LatencyRow[]; directoryLoadMs: number }> {
  const domain = partnerDomain(LOOKED_UP);
  const want = f.partners[LOOKED_UP]!;
  const n = opts.coldRuns;
  const warmUp = 10;
  const rows: LatencyRow[] = [];
  const row = async (name: string, op: () => Promise<void>) => {
    const latency = await timeEach(n, warmUp, op);
    log(`  ${name}: p50 ${latency.p50.toFixed(3)} ms, p99 ${latency.p99.toFixed(3)} ms`);
    rows.push({ name, latency });
  };

  const start = performance.now();
  const directory = await StaticCertificateDirectory.load(f.directoryPath);
  const directoryLoadMs = performance.now() - start;
  if (directory.size !== PARTNER_COUNT) throw new Error(`directory holds ${directory.size}`);
  await row(`static directory (${PARTNER_COUNT} certificates in memory)`, async () =>
    expectFound(await directory.lookup(domain), want, 'directory'),
  );

  const ldap = new LdapCertificateSource([f.slapd.url(LDAP_BASE)]);
  await row(
    `LDAP, slapd (${PARTNER_COUNT} entries; connect, anonymous search, parse; no PKIX validation)`,
    async () => expectFound(await ldap.lookup(domain), want, 'LDAP'),
  );

  const dns = new DnsClient({ server: f.dns.address, timeoutMs: 2000, attempts: 1 });
  const probe = await dns.query(
    smimeaOwnerName(DOMAIN_ENCRYPTION_LOCAL_PART, domain),
    DNS_TYPE.SMIMEA,
  );
  const transport = probe.status === 'found' ? probe.transport.toUpperCase() : probe.status;
  const smimea = new SmimeaCertificateSource(dns, new AnchorValidator([f.partnerCa]), {
    requireDnssec: false,
  });
  await row(`DNS SMIMEA usage 3, dnsmasq (${transport}, DNSSEC not required)`, async () =>
    expectFound(await smimea.lookup(domain), want, 'SMIMEA'),
  );

  const { issuer, ocspLeaf, crlLeaf, crlPath, crls, http } = f.revocation;
  const ocsp = checker(['ocsp'], noCache, crlStore());
  await row('OCSP, openssl ocsp (delegated responder, nonce; request, verify, judge)', async () => {
    const r = await ocsp.check(ocspLeaf, issuer, new Date());
    if (r.status !== 'good' || r.method !== 'ocsp') throw new Error(`OCSP: ${JSON.stringify(r)}`);
  });
  for (const crl of crls) {
    http.set(crlPath, crl.der);
    await row(
      `CRL over HTTP, ${crl.entries.toLocaleString('en')} ${crl.entries === 1 ? 'entry' : 'entries'} (${size(crl.der.length)}; fetch, parse, verify, look up)`,
      async () => {
        // A fresh store each time: the CRL is fetched and parsed for every check.
        const r = await checker(['crl'], noCache, crlStore()).check(crlLeaf, issuer, new Date());
        if (r.status !== 'good' || r.method !== 'crl') throw new Error(`CRL: ${JSON.stringify(r)}`);
      },
    );
  }
  return { rows, directoryLoadMs };
}

const size = (bytes: number) =>
  bytes < 10_000 ? `${bytes} bytes` : `${(bytes / 1024).toFixed(0)} KB`;

export async function pkiBenchmarks(
  opts: PkiBenchOptions,
  log: (s: string) => void,
): Promise<PkiBenchResult> {
  const cleanup = new Cleanup();
  try {
    const f = await startPkiFixture(cleanup, log);
    const cached = await cachedLookups(f, opts, cleanup, log);
    const cold = await coldLookups(f, opts, log);
    return { cached, cold: cold.rows, directoryLoadMs: cold.directoryLoadMs };
  } finally {
    await cleanup.run();
  }
}
