// Whose AD bit counts for SMIMEA's DANE usages. The bit is not signed: on the
// way from a resolver elsewhere on the network anyone can set it. So it is
// believed from loopback only, or from a resolver the administrator declares
// validating (DOMSEC_DNS_VALIDATING_RESOLVER=yes). No resolver off loopback
// can run here without network namespaces, so the configured address is data:
// the decision takes it, while the packets go to dnsmasq on 127.0.0.1, a stub
// in front of an upstream that sets AD (dnsmasq --proxy-dnssec passes it on).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MemoryCache } from '../../src/cache/memory.js';
import type { CertificateInfo } from '../../src/cms/certificate.js';
import { loadConfig } from '../../src/config.js';
import { AnchorValidator } from '../../src/pki/anchor-validator.js';
import type { CachedSource } from '../../src/pki/cached-source.js';
import { DnsClient, type DnsClientOptions } from '../../src/pki/dns-client.js';
import { adBitTrust, isLoopback, parseServerAddress } from '../../src/pki/dns-server-address.js';
import { DNS_TYPE, decodeQuestions } from '../../src/pki/dns-wire.js';
import { generateKey, type Issuer, issueCertificate } from '../../src/pki/keygen.js';
import type { LookupResult } from '../../src/pki/partners.js';
import { loadPki } from '../../src/pki/setup.js';
import { SmimeaCertificateSource } from '../../src/pki/smimea-source.js';
import { startServe } from '../helpers/cli.js';
import { type FakeDnsServer, type FakeRecord, reply, startFakeDns } from '../helpers/dns-fake.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';

/** printf %s domain-confidentiality-authority | openssl dgst -sha256, first 28 octets. */
const DCA_LABEL = '9d5192e5c4d2026ecac9a6473ead72c5b8870d2ad76d605945bfee26';
const owner = (domain: string) => `${DCA_LABEL}._smimecert.${domain}`;
const ZONE = 'validated.test';
const d = (label: string) => `${label}.${ZONE}`;
const full = (usage: number, cert: CertificateInfo) =>
  Buffer.concat([Buffer.from([usage, 0, 0]), cert.der]);
const REFUSAL = 'DANE usages need DNSSEC and are refused';

describe('whose AD bit is believed: the configured address decides', () => {
  const trust = (text: string, declared = false) => adBitTrust(parseServerAddress(text), declared);

  it('loopback (127.0.0.0/8, ::1) always; any other address only when declared validating', () => {
    for (const text of ['127.0.0.1', '127.0.0.53:53', '127.255.255.254:5353', '[::1]:53'])
      assert.equal(trust(text), 'loopback', text);
    assert.equal(isLoopback(parseServerAddress('[::ffff:127.0.0.1]:53')), true);
    for (const text of [
      '192.0.2.53:53',
      '10.0.0.1',
      '128.0.0.1',
      '0.0.0.0',
      '[::]:53',
      '[2001:db8::53]:53',
      '[::ffff:192.0.2.53]:53',
      '[fe80::1]:53',
    ]) {
      assert.equal(trust(text), 'refused', text);
      assert.equal(trust(text, true), 'declared', text);
    }
    assert.equal(trust('127.0.0.1', true), 'loopback');
  });
});

