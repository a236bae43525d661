/**
 * A slow partner source (LDAP, DNS) behind the shared cache: a certificate
 * found is kept until it expires, capped by the maximum TTL; "not found" is
 * kept for the short negative TTL, so a domain without S/MIME costs one
 * directory round trip per TTL, not one per message. Temporary failures are
 * never cached: the next message asks again.
 */

import type { Cache } from '../cache/cache.js';
import { loadCertificate } from '../cms/certificate.js';
import type { CertificateSource, LookupResult } from './partners.js';
import { encryptionProblem } from './static-directory.js';

type Stored =
  | { readonly status: 'found'; readonly der: string; readonly capabilities?: readonly string[] }
  | { readonly status: 'not-found' };

export interface CachedSourceOptions {
  readonly maxTtlSeconds: number;
  readonly negativeTtlSeconds: number;
}

/** Cache key of a source's answer for a domain (also used by `certs purge`). */
export const partnerCacheKey = (source: string, domain: string) => `partner:${source}:${domain}`;

export class CachedSource implements CertificateSource {
  readonly name: string;

  constructor(
    /** The source itself, for asking past the cache (`certs lookup`). */
    readonly inner: CertificateSource,
    private readonly cache: Cache,
    private readonly opts: CachedSourceOptions,
  ) {
    this.name = inner.name;
  }

  async lookup(domain: string, at: Date): Promise<LookupResult> {
    const key = partnerCacheKey(this.name, domain);
    const hit = this.fromCache(await this.cache.get(key), at);
    if (hit) return hit;
    const answer = await this.inner.lookup(domain, at);
    if (answer.status === 'found') {
      const left = Math.floor((answer.certificate.notAfter.getTime() - at.getTime()) / 1000);
      const stored: Stored = {
        status: 'found',
        der: answer.certificate.der.toString('base64'),
        ...(answer.capabilities ? { capabilities: answer.capabilities } : {}),
      };
      await this.cache.set(
        key,
        JSON.stringify(stored),
        Math.max(1, Math.min(left, this.opts.maxTtlSeconds)),
      );
    } else if (answer.status === 'not-found') {
      await this.cache.set(
        key,
        JSON.stringify({ status: 'not-found' }),
        this.opts.negativeTtlSeconds,
      );
    }
    return answer;
  }

  private fromCache(raw: string | undefined, at: Date): LookupResult | undefined {
    if (!raw) return undefined;
    try {
      const stored = JSON.parse(raw) as Stored;
      if (stored.status === 'not-found') return { status: 'not-found' };
      const certificate = loadCertificate(Buffer.from(stored.der, 'base64'));
      // Expired (or otherwise unusable) since it was cached: ask the source again.
      if (encryptionProblem(certificate, at)) return undefined;
      return {
        status: 'found',
        certificate,
        source: this.name,
        ...(stored.capabilities ? { capabilities: stored.capabilities } : {}),
      };
    } catch {
      return undefined; // a damaged entry is a miss
    }
  }
}
