import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { CertificateInfo } from '../../src/cms/certificate.js';
import type { CertificateValidator } from '../../src/cms/verify.js';
import { AnchorValidator } from '../../src/pki/anchor-validator.js';
import { type DnsAnswer, DnsClient, type DnsResolver } from '../../src/pki/dns-client.js';
import { parseServerAddress } from '../../src/pki/dns-server-address.js';
import { DNS_TYPE } from '../../src/pki/dns-wire.js';
import {
  generateKey,
  type Issuer,
  issueCertificate,
  type KeyUsageName,
} from '../../src/pki/keygen.js';
import { type LookupResult, PartnerCertificates } from '../../src/pki/partners.js';
import { smimeaOwnerName } from '../../src/pki/smimea-record.js';
import { SmimeaCertificateSource, type SmimeaSourceOptions } from '../../src/pki/smimea-source.js';
import { StaticCertificateDirectory } from '../../src/pki/static-directory.js';
import { type FakeDnsServer, reply, startFakeDns } from '../helpers/dns-fake.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { freePort } from '../helpers/ports.js';

/**
 * SHA-256("domain-confidentiality-authority"), first 28 octets, computed apart
 * from the code under test: printf %s domain-confidentiality-authority | openssl dgst -sha256
 */
const DCA_LABEL = '9d5192e5c4d2026ecac9a6473ead72c5b8870d2ad76d605945bfee26';
const owner = (domain: string) => `${DCA_LABEL}._smimecert.${domain}`;
const ZONE = 'partners.test';
const d = (label: string) => `${label}.${ZONE}`;

const record = (usage: number, selector: number, matching: number, data: Buffer) =>
  Buffer.concat([Buffer.from([usage, selector, matching]), data]);
const full = (usage: number, cert: CertificateInfo) => record(usage, 0, 0, cert.der);

describe('SMIMEA owner names (RFC 8162 3)', () => {
  it('hashes the local part with SHA-256, keeps 28 octets, hex, then _smimecert and the domain', () => {
    assert.equal(
      smimeaOwnerName('domain-confidentiality-authority', 'example.org'),
      `${DCA_LABEL}._smimecert.example.org`,
    );
  });

  it('matches the example of RFC 7929 (same construction): hugh@example.com', () => {
    assert.equal(
      smimeaOwnerName('hugh', 'example.com'),
      'c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._smimecert.example.com',
    );
  });

  it('does not case-fold the local part', () => {
    assert.notEqual(smimeaOwnerName('Hugh', 'example.com'), smimeaOwnerName('hugh', 'example.com'));
  });
});

