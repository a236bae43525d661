import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CertificateInfo } from '../../src/cms/certificate.js';
import { int, seq } from '../../src/cms/der.js';
import { AnchorValidator } from '../../src/pki/anchor-validator.js';
import {
  type DomainPki,
  generateDomainPki,
  generateKey,
  issueCertificate,
} from '../../src/pki/keygen.js';
import { searchByMail } from '../../src/pki/ldap-query.js';
import { MAX_CERTIFICATES } from '../../src/pki/ldap-source.js';
import { parseLdapUrl } from '../../src/pki/ldap-url.js';
import { fakeLdapServer } from '../helpers/fake-ldap.js';
import { type FakeServer, hangingServer } from '../helpers/fake-tcp.js';
import {
  certsOnly,
  dca,
  nonsense,
  opensslCertsOnly,
  ou,
  person,
  recordingSource,
} from '../helpers/ldap-fixtures.js';
import { startSlapd, type TestSlapd } from '../helpers/slapd.js';

describe('LDAP partner certificates from real slapd directories', () => {
  let org: DomainPki;
  let orgAlt: DomainPki;
  let com: DomainPki;
  let partnerB: DomainPki;
  let many: DomainPki;
  let outside: DomainPki;
  let secured: DomainPki;
  let idn: DomainPki;
  let expired: DomainPki;
  let signingOnly: CertificateInfo;
  let a: TestSlapd;
  let b: TestSlapd;
  let c: TestSlapd;
  const fakes: FakeServer[] = [];
  const reader = { dn: 'cn=reader,dc=example,dc=edu', password: 'reader-secret' };
  const oddMail = 'odd*(mail=*)\\2a@example.net';

  const aPartners = () => a.url('ou=partners,dc=example,dc=net');
  const bPartners = () => b.url('ou=partners,dc=example,dc=com');
  before(async () => {
    [org, orgAlt, com, partnerB, many, outside, secured, idn] = await Promise.all([
      generateDomainPki('example.org'),
      generateDomainPki('example.org', { algo: 'ec-p256' }),
      generateDomainPki('example.com', { algo: 'ec-p256' }),
      generateDomainPki('partner-b.example', { algo: 'ec-p256' }),
      generateDomainPki('many.example', { algo: 'ec-p256' }),
      generateDomainPki('outside.example', { algo: 'ec-p256' }),
      generateDomainPki('secured.example', { algo: 'ec-p256' }),
      generateDomainPki('xn--bcher-kva.example', { algo: 'ec-p256' }),
    ]);
    expired = await generateDomainPki('expired.example', {
      algo: 'ec-p256',
      notBefore: new Date(Date.now() - 2 * 365 * 86_400_000),
      notAfter: new Date(Date.now() - 365 * 86_400_000),
    });
    const key = await generateKey('ec-p256');
    signingOnly = await issueCertificate({
      commonName: 'signing-only.example confidentiality (mislabelled)',
      publicKey: key.publicKey,
      issuer: { certificate: com.ca.certificate, privateKey: com.ca.privateKey },
      rfc822Names: [dca('signing-only.example')],
      keyUsage: ['digitalSignature'],
      emailProtection: true,
    });

    const aBase = 'ou=partners,dc=example,dc=net';
    const der = (p: DomainPki) => p.encryption.certificate.der;
    a = await startSlapd({
      suffix: 'dc=example,dc=net',
      entries: [
        ou('partners', 'dc=example,dc=net'),
        ou('elsewhere', 'dc=example,dc=net'),
        // The signing certificate sits next to the encryption one: it must not be chosen.
        person('org', aBase, dca('example.org'), {
          'userCertificate;binary': [org.signing.certificate.der, der(org)],
        }),
        person('com', aBase, dca('example.com'), {
          userSMIMECertificate: [
            await opensslCertsOnly([com.ca.certificate, com.encryption.certificate]),
          ],
        }),
        person('signing-only', aBase, dca('signing-only.example'), {
          'userCertificate;binary': [signingOnly.der],
        }),
        person('expired', aBase, dca('expired.example'), {
          'userCertificate;binary': [der(expired)],
        }),
        // slapd checks userCertificate syntax; userSMIMECertificate is any octets.
        person('garbage', aBase, dca('garbage.example'), {
          userSMIMECertificate: [
            nonsense(200),
            certsOnly([seq(int(1), int(2)), Buffer.from('0403414243', 'hex')]),
          ],
        }),
        ...Array.from({ length: 15 }, (_, i) =>
          person(`many-${i}`, aBase, dca('many.example'), {
            'userCertificate;binary': [der(many)],
          }),
        ),
        person('idn', aBase, dca('xn--bcher-kva.example'), {
          'userCertificate;binary': [der(idn)],
        }),
        person('odd', aBase, oddMail),
        person('outside', 'ou=elsewhere,dc=example,dc=net', dca('outside.example'), {
          'userCertificate;binary': [der(outside)],
        }),
      ],
    });
    const bBase = 'ou=partners,dc=example,dc=com';
    b = await startSlapd({
      suffix: 'dc=example,dc=com',
      entries: [
        ou('partners', 'dc=example,dc=com'),
        person('org', bBase, dca('example.org'), { 'userCertificate;binary': [der(orgAlt)] }),
        person('partner-b', bBase, dca('partner-b.example'), {
          'userCertificate;binary': [der(partnerB)],
        }),
      ],
    });
    c = await startSlapd({
      suffix: 'dc=example,dc=edu',
      tls: true,
      requireBind: reader,
      entries: [
        person('secured', 'dc=example,dc=edu', dca('secured.example'), {
          'userCertificate;binary': [der(secured)],
        }),
      ],
    });
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop(), c?.stop(), ...fakes.map((f) => f.close())]);
  });

  const fake = async (server: Promise<FakeServer>) => {
    const f = await server;
    fakes.push(f);
    return f;
  };

  it('finds the encryption certificate in userCertificate;binary, not the signing one beside it', async () => {
    const { s } = recordingSource([aPartners()]);
    const r = await s.lookup('example.org', new Date());
    assert.equal(r.status, 'found');
    assert.equal(r.status === 'found' && r.source, 'ldap');
    assert.equal(
      r.status === 'found' && r.certificate.fingerprint,
      org.encryption.certificate.fingerprint,
    );
  });

  it('finds the certificate inside a certs-only userSMIMECertificate (as OpenSSL writes it)', async () => {
    const { s } = recordingSource([aPartners()]);
    const r = await s.lookup('example.com', new Date());
    assert.equal(
      r.status === 'found' && r.certificate.fingerprint,
      com.encryption.certificate.fingerprint,
    );
  });

  it('asks the next directory when the first lacks the domain', async () => {
    const { s } = recordingSource([aPartners(), bPartners()]);
    const r = await s.lookup('partner-b.example', new Date());
    assert.equal(
      r.status === 'found' && r.certificate.fingerprint,
      partnerB.encryption.certificate.fingerprint,
    );
  });

  it('the first directory with a usable certificate wins', async () => {
    const ab = await recordingSource([aPartners(), bPartners()]).s.lookup(
      'example.org',
      new Date(),
    );
    assert.equal(
      ab.status === 'found' && ab.certificate.fingerprint,
      org.encryption.certificate.fingerprint,
    );
    const ba = await recordingSource([bPartners(), aPartners()]).s.lookup(
      'example.org',
      new Date(),
    );
    assert.equal(
      ba.status === 'found' && ba.certificate.fingerprint,
      orgAlt.encryption.certificate.fingerprint,
    );
  });

  it('an internationalised domain is searched under its A-label', async () => {
    const r = await recordingSource([aPartners()]).s.lookup('Bücher.example', new Date());
    assert.equal(
      r.status === 'found' && r.certificate.fingerprint,
      idn.encryption.certificate.fingerprint,
    );
  });

  it('a domain no directory knows is not-found', async () => {
    const { s, notes } = recordingSource([aPartners(), bPartners()]);
    assert.deepEqual(await s.lookup('nobody.example', new Date()), { status: 'not-found' });
    assert.deepEqual(notes, []);
  });

  it('searches only under the base DN of the URL', async () => {
    const under = await recordingSource([aPartners()]).s.lookup('outside.example', new Date());
    assert.equal(under.status, 'not-found');
    const whole = await recordingSource([a.url()]).s.lookup('outside.example', new Date());
    assert.equal(
      whole.status === 'found' && whole.certificate.fingerprint,
      outside.encryption.certificate.fingerprint,
    );
  });

  it('unusable certificates (signing-only keyUsage, expired) are not-found, with the reason noted', async () => {
    const { s, notes } = recordingSource([aPartners()]);
    assert.deepEqual(await s.lookup('signing-only.example', new Date()), {
      status: 'not-found',
    });
    assert.match(notes.map((n) => n.message).join('\n'), /not usable: keyUsage lacks keyAgreement/);
    notes.length = 0;
    assert.deepEqual(await s.lookup('expired.example', new Date()), { status: 'not-found' });
    assert.match(notes.map((n) => n.message).join('\n'), /not usable: outside its validity period/);
  });

  it('userSMIMECertificate values that hold no certificate are skipped and noted: not-found', async () => {
    const { s, notes } = recordingSource([aPartners()]);
    assert.deepEqual(await s.lookup('garbage.example', new Date()), { status: 'not-found' });
    const text = notes.map((n) => n.message);
    // One blob that is no CMS at all, two bad elements inside an otherwise good blob.
    assert.equal(
      text.filter((m) => /userSMIMECertificate: (?!skipped)/.test(m)).length,
      1,
      text.join('\n'),
    );
    assert.equal(text.filter((m) => m.includes('skipped')).length, 2, text.join('\n'));
    assert.equal(text.length, 3, text.join('\n'));
    assert.ok(notes.every((n) => n.directory === aPartners() && n.domain === 'garbage.example'));
  });

  it('malformed userCertificate values (from a directory that does not check syntax) are skipped', async () => {
    const server = await fake(
      fakeLdapServer([
        {
          dn: 'cn=org,dc=example,dc=net',
          attributes: {
            'userCertificate;binary': [
              nonsense(300),
              Buffer.from('not a certificate'),
              org.encryption.certificate.der,
            ],
          },
        },
      ]),
    );
    const url = `ldap://127.0.0.1:${server.port}/dc=example,dc=net`;
    const { s, notes } = recordingSource([url]);
    const r = await s.lookup('example.org', new Date());
    assert.equal(
      r.status === 'found' && r.certificate.fingerprint,
      org.encryption.certificate.fingerprint,
    );
    assert.equal(notes.filter((n) => n.message.includes('userCertificate:')).length, 2);

    const onlyGarbage = await fake(
      fakeLdapServer([
        {
          dn: 'cn=x,dc=example,dc=net',
          attributes: { 'userCertificate;binary': [nonsense(100)] },
        },
      ]),
    );
    const g = recordingSource([`ldap://127.0.0.1:${onlyGarbage.port}/dc=example,dc=net`]);
    assert.deepEqual(await g.s.lookup('example.org', new Date()), { status: 'not-found' });
    assert.equal(g.notes.length, 1);
  });

  it('a domain that is not a domain name never reaches a directory (filter injection)', async () => {
    const counter = await fake(hangingServer());
    const { s, notes } = recordingSource([`ldap://127.0.0.1:${counter.port}/dc=example,dc=net`]);
    for (const d of ['x)(mail=*', '*', 'example.org)(mail=*', 'a\\2a.example', 'a\u0000b.org']) {
      assert.deepEqual(await s.lookup(d, new Date()), { status: 'not-found' }, d);
    }
    assert.equal(counter.accepted, 0);
    assert.equal(notes.length, 5);
    assert.match(notes[0]?.message ?? '', /not a domain name/);
  });

  it('filter metacharacters in the searched address are matched literally', async () => {
    const dir = parseLdapUrl(aPartners());
    const opts = {
      connectTimeoutMs: 3000,
      timeoutMs: 5000,
      sizeLimit: 10,
      maxResponseBytes: 1 << 20,
    };
    for (const mail of ['*', `${dca('example.org')})(mail=*`, `${dca('example.org')}*`, '\\2a']) {
      const r = await searchByMail(dir, mail, opts);
      assert.equal(r.entries, 0, mail);
    }
    const odd = await searchByMail(dir, oddMail, opts);
    assert.equal(odd.entries, 1);
  });

  it('many matching entries are capped at the size limit', async () => {
    const dir = parseLdapUrl(aPartners());
    const opts = { connectTimeoutMs: 3000, timeoutMs: 5000, maxResponseBytes: 1 << 20 };
    const ten = await searchByMail(dir, dca('many.example'), { ...opts, sizeLimit: 10 });
    assert.equal(ten.entries, 10);
    assert.equal(ten.limited, true);
    assert.equal(ten.values.length, 10);
    const all = await searchByMail(dir, dca('many.example'), { ...opts, sizeLimit: 50 });
    assert.equal(all.entries, 15);
    assert.equal(all.limited, false);

    // A server that ignores the size limit it was asked for is cut off by the client.
    const flood = await fake(
      fakeLdapServer(
        Array.from({ length: 40 }, (_, i) => ({
          dn: `cn=m${i},dc=example,dc=net`,
          attributes: { 'userCertificate;binary': [many.encryption.certificate.der] },
        })),
      ),
    );
    const capped = await searchByMail(
      parseLdapUrl(`ldap://127.0.0.1:${flood.port}/dc=example,dc=net`),
      dca('many.example'),
      { ...opts, sizeLimit: 10 },
    );
    assert.equal(capped.entries, 10);
    assert.equal(capped.values.length, 10);
    assert.equal(capped.limited, true);

    const { s, notes } = recordingSource([aPartners()], { sizeLimit: 3 });
    const r = await s.lookup('many.example', new Date());
    assert.equal(
      r.status === 'found' && r.certificate.fingerprint,
      many.encryption.certificate.fingerprint,
    );
    assert.match(notes[0]?.message ?? '', /3 entries or more/);
  });

  it(`reads at most ${MAX_CERTIFICATES} certificates from one directory answer`, async () => {
    // Distinct certificates (fresh serials) that name someone else, then the usable one last.
    const key = await generateKey('ec-p256');
    const issuer = { certificate: com.ca.certificate, privateKey: com.ca.privateKey };
    const filler = await Promise.all(
      Array.from({ length: MAX_CERTIFICATES }, () =>
        issueCertificate({
          commonName: 'filler',
          publicKey: key.publicKey,
          issuer,
          rfc822Names: [dca('filler.example')],
          keyUsage: ['keyAgreement'],
        }),
      ),
    );
    const server = await fake(
      fakeLdapServer([
        {
          dn: 'cn=crowded,dc=example,dc=net',
          attributes: {
            'userCertificate;binary': [...filler.map((c) => c.der), org.encryption.certificate.der],
          },
        },
      ]),
    );
    const { s, notes } = recordingSource([`ldap://127.0.0.1:${server.port}/dc=example,dc=net`]);
    assert.deepEqual(await s.lookup('example.org', new Date()), { status: 'not-found' });
    assert.ok(
      notes.some(
        (n) => n.message === `more than ${MAX_CERTIFICATES} certificates: the rest were not read`,
      ),
      JSON.stringify(notes.slice(0, 2)),
    );
    // Each unusable one is not described at length.
    assert.ok(notes.length <= 8, `${notes.length} notes`);
    assert.ok(
      notes.some((n) => n.message === `${MAX_CERTIFICATES - 5} more certificates not usable`),
    );
  });

  it('with a validator, only a certificate chaining to a trust anchor is used', async () => {
    const trusted = recordingSource([aPartners()], {
      validator: new AnchorValidator([org.ca.certificate]),
    });
    const r = await trusted.s.lookup('example.org', new Date());
    assert.equal(
      r.status === 'found' && r.certificate.fingerprint,
      org.encryption.certificate.fingerprint,
    );
    const other = recordingSource([aPartners()], {
      validator: new AnchorValidator([com.ca.certificate]),
    });
    assert.deepEqual(await other.s.lookup('example.org', new Date()), { status: 'not-found' });
    assert.match(other.notes.map((n) => n.message).join('\n'), /not trusted/);
    // The CA published in the same certs-only blob is a pool member, not an anchor.
    const com2 = recordingSource([aPartners()], {
      validator: new AnchorValidator([org.ca.certificate]),
    });
    assert.deepEqual(await com2.s.lookup('example.com', new Date()), { status: 'not-found' });
  });

  it('a certificate that cannot be checked for now (hard-fail, responder down): a temporary failure, not "none"', async () => {
    const unsure = recordingSource([aPartners()], {
      validator: {
        validate: async () => ({
          trusted: false,
          temporary: true,
          reason: 'revocation status unavailable (test validator)',
        }),
      },
    });
    const r = await unsure.s.lookup('example.org', new Date());
    assert.equal(r.status, 'temporary-failure', JSON.stringify(r));
    assert.match(r.status === 'temporary-failure' ? r.reason : '', /status unavailable/);
  });

  it('ldaps:// works with the server certificate trusted, and fails without', async () => {
    const creds = { url: c.ldapsUrl(), bindDn: reader.dn, bindPassword: reader.password };
    const ok = await recordingSource([creds], { tls: { ca: c.certificatePem } }).s.lookup(
      'secured.example',
      new Date(),
    );
    assert.equal(
      ok.status === 'found' && ok.certificate.fingerprint,
      secured.encryption.certificate.fingerprint,
    );
    const untrusted = await recordingSource([creds]).s.lookup('secured.example', new Date());
    assert.equal(untrusted.status, 'temporary-failure');
    assert.match(
      untrusted.status === 'temporary-failure' ? untrusted.reason : '',
      /self[- ]signed certificate/i,
    );
  });

  it('binds when given credentials; anonymous or wrong credentials are a temporary failure', async () => {
    const anonymous = await recordingSource([c.url()]).s.lookup('secured.example', new Date());
    assert.equal(anonymous.status, 'temporary-failure');
    assert.match(
      anonymous.status === 'temporary-failure' ? anonymous.reason : '',
      /directory refused/,
    );
    const wrong = await recordingSource([
      { url: c.url(), bindDn: reader.dn, bindPassword: 'not-the-password' },
    ]).s.lookup('secured.example', new Date());
    assert.match(wrong.status === 'temporary-failure' ? wrong.reason : '', /Invalid Credentials/i);
    const right = await recordingSource([
      { url: c.url(), bindDn: reader.dn, bindPassword: reader.password },
    ]).s.lookup('secured.example', new Date());
    assert.equal(right.status, 'found');
  });
});
