import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { planOutbound } from '../../src/gateway/outbound-plan.js';
import { identityFromKeys } from '../../src/pki/identities.js';
import { type DomainPki, generateDomainPki, issueCertificate } from '../../src/pki/keygen.js';
import { type CertificateSource, PartnerCertificates } from '../../src/pki/partners.js';
import {
  domainMatch,
  encryptionProblem,
  StaticCertificateDirectory,
} from '../../src/pki/static-directory.js';

describe('partner certificates and the outbound plan', () => {
  let org: DomainPki;
  let net: DomainPki;
  let directory: StaticCertificateDirectory;
  before(async () => {
    [org, net] = await Promise.all([
      generateDomainPki('example.org'),
      generateDomainPki('example.net'),
    ]);
    directory = new StaticCertificateDirectory([
      net.encryption.certificate,
      net.signing.certificate,
    ]);
  });
  const identities = () =>
    new Map([
      [
        'example.org',
        identityFromKeys('example.org', [
          {
            label: 'sign',
            certificate: org.signing.certificate,
            chain: [],
            privateKey: org.signing.privateKey,
          },
        ]),
      ],
    ]);
  const policy = {
    sign: 'always',
    encrypt: 'opportunistic',
    encryptRequiredDomains: new Set<string>(),
  } as const;

  test('the directory prefers domain-confidentiality-authority and skips certificates that cannot encrypt', async () => {
    assert.equal(domainMatch(net.encryption.certificate, 'example.net'), 3);
    assert.equal(domainMatch(net.signing.certificate, 'example.net'), 2);
    assert.equal(domainMatch(net.signing.certificate, 'example.com'), 0);
    assert.equal(
      encryptionProblem(net.signing.certificate, new Date()),
      'keyUsage lacks keyEncipherment',
    );
    const r = await directory.lookup('EXAMPLE.NET'.toLowerCase());
    assert.equal(
      r.status === 'found' && r.certificate.fingerprint,
      net.encryption.certificate.fingerprint,
    );
    assert.deepEqual(await directory.lookup('example.com'), { status: 'not-found' });
    const expired = await issueCertificate({
      commonName: 'old',
      publicKey: net.encryption.certificate.publicKey,
      issuer: { certificate: net.ca.certificate, privateKey: net.ca.privateKey },
      rfc822Names: ['domain-confidentiality-authority@example.com'],
      keyUsage: ['keyEncipherment'],
      notBefore: new Date(Date.now() - 9e9),
      notAfter: new Date(Date.now() - 1e9),
    });
    assert.equal(encryptionProblem(expired, new Date()), 'outside its validity period');
  });

  test('sign and encrypt when every recipient domain has a certificate', async () => {
    const plan = await planOutbound(
      '<alice@example.org>',
      ['<bob@example.net>', '<eve@example.net>'],
      identities(),
      new PartnerCertificates([directory]),
      policy,
    );
    assert.equal(plan.kind, 'protect');
    assert.equal(
      plan.kind === 'protect' && plan.context.recipients.length,
      1,
      'one certificate for one domain',
    );
    assert.equal(plan.kind === 'protect' && plan.context.options.encrypt, true);
  });

  test('opportunistic with a domain lacking a certificate: signed only, with a note', async () => {
    const plan = await planOutbound(
      '<alice@example.org>',
      ['<bob@example.net>', '<carol@example.com>'],
      identities(),
      new PartnerCertificates([directory]),
      policy,
    );
    assert.equal(plan.kind === 'protect' && plan.context.options.encrypt, false);
    assert.deepEqual(plan.kind === 'protect' && plan.notes, [
      'not encrypted: no certificate for example.com',
    ]);
  });

  test('required: permanent failure without a certificate, temporary when the lookup failed', async () => {
    const required = { ...policy, encryptRequiredDomains: new Set(['example.com']) };
    const missing = await planOutbound(
      '<alice@example.org>',
      ['<carol@example.com>'],
      identities(),
      new PartnerCertificates([directory]),
      required,
    );
    assert.deepEqual(missing.kind === 'fail' && [missing.code, missing.temporary], [
      'no-certificate',
      false,
    ]);
    const down: CertificateSource = {
      name: 'ldap',
      lookup: async () => {
        throw new Error('connection refused');
      },
    };
    const seen: string[] = [];
    const failing = new PartnerCertificates([down, directory], (s, r) => seen.push(`${s}:${r}`));
    const temp = await planOutbound(
      '<alice@example.org>',
      ['<carol@example.com>'],
      identities(),
      failing,
      required,
    );
    assert.deepEqual(temp.kind === 'fail' && [temp.code, temp.temporary], ['lookup-failed', true]);
    assert.deepEqual(seen, ['ldap:temporary-failure', 'directory:not-found']);
  });

  test('no signing key for the sender domain is a temporary failure; nothing to do is a pass', async () => {
    const noKey = await planOutbound(
      '<alice@example.com>',
      ['<bob@example.net>'],
      identities(),
      new PartnerCertificates([directory]),
      policy,
    );
    assert.deepEqual(noKey.kind === 'fail' && [noKey.code, noKey.temporary], [
      'no-signing-key',
      true,
    ]);
    const nothing = await planOutbound(
      '<alice@example.org>',
      ['<carol@example.com>'],
      identities(),
      new PartnerCertificates([]),
      { ...policy, sign: 'never' },
    );
    assert.equal(nothing.kind, 'pass');
  });
});
