/**
 * `domsec-milter certs list | lookup DOMAIN | import FILE | purge DOMAIN|--all`:
 * what the gateway knows about certificates, asked the way the running
 * milter asks (same configuration, same cache: with DOMSEC_REDIS_URL set the
 * answers are the ones every replica shares).
 */

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { Cache } from '../cache/cache.js';
import { RedisCache } from '../cache/redis.js';
import { createCache } from '../cache/setup.js';
import {
  type CertificateInfo,
  describeName,
  loadCertificate,
  loadCertificatesPem,
} from '../cms/certificate.js';
import type { Config } from '../config.js';
import { CachedSource, partnerCacheKey } from '../pki/cached-source.js';
import { HarvestedCertificates, harvestCacheKey } from '../pki/harvest.js';
import { loadIdentities } from '../pki/identities.js';
import type { LookupResult } from '../pki/partners.js';
import { loadPki, type Pki } from '../pki/setup.js';
import {
  domainMatch,
  encryptionProblem,
  StaticCertificateDirectory,
} from '../pki/static-directory.js';
import { UsageError } from './usage.js';

export interface CertsIo {
  readonly out: (line: string) => void;
  readonly warn: (line: string) => void;
}

/** Exit codes: 0 found/done, 2 not found, 75 (EX_TEMPFAIL) a source failed temporarily. */
export const EXIT_NOT_FOUND = 2;
export const EXIT_TEMPFAIL = 75;

const REDIS_WAIT_MS = 5000;

const DOMAIN =
  /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/;

function summary(c: CertificateInfo): Record<string, unknown> {
  return {
    subject: describeName(c, 'subject'),
    issuer: describeName(c, 'issuer'),
    emails: c.rfc822Names,
    dns: c.dnsNames,
    notAfter: c.notAfter.toISOString(),
    sha256: c.fingerprint,
  };
}

function line(fields: readonly (string | undefined)[]): string {
  return fields.filter((f) => f !== undefined && f !== '').join('  ');
}

const short = (c: CertificateInfo) =>
  `${describeName(c, 'subject')}  expires ${c.notAfter.toISOString().slice(0, 10)}  sha256 ${c.fingerprint.slice(0, 16)}`;

interface Context {
  readonly config: Config;
  readonly cache: Cache;
  readonly pki: Pki;
  readonly harvested: HarvestedCertificates;
}

async function open(config: Config, io: CertsIo): Promise<Context> {
  const cache = createCache(config, { warn: (m) => io.warn(m) });
  if (cache instanceof RedisCache && !(await cache.ready(REDIS_WAIT_MS))) {
    await cache.close();
    throw new UsageError(`Redis (DOMSEC_REDIS_URL) did not answer within ${REDIS_WAIT_MS} ms`);
  }
  const harvested = new HarvestedCertificates(cache);
  const pki = await loadPki(config, { cache, harvested });
  return { config, cache, pki, harvested };
}

