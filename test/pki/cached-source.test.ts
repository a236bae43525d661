// The cache in front of slow partner sources: what is kept, for how long,
// and what is never kept. A counting fake source stands for LDAP/DNS here;
// the real sources behind it are tested against slapd and dnsmasq elsewhere.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { MemoryCache } from '../../src/cache/memory.js';
import { CachedSource, partnerCacheKey } from '../../src/pki/cached-source.js';
import { type DomainPki, generateDomainPki, issueCertificate } from '../../src/pki/keygen.js';
import type { CertificateSource, LookupResult } from '../../src/pki/partners.js';

class CountingSource implements CertificateSource {
  readonly name = 'fake';
  calls = 0;
  constructor(public answer: LookupResult) {}
  async lookup(): Promise<LookupResult> {
    this.calls++;
    return this.answer;
  }
}

let pki: DomainPki;
let clock = Date.now();
const now = () => clock;
const options = { maxTtlSeconds: 3600, negativeTtlSeconds: 60 };

before(async () => {
  pki = await generateDomainPki('example.net');
});

describe('CachedSource', () => {
  it('a certificate found is served from the cache, capabilities included', async () => {
    const cache = new MemoryCache(100, undefined, now);
    const inner = new CountingSource({
      status: 'found',
      certificate: pki.encryption.certificate,
      source: 'fake',
      capabilities: ['2.16.840.1.101.3.4.1.46'],
    });
    const cached = new CachedSource(inner, cache, options);
    await cached.lookup('example.net', new Date(clock));
    const second = await cached.lookup('example.net', new Date(clock));
    assert.equal(inner.calls, 1);
    assert.equal(second.status, 'found');
    if (second.status === 'found') {
      assert.equal(second.certificate.fingerprint, pki.encryption.certificate.fingerprint);
      assert.deepEqual(second.capabilities, ['2.16.840.1.101.3.4.1.46']);
    }
    clock += 3601_000; // past the maximum TTL: asked again
    await cached.lookup('example.net', new Date(clock));
    assert.equal(inner.calls, 2);
  });

  it('"not found" is kept for the negative TTL only', async () => {
    const cache = new MemoryCache(100, undefined, now);
    const inner = new CountingSource({ status: 'not-found' });
    const cached = new CachedSource(inner, cache, options);
    await cached.lookup('example.com', new Date(clock));
    await cached.lookup('example.com', new Date(clock));
    assert.equal(inner.calls, 1);
    clock += 61_000;
    await cached.lookup('example.com', new Date(clock));
    assert.equal(inner.calls, 2);
  });

  it('temporary failures are never kept', async () => {
    const cache = new MemoryCache(100, undefined, now);
    const inner = new CountingSource({ status: 'temporary-failure', reason: 'down' });
    const cached = new CachedSource(inner, cache, options);
    await cached.lookup('example.com', new Date(clock));
    await cached.lookup('example.com', new Date(clock));
    assert.equal(inner.calls, 2);
    assert.equal(await cache.get(partnerCacheKey('fake', 'example.com')), undefined);
  });

  it('a certificate is kept no longer than it is valid', async () => {
    const cache = new MemoryCache(100, undefined, now);
    const shortLived = await issueCertificate({
      commonName: 'short',
      organization: 'example.net',
      publicKey: pki.encryption.certificate.publicKey,
      issuer: { certificate: pki.ca.certificate, privateKey: pki.ca.privateKey },
      rfc822Names: ['domain-confidentiality-authority@example.net'],
      keyUsage: ['keyEncipherment'],
      notAfter: new Date(clock + 120_000),
    });
    const inner = new CountingSource({ status: 'found', certificate: shortLived, source: 'fake' });
    const cached = new CachedSource(inner, cache, options);
    await cached.lookup('example.net', new Date(clock));
    clock += 121_000;
    await cached.lookup('example.net', new Date(clock));
    assert.equal(inner.calls, 2);
  });

  it('a damaged cache entry is a miss, not an error', async () => {
    const cache = new MemoryCache(100, undefined, now);
    await cache.set(partnerCacheKey('fake', 'example.net'), '{"status":"found","der":"!!"}', 60);
    const inner = new CountingSource({ status: 'not-found' });
    const r = await new CachedSource(inner, cache, options).lookup('example.net', new Date(clock));
    assert.equal(r.status, 'not-found');
    assert.equal(inner.calls, 1);
  });
});