describe('DANE records through dnsmasq on loopback, AD set by its upstream', () => {
  let upstream: FakeDnsServer;
  let dnsmasq: TestDnsServer;
  let trustedCa: Issuer;
  const certs: Record<string, CertificateInfo> = {};

  before(async () => {
    const [k1, k2, k3, ee] = await Promise.all([
      generateKey('ec-p256'),
      generateKey('ec-p256'),
      generateKey('ec-p256'),
      generateKey('ec-p256'),
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
    const otherCa = await ca('untrusted CA', k2);
    const daneCa = await ca('DANE-TA CA', k3);
    const leaf = (domain: string, issuer: Issuer) =>
      issueCertificate({
        commonName: `${domain} confidentiality`,
        publicKey: ee.publicKey,
        issuer,
        rfc822Names: [`domain-confidentiality-authority@${domain}`],
        dnsNames: [domain],
        keyUsage: ['keyAgreement'],
        emailProtection: true,
      });
    certs.dane = await leaf(d('dane'), otherCa);
    certs.daneta = await leaf(d('daneta'), daneCa);
    certs.pkix = await leaf(d('pkix'), trustedCa);
    const zone = new Map<string, FakeRecord[]>();
    const add = (name: string, data: Buffer) =>
      zone.set(name, [...(zone.get(name) ?? []), { name, type: DNS_TYPE.SMIMEA, data }]);
    add(owner(d('dane')), full(3, certs.dane));
    add(owner(d('daneta')), full(2, daneCa.certificate));
    add(owner(d('daneta')), full(1, certs.daneta));
    add(owner(d('pkix')), full(1, certs.pkix));
    // The validating resolver upstream: every answer of the zone with AD.
    const answer = (q: Buffer) => {
      const question = decodeQuestions(q).questions[0]!;
      const answers = question.type === DNS_TYPE.SMIMEA ? (zone.get(question.name) ?? []) : [];
      const rcode = zone.has(question.name) ? 0 : 3;
      return reply(q, { authenticData: true, answers, rcode });
    };
    upstream = await startFakeDns({ udp: answer, tcp: answer });
    dnsmasq = await startDnsServer({ zone: ZONE, forwardTo: upstream.address });
  });
  after(async () => {
    await dnsmasq?.stop();
    await upstream?.close();
  });

  const found = (r: LookupResult) => (r.status === 'found' ? r.certificate.fingerprint : r.status);

  it('configured off loopback: DANE-EE and DANE-TA refused though AD is set, PKIX-EE still counts; declared validating, they count', async () => {
    const toDnsmasq = new DnsClient({ server: dnsmasq.address, timeoutMs: 2000 });
    const raw = await toDnsmasq.query(owner(d('dane')), DNS_TYPE.SMIMEA);
    assert.equal(raw.status === 'found' && raw.authenticated, true, dnsmasq.log());
    const skips: string[] = [];
    const source = (validating: boolean) =>
      new SmimeaCertificateSource(toDnsmasq, new AnchorValidator([trustedCa.certificate]), {
        resolver: { address: parseServerAddress('192.0.2.53:53'), validating },
        onSkip: (domain, reason) => skips.push(`${domain}: ${reason}`),
      });

    const remote = source(false);
    assert.equal(found(await remote.lookup(d('dane'), new Date())), 'not-found');
    assert.equal(found(await remote.lookup(d('daneta'), new Date())), 'not-found');
    assert.equal(found(await remote.lookup(d('pkix'), new Date())), certs.pkix!.fingerprint);
    const why =
      'in an answer marked validated \\(AD\\) by a resolver not believed: resolver 192\\.0\\.2\\.53:53 is not on loopback nor declared validating';
    assert.match(skips.join('\n'), new RegExp(`${d('dane')}: DANE-EE record ${why}`));
    assert.match(skips.join('\n'), new RegExp(`${d('daneta')}: DANE-TA record ${why}`));

    const declared = source(true);
    assert.equal(found(await declared.lookup(d('dane'), new Date())), certs.dane!.fingerprint);
    assert.equal(found(await declared.lookup(d('daneta'), new Date())), certs.daneta!.fingerprint);
  });

  it('as configured: on loopback the AD bit counts with the variable unset; elsewhere only with DOMSEC_DNS_VALIDATING_RESOLVER=yes, and loading says so once', async () => {
    const pki = async (env: Record<string, string>) => {
      const warnings: string[] = [];
      const clients: string[] = [];
      const config = loadConfig({
        DOMSEC_PARTNER_SOURCES: 'smimea',
        DOMSEC_REVOCATION: 'off',
        DOMSEC_LOOKUP_TIMEOUT: '1',
        ...env,
      });
      const loaded = await loadPki(config, {
        cache: new MemoryCache(),
        warn: (message) => warnings.push(message),
        // Where the packets go: always dnsmasq, whatever address was configured.
        dnsClient: (o: DnsClientOptions) => {
          clients.push(o.server);
          return new DnsClient({ ...o, server: dnsmasq.address });
        },
      });
      // The source itself, past the cache and the PKIX vetting of PartnerCertificates.
      const source = (loaded.sources[0] as CachedSource).inner;
      return { source, warnings, clients };
    };

    const local = await pki({ DOMSEC_DNS_RESOLVER: dnsmasq.address });
    assert.equal(found(await local.source.lookup(d('dane'), new Date())), certs.dane!.fingerprint);
    assert.deepEqual(local.warnings, []);

    const remote = await pki({ DOMSEC_DNS_RESOLVER: '192.0.2.53:53' });
    assert.deepEqual(remote.warnings, [
      `SMIMEA: resolver 192.0.2.53:53 is not on loopback and DOMSEC_DNS_VALIDATING_RESOLVER is not set: ${REFUSAL}`,
    ]);
    assert.deepEqual(
      remote.clients,
      ['192.0.2.53:53'],
      'the client is made for the configured address',
    );
    assert.equal(found(await remote.source.lookup(d('dane'), new Date())), 'not-found');
    assert.equal(found(await remote.source.lookup(d('dane'), new Date())), 'not-found');
    assert.equal(remote.warnings.length, 1, 'said once, at start, not per look-up');

    const declared = await pki({
      DOMSEC_DNS_RESOLVER: '192.0.2.53:53',
      DOMSEC_DNS_VALIDATING_RESOLVER: 'yes',
    });
    assert.equal(
      found(await declared.source.lookup(d('dane'), new Date())),
      certs.dane!.fingerprint,
    );
    assert.deepEqual(declared.warnings, []);

    // Not asking for DNSSEC at all: nothing refused, nothing to say.
    const lax = await pki({
      DOMSEC_DNS_RESOLVER: '192.0.2.53:53',
      DOMSEC_SMIMEA_REQUIRE_DNSSEC: 'no',
    });
    assert.deepEqual(lax.warnings, []);
  });
});

describe('the start-up line', () => {
  it('serve logs once why DANE usages are refused; not when the resolver is declared validating', async () => {
    const env = { DOMSEC_PARTNER_SOURCES: 'smimea', DOMSEC_DNS_RESOLVER: '192.0.2.53:53' };
    const count = (out: string) => out.split('\n').filter((l) => l.includes(REFUSAL)).length;
    const refused = await startServe(env);
    const refusedOut = refused.output();
    assert.equal(await refused.stop(), 0);
    assert.equal(count(refusedOut), 1, refusedOut);
    assert.match(refusedOut, /SMIMEA: resolver 192\.0\.2\.53:53 is not on loopback/);
    const line = JSON.parse(refusedOut.split('\n').find((l) => l.includes(REFUSAL))!);
    assert.equal(line.level, 40, 'warn');
    assert.equal(line.resolver, '192.0.2.53:53');
    const declared = await startServe({ ...env, DOMSEC_DNS_VALIDATING_RESOLVER: 'yes' });
    const declaredOut = declared.output();
    assert.equal(await declared.stop(), 0);
    assert.equal(count(declaredOut), 0, declaredOut);
  });
});