async function list(ctx: Context, json: boolean, io: CertsIo): Promise<number> {
  const { config, cache, pki } = ctx;
  let identities: Awaited<ReturnType<typeof loadIdentities>> = new Map();
  let identityProblem: string | undefined;
  try {
    identities = await loadIdentities(config.keysDir, config.localDomains, {
      passphrase: config.keysPassphrase,
    });
  } catch (err) {
    identityProblem = err instanceof Error ? err.message : String(err);
  }
  const ours = [...identities.values()].flatMap((id) =>
    id.keys.map((k) => ({ domain: id.domain, label: k.label, ...summary(k.certificate) })),
  );
  const directory = pki.sources.find((s) => s instanceof StaticCertificateDirectory);
  const partners = (directory instanceof StaticCertificateDirectory ? directory.all : []).map((c) =>
    summary(c),
  );
  const cached: Record<string, unknown>[] = [];
  for (const key of [...(await cache.keys('harvest:')), ...(await cache.keys('partner:'))].sort()) {
    const [kind, a, b] = key.split(':');
    const source = kind === 'harvest' ? 'harvested' : a!;
    const domain = kind === 'harvest' ? a! : b!;
    const raw = await cache.get(key);
    if (!raw) continue;
    try {
      const v = JSON.parse(raw) as { status?: string; der?: string; imported?: boolean };
      if (v.der) {
        const c = loadCertificate(Buffer.from(v.der, 'base64'));
        cached.push({ source: v.imported ? 'imported' : source, domain, ...summary(c) });
      } else cached.push({ source, domain, status: v.status ?? 'unknown' });
    } catch {
      cached.push({ source, domain, status: 'damaged entry' });
    }
  }
  const revocations = (await cache.keys('revocation:')).length;
  const cacheKind = config.redisUrl ? 'redis' : 'memory (not shared with a running milter)';
  if (json) {
    const problem = identityProblem ? { identityProblem } : {};
    io.out(
      JSON.stringify(
        { ours, ...problem, partners, cached, revocations, cache: cacheKind },
        null,
        2,
      ),
    );
    return 0;
  }
  io.out(`our identities (${config.keysDir}):`);
  for (const id of identities.values())
    for (const k of id.keys) io.out(`  ${line([id.domain, k.label, short(k.certificate)])}`);
  if (identityProblem) io.out(`  cannot load: ${identityProblem}`);
  else if (identities.size === 0) io.out('  (none)');
  io.out(`partner directory (${config.partnerCerts ?? 'DOMSEC_PARTNER_CERTS unset'}):`);
  if (directory instanceof StaticCertificateDirectory)
    for (const c of directory.all) io.out(`  ${short(c)}`);
  io.out(`cached partner answers (${cacheKind}):`);
  for (const c of cached)
    io.out(
      `  ${line([String(c['source']), String(c['domain']), c['status'] ? String(c['status']) : `${c['subject']}  expires ${String(c['notAfter']).slice(0, 10)}  sha256 ${String(c['sha256']).slice(0, 16)}`])}`,
    );
  if (cached.length === 0) io.out('  (none)');
  io.out(`cached revocation answers: ${revocations}`);
  return 0;
}

async function lookup(ctx: Context, domain: string, json: boolean, io: CertsIo): Promise<number> {
  const at = new Date();
  const answers: { source: string; result: LookupResult }[] = [];
  for (const source of ctx.pki.sources) {
    // Past the cache: the administrator asks what the sources say now.
    const inner = source instanceof CachedSource ? source.inner : source;
    let result: LookupResult;
    try {
      result = await inner.lookup(domain, at);
    } catch (err) {
      result = {
        status: 'temporary-failure',
        reason: err instanceof Error ? err.message : String(err),
      };
    }
    answers.push({ source: result.status === 'found' ? result.source : source.name, result });
  }
  const chosen = answers.find((a) => a.result.status === 'found');
  const certificate = chosen?.result.status === 'found' ? chosen.result.certificate : undefined;
  const verdict = certificate ? await ctx.pki.validator.validate(certificate, [], at) : undefined;
  const code = certificate
    ? 0
    : answers.some((a) => a.result.status === 'temporary-failure')
      ? EXIT_TEMPFAIL
      : EXIT_NOT_FOUND;
  if (json) {
    io.out(
      JSON.stringify(
        {
          domain,
          sources: answers.map((a) => ({
            source: a.source,
            status: a.result.status,
            ...(a.result.status === 'found' ? { certificate: summary(a.result.certificate) } : {}),
            ...(a.result.status === 'temporary-failure' ? { reason: a.result.reason } : {}),
          })),
          ...(chosen ? { chosen: chosen.source } : {}),
          ...(verdict
            ? {
                chain: {
                  trusted: verdict.trusted,
                  reason: verdict.reason,
                  notes: verdict.notes ?? [],
                },
              }
            : {}),
        },
        null,
        2,
      ),
    );
    return code;
  }
  if (answers.length === 0) io.out('no partner certificate source is configured');
  for (const a of answers) {
    const r = a.result;
    const text =
      r.status === 'found'
        ? `found: ${short(r.certificate)}`
        : r.status === 'temporary-failure'
          ? `temporary failure: ${r.reason}`
          : 'not found';
    io.out(`${a.source}: ${text}`);
  }
  if (chosen && certificate && verdict) {
    io.out(`used: ${chosen.source}`);
    io.out(`chain: ${verdict.trusted ? 'trusted' : `not trusted: ${verdict.reason}`}`);
    for (const n of verdict.notes ?? []) io.out(`  ${n}`);
  }
  return code;
}