describe('SMIMEA certificate source against dnsmasq', () => {
  let dns: TestDnsServer;
  let client: DnsClient;
  let trustedCa: Issuer;
  let otherCa: Issuer;
  let daneCa: Issuer;
  const certs: Record<string, CertificateInfo> = {};
  const skips: string[] = [];

  before(async () => {
    const [k1, k2, k3, ee] = await Promise.all([
      generateKey('ec-p256'),
      generateKey('ec-p256'),
      generateKey('ec-p256'),
      generateKey('rsa-2048'),
    ]);
    const ca = async (name: string, key: typeof k1): Promise<Issuer> => ({
      certificate: await issueCertificate({
        commonName: name,
        publicKey: key.publicKey,
        selfKey: key.privateKey,
        ca: true,
        keyUsage: ['keyCertSign', 'cRLSign'],
      }),
      privateKey: key.privateKey,
    });
    trustedCa = await ca('trusted CA', k1);
    otherCa = await ca('untrusted CA', k2);
    daneCa = await ca('DANE-TA CA', k3);
    const leaf = (
      domain: string,
      issuer: Issuer,
      extra: {
        keyUsage?: KeyUsageName[];
        notBefore?: Date;
        notAfter?: Date;
        dnsNames?: string[];
        rfc822?: boolean;
      } = {},
    ) =>
      issueCertificate({
        commonName: `${domain} confidentiality`,
        publicKey: ee.publicKey,
        issuer,
        rfc822Names: extra.rfc822 === false ? [] : [`domain-confidentiality-authority@${domain}`],
        dnsNames: extra.dnsNames ?? [domain],
        keyUsage: extra.keyUsage ?? ['keyEncipherment'],
        emailProtection: true,
        ...(extra.notBefore ? { notBefore: extra.notBefore } : {}),
        ...(extra.notAfter ? { notAfter: extra.notAfter } : {}),
      });
    // Many names make the certificate larger than one UDP answer (1232 octets).
    const padding = Array.from({ length: 40 }, (_, i) => `mail-gateway-${i}.${d('dane')}`);
    certs.dane = await leaf(d('dane'), otherCa, { dnsNames: [d('dane'), ...padding] });
    certs.pkix = await leaf(d('pkix'), trustedCa);
    certs.untrusted = await leaf(d('untrusted'), otherCa);
    certs.hash = await leaf(d('hash'), otherCa);
    certs.signonly = await leaf(d('signonly'), otherCa, { keyUsage: ['digitalSignature'] });
    const yearAgo = Date.now() - 365 * 86_400_000;
    certs.expired = await leaf(d('expired'), otherCa, {
      notBefore: new Date(yearAgo),
      notAfter: new Date(yearAgo + 30 * 86_400_000),
    });
    certs.garbage = await leaf(d('garbage'), otherCa);
    certs.danetaEe = await leaf(d('daneta'), daneCa);
    certs.wrongname = await leaf('elsewhere.example', otherCa);
    certs.alias = await leaf(d('alias'), otherCa);
    certs.choiceDns = await leaf(d('choice'), otherCa, { rfc822: false });
    certs.choiceDca = await leaf(d('choice'), otherCa);
    certs.idn = await leaf(`xn--bcher-kva.${ZONE}`, otherCa);
    const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();
    const spki = certs.hash.publicKey.export({ format: 'der', type: 'spki' });
    const rrs: [string, Buffer][] = [
      [owner(d('dane')), full(3, certs.dane)],
      [owner(d('pkix')), full(1, certs.pkix)],
      [owner(d('untrusted')), full(1, certs.untrusted)],
      [owner(d('hash')), record(3, 1, 1, sha256(spki))],
      [owner(d('hash')), record(3, 0, 1, sha256(certs.hash.der))],
      [owner(d('hash')), record(1, 0, 2, createHash('sha512').update(certs.hash.der).digest())],
      [owner(d('hash')), record(3, 1, 0, spki)],
      [owner(d('signonly')), full(3, certs.signonly)],
      [owner(d('expired')), full(3, certs.expired)],
      [owner(d('garbage')), record(3, 0, 0, randomBytes(300))],
      [owner(d('garbage')), Buffer.from([3, 0])],
      [owner(d('garbage')), full(4, certs.garbage)],
      [owner(d('garbage')), full(3, certs.garbage)],
      [owner(d('daneta')), full(2, daneCa.certificate)],
      [owner(d('daneta')), full(1, certs.danetaEe)],
      [owner(d('wrongname')), full(3, certs.wrongname)],
      [d('hosted-certs'), full(3, certs.alias)],
      [owner(d('choice')), full(3, certs.choiceDns)],
      [owner(d('choice')), full(3, certs.choiceDca)],
      [owner(`xn--bcher-kva.${ZONE}`), full(3, certs.idn)],
    ];
    dns = await startDnsServer({
      zone: ZONE,
      records: rrs.map(([name, data]) => ({ name, type: DNS_TYPE.SMIMEA, data })),
      cnames: [{ alias: owner(d('alias')), target: d('hosted-certs') }],
    });
    client = new DnsClient({ server: dns.address, timeoutMs: 2000 });
  });
  after(() => dns?.stop());

  const source = (
    options: SmimeaSourceOptions = { requireDnssec: false },
    validator?: CertificateValidator,
  ) =>
    new SmimeaCertificateSource(client, validator ?? new AnchorValidator([trustedCa.certificate]), {
      ...options,
      onSkip: (domain, reason) => skips.push(`${domain}: ${reason}`),
    });
  const foundCert = (r: LookupResult) => {
    assert.equal(r.status, 'found', JSON.stringify(r));
    const f = r as Extract<LookupResult, { status: 'found' }>;
    assert.equal(f.source, 'smimea');
    return f.certificate;
  };
  const skipsFor = (domain: string) => skips.filter((s) => s.startsWith(`${domain}: `));

  it('usage 3 (DANE-EE): the certificate as published, a large record fetched over TCP', async () => {
    assert.ok(certs.dane!.der.length > 1500, `certificate of ${certs.dane!.der.length} octets`);
    const raw = await client.query(owner(d('dane')), DNS_TYPE.SMIMEA);
    assert.equal(raw.status === 'found' && raw.transport, 'tcp');
    const cert = foundCert(await source().lookup(d('dane'), new Date()));
    assert.equal(cert.fingerprint, certs.dane!.fingerprint);
  });

  it('usage 1 (PKIX-EE) chaining to a trusted anchor is found', async () => {
    const cert = foundCert(await source().lookup(d('pkix'), new Date()));
    assert.equal(cert.fingerprint, certs.pkix!.fingerprint);
  });

  it('usage 1 whose chain ends at an untrusted CA is not found', async () => {
    assert.deepEqual(await source().lookup(d('untrusted'), new Date()), { status: 'not-found' });
    assert.match(skipsFor(d('untrusted')).join('\n'), /PKIX-EE certificate not trusted: no path/);
  });

  it('usage 1 that cannot be checked for now (hard-fail, responder down): a temporary failure, not "none"', async () => {
    const unsure: CertificateValidator = {
      validate: async () => ({
        trusted: false,
        temporary: true,
        reason: 'revocation status unavailable (test validator)',
      }),
    };
    const r = await source({ requireDnssec: false }, unsure).lookup(d('pkix'), new Date());
    assert.equal(r.status, 'temporary-failure');
    assert.match(r.status === 'temporary-failure' ? r.reason : '', /status unavailable/);
  });

  it('usage 1 is decided by the validator given: one that rejects means not found', async () => {
    const rejecting: CertificateValidator = {
      validate: async () => ({ trusted: false, reason: 'revoked (test validator)' }),
    };
    const r = await source({ requireDnssec: false }, rejecting).lookup(d('pkix'), new Date());
    assert.deepEqual(r, { status: 'not-found' });
    assert.match(skipsFor(d('pkix')).join('\n'), /revoked \(test validator\)/);
  });

  it('hash-only and public-key-only records give no certificate: not found', async () => {
    assert.deepEqual(await source().lookup(d('hash'), new Date()), { status: 'not-found' });
    const reasons = skipsFor(d('hash')).join('\n');
    for (const kind of [
      'usage 3 selector 1 matching type 1',
      'usage 3 selector 0 matching type 1',
      'usage 1 selector 0 matching type 2',
      'usage 3 selector 1 matching type 0',
    ])
      assert.match(reasons, new RegExp(`${kind}: carries no certificate`));
  });

  it('NXDOMAIN is not found', async () => {
    assert.deepEqual(await source().lookup(d('absent'), new Date()), { status: 'not-found' });
  });

  it('a certificate that cannot encrypt (signing-only keyUsage) is not found', async () => {
    assert.deepEqual(await source().lookup(d('signonly'), new Date()), { status: 'not-found' });
    assert.match(skipsFor(d('signonly')).join('\n'), /keyUsage lacks keyEncipherment/);
  });

  it('an expired certificate is not found', async () => {
    assert.deepEqual(await source().lookup(d('expired'), new Date()), { status: 'not-found' });
    assert.match(skipsFor(d('expired')).join('\n'), /outside its validity period/);
  });

  it('the same expired certificate is found at a time inside its validity', async () => {
    const r = await source().lookup(
      d('expired'),
      new Date(certs.expired!.notBefore.getTime() + 86_400_000),
    );
    assert.equal(foundCert(r).fingerprint, certs.expired!.fingerprint);
  });

  it('garbage records are skipped, the good record of the same RRset is taken', async () => {
    const cert = foundCert(await source().lookup(d('garbage'), new Date()));
    assert.equal(cert.fingerprint, certs.garbage!.fingerprint);
    const reasons = skipsFor(d('garbage')).join('\n');
    assert.match(reasons, /usage 3 selector 0 matching type 0: not a certificate/);
    assert.match(reasons, /record of 2 octets is too short/);
    assert.match(reasons, /usage 4 .*: unknown usage/);
  });

  it('usage 2 (DANE-TA) anchors a usage 1 certificate of the same RRset', async () => {
    const cert = foundCert(await source().lookup(d('daneta'), new Date()));
    assert.equal(cert.fingerprint, certs.danetaEe!.fingerprint);
  });

  it('a certificate that does not name the domain is not found', async () => {
    assert.deepEqual(await source().lookup(d('wrongname'), new Date()), { status: 'not-found' });
    assert.match(skipsFor(d('wrongname')).join('\n'), /does not name wrongname\.partners\.test/);
  });

  it('follows a CNAME from the owner name to where the record lives', async () => {
    const cert = foundCert(await source().lookup(d('alias'), new Date()));
    assert.equal(cert.fingerprint, certs.alias!.fingerprint);
  });

  it('prefers the certificate naming domain-confidentiality-authority@D', async () => {
    const cert = foundCert(await source().lookup(d('choice'), new Date()));
    assert.equal(cert.fingerprint, certs.choiceDca!.fingerprint);
  });

  it('an internationalised domain is queried by its A-labels', async () => {
    const cert = foundCert(await source().lookup(`bücher.${ZONE}`, new Date()));
    assert.equal(cert.fingerprint, certs.idn!.fingerprint);
  });

  describe('with DNSSEC required (the default)', () => {
    const strict = () => source({});

    it('a DANE-EE record from a resolver that did not validate (no AD) is not used', async () => {
      assert.deepEqual(await strict().lookup(d('dane'), new Date()), { status: 'not-found' });
      assert.match(
        skipsFor(d('dane')).join('\n'),
        /DANE-EE record in an answer not validated with DNSSEC/,
      );
    });

    it('nor is a DANE-TA anchor', async () => {
      assert.deepEqual(await strict().lookup(d('daneta'), new Date()), { status: 'not-found' });
    });

    it('a PKIX-EE record still counts: our own anchors vouch for it', async () => {
      assert.equal(
        foundCert(await strict().lookup(d('pkix'), new Date())).fingerprint,
        certs.pkix!.fingerprint,
      );
    });
  });

  it('PartnerCertificates takes the SMIMEA answer after an empty static directory', async () => {
    const partners = new PartnerCertificates([new StaticCertificateDirectory([]), source()]);
    const r = await partners.lookup(d('pkix').toUpperCase());
    assert.equal(foundCert(r).fingerprint, certs.pkix!.fingerprint);
  });
});

