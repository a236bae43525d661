/**
 * Partner certificates harvested from inbound mail whose signature verified
 * and chained to a trust anchor: a certificate that names the sender's
 * domain and can encrypt is kept in the cache under that domain, with the
 * SMIMECapabilities its signer announced (they decide CBC vs GCM, v1.5 vs
 * OAEP). Kept until it expires, at most `maxTtlSeconds`.
 */

import type { Cache } from '../cache/cache.js';
import { type CertificateInfo, loadCertificate } from '../cms/certificate.js';
import type { CertificateValidator } from '../cms/verify.js';
import type { TransformReport } from '../smime/types.js';
import type { CertificateSource, LookupResult } from './partners.js';
import { domainMatch, encryptionProblem } from './static-directory.js';

interface Stored {
  readonly der: string;
  readonly capabilities: readonly string[];
  /** Put there by an administrator (`certs import`) rather than learnt from mail. */
  readonly imported?: boolean;
}

/** Cache key of a domain's harvested (or imported) certificate. */
export const harvestCacheKey = (domain: string) => `harvest:${domain}`;
const key = harvestCacheKey;

export class HarvestedCertificates implements CertificateSource {
  readonly name = 'harvested';

  constructor(
    private readonly cache: Cache,
    private readonly maxTtlSeconds = 90 * 86_400,
  ) {}

  async lookup(domain: string, at: Date): Promise<LookupResult> {
    const raw = await this.cache.get(key(domain));
    // Imported and harvested certificates live in the shared cache: while it
    // is unreachable their absence here is unknown, not "none" (4xx, not 5xx).
    if (!raw && this.cache.degraded)
      return { status: 'temporary-failure', reason: 'the shared cache (Redis) is unreachable' };
    if (!raw) return { status: 'not-found' };
    let stored: Stored;
    let certificate: CertificateInfo;
    try {
      stored = JSON.parse(raw) as Stored;
      certificate = loadCertificate(Buffer.from(stored.der, 'base64'));
    } catch {
      return { status: 'not-found' };
    }
    if (encryptionProblem(certificate, at)) return { status: 'not-found' };
    return {
      status: 'found',
      certificate,
      source: stored.imported ? 'imported' : this.name,
      capabilities: stored.capabilities,
    };
  }

  async store(
    domain: string,
    certificate: CertificateInfo,
    capabilities: readonly string[],
    at: Date,
  ): Promise<void> {
    const ttl = Math.min(
      this.maxTtlSeconds,
      Math.floor((certificate.notAfter.getTime() - at.getTime()) / 1000),
    );
    const value = JSON.stringify({
      der: certificate.der.toString('base64'),
      capabilities,
    } satisfies Stored);
    // Every verified message from the partner offers the same certificate: store it once.
    if ((await this.cache.get(key(domain))) === value) return;
    await this.cache.set(key(domain), value, ttl);
  }

  /** An administrator's choice: kept until the certificate expires, whatever the harvest cap. */
  async import(
    domain: string,
    certificate: CertificateInfo,
    capabilities: readonly string[],
    at: Date,
  ): Promise<void> {
    const ttl = Math.floor((certificate.notAfter.getTime() - at.getTime()) / 1000);
    if (ttl <= 0) throw new Error('the certificate has expired');
    const value: Stored = {
      der: certificate.der.toString('base64'),
      capabilities,
      imported: true,
    };
    await this.cache.set(key(domain), JSON.stringify(value), ttl);
  }
}

/**
 * From a verified inbound message, the encryption certificates of the
 * sender's domain worth keeping. Only trusted signers count, and only
 * certificates that themselves chain to a trust anchor.
 */
export async function harvest(
  report: TransformReport,
  senderDomain: string,
  validator: CertificateValidator,
  at: Date = new Date(),
): Promise<{ certificate: CertificateInfo; capabilities: readonly string[] } | undefined> {
  for (const layer of report.layers) {
    const signer = layer.signers?.find(
      (s) =>
        s.valid &&
        s.chain?.trusted &&
        s.certificate &&
        domainMatch(s.certificate, senderDomain) > 0,
    );
    if (!signer) continue;
    const candidates = (layer.certificates ?? [])
      .filter((c) => domainMatch(c, senderDomain) > 0 && encryptionProblem(c, at) === undefined)
      .sort((a, b) => domainMatch(b, senderDomain) - domainMatch(a, senderDomain));
    for (const c of candidates) {
      const verdict = await validator.validate(c, layer.certificates ?? [], at);
      if (verdict.trusted) return { certificate: c, capabilities: signer.capabilities };
    }
  }
  return undefined;
}