async function importFile(
  ctx: Context,
  file: string,
  domainOption: string | undefined,
  io: CertsIo,
): Promise<number> {
  if (!ctx.config.redisUrl)
    throw new UsageError(
      "certs import needs DOMSEC_REDIS_URL: the in-memory cache of this command is not the running milter's (put the file into DOMSEC_PARTNER_CERTS instead)",
    );
  const certificates = loadCertificatesPem(await readFile(file, 'utf8'));
  const at = new Date();
  const candidates = certificates.filter((c) => encryptionProblem(c, at) === undefined);
  const domain =
    domainOption ??
    candidates
      .flatMap((c) => [...c.rfc822Names.map((n) => n.split('@')[1] ?? ''), ...c.dnsNames])
      .find((d) => d !== '');
  if (!domain) throw new UsageError(`${file}: no certificate usable for encryption names a domain`);
  const certificate = candidates
    .filter((c) => domainMatch(c, domain) > 0)
    .sort((a, b) => domainMatch(b, domain) - domainMatch(a, domain))[0];
  if (!certificate)
    throw new UsageError(`${file}: no certificate usable for encryption names ${domain}`);
  await ctx.harvested.import(domain, certificate, [], at);
  io.out(`imported for ${domain}: ${short(certificate)}`);
  return 0;
}

async function purge(ctx: Context, target: string, io: CertsIo): Promise<number> {
  const keys =
    target === '--all'
      ? [
          ...(await ctx.cache.keys('harvest:')),
          ...(await ctx.cache.keys('partner:')),
          ...(await ctx.cache.keys('revocation:')),
        ]
      : [harvestCacheKey(target), ...ctx.pki.sources.map((s) => partnerCacheKey(s.name, target))];
  let removed = 0;
  for (const key of keys) {
    if ((await ctx.cache.get(key)) === undefined) continue;
    await ctx.cache.delete(key);
    removed++;
  }
  io.out(`removed ${removed} cached ${removed === 1 ? 'entry' : 'entries'}`);
  return 0;
}

export async function certsCommand(args: string[], config: Config, io: CertsIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      json: { type: 'boolean', default: false },
      domain: { type: 'string' },
      all: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  const [sub, arg] = positionals;
  const domainArg = () => {
    const d = arg?.toLowerCase();
    if (!d || !DOMAIN.test(d)) throw new UsageError(`certs ${sub} needs a DOMAIN`);
    return d;
  };
  if (sub === 'purge' && !values.all) domainArg();
  if (sub === 'lookup') domainArg();
  if (sub === 'import' && !arg) throw new UsageError('certs import needs a FILE (PEM)');
  if (!['list', 'lookup', 'import', 'purge'].includes(sub ?? ''))
    throw new UsageError('certs needs list, lookup DOMAIN, import FILE or purge DOMAIN|--all');
  const ctx = await open(config, io);
  try {
    switch (sub) {
      case 'list':
        return await list(ctx, values.json, io);
      case 'lookup':
        return await lookup(ctx, domainArg(), values.json, io);
      case 'import':
        return await importFile(ctx, arg!, values.domain?.toLowerCase(), io);
      default:
        return await purge(ctx, values.all ? '--all' : domainArg(), io);
    }
  } finally {
    await ctx.cache.close();
  }
}