describe('SMIMEA certificate source: domain syntax and DNS failures', () => {
  const anchors = new AnchorValidator([]);
  const fakes: FakeDnsServer[] = [];
  after(() => Promise.all(fakes.map((f) => f.close())));
  const fake = async (o: Parameters<typeof startFakeDns>[0]) => {
    const f = await startFakeDns(o);
    fakes.push(f);
    return f;
  };

  it('does not query names that are not DNS domains', async () => {
    const asked: string[] = [];
    const recording: DnsResolver = {
      query: async (name): Promise<DnsAnswer> => {
        asked.push(name);
        return { status: 'not-found', rcode: 'NXDOMAIN', authenticated: false };
      },
    };
    const skipped: string[] = [];
    const s = new SmimeaCertificateSource(recording, anchors, {
      onSkip: (dom) => skipped.push(dom),
    });
    const bad = [
      'bad_domain.test',
      'a..b.test',
      'evil.test\n._smimecert.other',
      'single',
      '1.2.3.4',
      '-lead.test',
      'trail-.test',
      'dot.test.',
      `${'a'.repeat(64)}.test`,
      `${Array.from({ length: 4 }, () => 'a'.repeat(50)).join('.')}.test`,
      'sp ace.test',
      '*.test',
      '',
    ];
    for (const domain of bad)
      assert.deepEqual(await s.lookup(domain, new Date()), { status: 'not-found' }, domain);
    assert.deepEqual(asked, []);
    assert.deepEqual(skipped, bad);
    await s.lookup('Good-Name.Example', new Date());
    assert.deepEqual(asked, [`${DCA_LABEL}._smimecert.good-name.example`]);
  });

  const viaClient = (server: string) =>
    new SmimeaCertificateSource(new DnsClient({ server, timeoutMs: 300, attempts: 2 }), anchors, {
      resolver: { address: parseServerAddress(server) },
    });
  const failure = (r: LookupResult) => {
    assert.equal(r.status, 'temporary-failure', JSON.stringify(r));
    return (r as Extract<LookupResult, { status: 'temporary-failure' }>).reason;
  };

  it('server down: temporary failure', async () => {
    const port = await freePort();
    const r = await viaClient(`127.0.0.1:${port}`).lookup('example.org', new Date());
    assert.match(failure(r), /^smimea: DNS 127\.0\.0\.1:\d+: UDP: connection refused/);
  });

  it('a hanging server (UDP silent, TCP silent): temporary failure within timeout x attempts', async () => {
    for (const [f, expected] of [
      [await fake({ udp: () => undefined, tcp: 'hang' }), /: no answer within 300 ms/],
      [
        await fake({ udp: (q) => reply(q, { truncated: true }), tcp: 'hang' }),
        /TCP: no complete answer within/,
      ],
    ] as const) {
      const t0 = Date.now();
      const r = await viaClient(f.address).lookup('example.org', new Date());
      const elapsed = Date.now() - t0;
      assert.match(failure(r), expected);
      assert.ok(elapsed < 300 * 2 + 500, `${elapsed} ms`);
    }
  });

  it('garbage answers (random bytes; wrong ID): temporary failure', async () => {
    for (const f of [
      await fake({ udp: () => randomBytes(64) }),
      await fake({ udp: (q) => reply(q, { id: q.readUInt16BE(0) ^ 0xffff }) }),
    ]) {
      assert.match(
        failure(await viaClient(f.address).lookup('example.org', new Date())),
        /ignored 1 datagram/,
      );
    }
  });

  it('a DANE-EE record is used by default when the resolver vouches for it (AD)', async () => {
    const key = await generateKey('ec-p256');
    const cert = await issueCertificate({
      commonName: 'example.org confidentiality',
      publicKey: key.publicKey,
      selfKey: key.privateKey,
      rfc822Names: ['domain-confidentiality-authority@example.org'],
      keyUsage: ['keyAgreement'],
    });
    const f = await fake({
      udp: (q) =>
        reply(q, {
          authenticData: true,
          answers: [{ name: owner('example.org'), type: DNS_TYPE.SMIMEA, data: full(3, cert) }],
        }),
    });
    const r = await viaClient(f.address).lookup('example.org', new Date());
    assert.equal(r.status === 'found' && r.certificate.fingerprint, cert.fingerprint);
  });
});
