// A signature counts only for the domain or address it was issued to
// (RFC 8551 3.1, RFC 8550 3, RFC 3183 3.1.2). A partner's valid, trusted
// domain signature is proof of origin for the partner's mail, not for mail
// that claims to be from someone else: an outside sender who holds any
// trusted certificate (a partner's, one from a shared or bridged CA) must
// not get smime=pass on `From: ceo@example.com`. Through the real gateway
// application behind our MilterServer; the name matching itself
// (src/smime/binding.ts, src/smime/authors.ts) is unit-tested at the end.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CertificateInfo } from '../../src/cms/certificate.js';
import { splitMessage } from '../../src/mime/index.js';
import { generateKey, issueCertificate } from '../../src/pki/keygen.js';
import { authorsOf } from '../../src/smime/authors.js';
import { bindingTo } from '../../src/smime/binding.js';
import { transformOutbound } from '../../src/smime/outbound.js';
import type { TestMilter } from '../helpers/milter.js';
import {
  addedResults,
  OUTSIDE,
  replyOf,
  type SecurityPki,
  securityPki,
  send,
  startUs,
} from '../helpers/security-fixture.js';

let pki: SecurityPki;
let milter: TestMilter;
let strict: TestMilter;
/** A certificate for example.com issued by example.org's CA: a CA two domains share. */
let sharedCa: { certificate: CertificateInfo; privateKey: import('node:crypto').KeyObject };
/** A personal certificate for alice@example.org from the same CA. */
let alice: { certificate: CertificateInfo; privateKey: import('node:crypto').KeyObject };
/** A domain certificate for the IDN bücher.example (xn--bcher-kva.example). */
let idn: { certificate: CertificateInfo; privateKey: import('node:crypto').KeyObject };

async function issuedByOrgCa(names: { rfc822?: string[]; dns?: string[] }, cn: string) {
  const key = await generateKey('rsa-2048');
  const certificate = await issueCertificate({
    commonName: cn,
    publicKey: key.publicKey,
    issuer: { certificate: pki.org.ca.certificate, privateKey: pki.org.ca.privateKey },
    rfc822Names: names.rfc822 ?? [],
    dnsNames: names.dns ?? [],
    keyUsage: ['digitalSignature', 'nonRepudiation'],
    emailProtection: true,
  });
  return { certificate, privateKey: key.privateKey };
}

before(async () => {
  pki = await securityPki();
  sharedCa = await issuedByOrgCa(
    { rfc822: ['domain-signing-authority@example.com'], dns: ['example.com'] },
    'example.com domain signing',
  );
  alice = await issuedByOrgCa({ rfc822: ['alice@example.org'] }, 'Alice');
  idn = await issuedByOrgCa({ dns: ['xn--bcher-kva.example'] }, 'bücher domain signing');
  [milter, strict] = await Promise.all([
    startUs(pki),
    startUs(pki, { DOMSEC_INBOUND_REQUIRE_SIGNED: 'example.com,example.org' }),
  ]);
});

after(async () => {
  await milter?.close();
  await strict?.close();
  await pki?.cleanup();
});

type Signer = { certificate: CertificateInfo; privateKey: import('node:crypto').KeyObject };

/** A message with these header lines, signed (multipart/signed) by `signer`. */
async function signedBy(signer: Signer | 'org', headers: string): Promise<Buffer> {
  const s = signer === 'org' ? pki.org.signing : signer;
  const r = await transformOutbound(
    Buffer.from(`${headers}To: bob@example.net\r\nSubject: hello\r\n\r\nHello Bob.\r\n`),
    {
      signer: {
        certificate: s.certificate,
        chain: [pki.org.ca.certificate],
        privateKey: s.privateKey,
      },
      recipients: [],
      options: { sign: true, encrypt: false },
    },
  );
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return r.message;
}

async function resultOf(m: TestMilter, message: Buffer, from = '<x@example.org>'): Promise<string> {
  const o = await send(m, message, { from, rcpts: ['<bob@example.net>'], address: OUTSIDE });
  assert.equal(o.decision?.type, 'accept', replyOf(o.decision));
  const results = addedResults(o);
  assert.equal(results.length, 1);
  return results[0]!;
}

describe('a signature counts only for the domain it was issued to', () => {
  it('control: example.org domain signature on From: alice@example.org is smime=pass', async () => {
    assert.match(
      await resultOf(milter, await signedBy('org', 'From: Alice <alice@example.org>\r\n')),
      /smime=pass/,
    );
  });

  it("example.org's valid, trusted signature on From: ceo@example.com is not pass (smime=policy, not bound)", async () => {
    const r = await resultOf(milter, await signedBy('org', 'From: CEO <ceo@example.com>\r\n'));
    assert.doesNotMatch(r, /smime=pass/);
    assert.match(r, /smime=policy\s+\(signer not bound to the author\)/);
  });

  it('a shared CA: the example.com certificate passes for example.com and not for example.org', async () => {
    assert.match(
      await resultOf(milter, await signedBy(sharedCa, 'From: ceo@example.com\r\n')),
      /smime=pass/,
    );
    assert.match(
      await resultOf(milter, await signedBy(sharedCa, 'From: alice@example.org\r\n')),
      /smime=policy/,
    );
  });

  it('every From address must be bound, and the Sender when there is one', async () => {
    for (const headers of [
      'From: alice@example.org, ceo@example.com\r\n',
      'From: alice@example.org\r\nSender: ceo@example.com\r\n',
      'From: alice@example.org\r\nFrom: ceo@example.com\r\n',
      'From: team: alice@example.org, ceo@example.com;\r\n',
    ]) {
      const r = await resultOf(milter, await signedBy('org', headers));
      assert.match(r, /smime=policy/, headers);
    }
    // Both bound: a domain signature for each domain (two signers are one test too far; one domain here).
    assert.match(
      await resultOf(
        milter,
        await signedBy(
          'org',
          'From: alice@example.org, carol@EXAMPLE.ORG\r\nSender: dave@example.org\r\n',
        ),
      ),
      /smime=pass/,
    );
  });

  it('a subdomain is not the domain: From: a@mail.example.org with the example.org certificate is not pass', async () => {
    assert.match(
      await resultOf(milter, await signedBy('org', 'From: a@mail.example.org\r\n')),
      /smime=policy/,
    );
  });

  it('an originator certificate binds its own address only', async () => {
    assert.match(
      await resultOf(milter, await signedBy(alice, 'From: Alice <alice@example.org>\r\n')),
      /smime=pass/,
    );
    assert.match(
      await resultOf(milter, await signedBy(alice, 'From: bob@example.org\r\n')),
      /smime=policy/,
    );
  });

  it('IDN: a UTF-8 From domain binds to the certificate naming its A-label', async () => {
    const message = await signedBy(idn, 'From: Hans <hans@bücher.example>\r\n');
    assert.match(await resultOf(milter, message, '<hans@xn--bcher-kva.example>'), /smime=pass/);
  });

  it('DOMSEC_INBOUND_REQUIRE_SIGNED counts only bound signers: example.org signing for example.com is refused', async () => {
    const o = await send(strict, await signedBy('org', 'From: ceo@example.com\r\n'), {
      from: '<ceo@example.com>',
      rcpts: ['<bob@example.net>'],
      address: OUTSIDE,
    });
    assert.match(
      replyOf(o.decision) ?? '',
      /^451 4\.7\.1 unprotected: mail from example\.com must be signed/,
    );
    const good = await send(strict, await signedBy('org', 'From: alice@example.org\r\n'), {
      from: '<alice@example.org>',
      rcpts: ['<bob@example.net>'],
      address: OUTSIDE,
    });
    assert.equal(good.decision?.type, 'accept');
  });
});

describe('authors and binding, unit', () => {
  const authors = (lines: string[]) =>
    authorsOf(splitMessage(Buffer.from(`${lines.map((l) => `${l}\r\n`).join('')}\r\n`)).headers);

  it('reads each From mailbox and the Sender, domains in lower-case A-labels', () => {
    const a = authors([
      'From: "Doe, J" <J.Doe@Example.ORG>, x@bücher.example',
      'Sender: s@example.org',
    ]);
    assert.ok(a.ok);
    assert.deepEqual(
      a.authors.map((x) => x.address),
      ['J.Doe@example.org', 'x@xn--bcher-kva.example', 's@example.org'],
    );
  });

  it('no authors when the fields are missing, repeated or unreadable', () => {
    for (const lines of [
      [],
      ['From: a@example.org', 'From: b@example.org'],
      ['From: a@example.org', 'Sender: b@example.org', 'Sender: c@example.org'],
      ['From: <<a@example.org'],
      ['From: a@example.org', 'Sender: a@example.org, b@example.org'],
    ]) {
      assert.equal(authors(lines).ok, false, lines.join(' | '));
    }
  });

  it('domain binding: exact domain, case-insensitive; local parts as written', () => {
    const cert = pki.org.signing.certificate;
    const one = (address: string) => {
      const a = authors([`From: ${address}`]);
      assert.ok(a.ok);
      return bindingTo(cert, a.authors[0]!);
    };
    assert.equal(one('anyone@EXAMPLE.org'), 'domain');
    assert.equal(one('anyone@sub.example.org'), undefined);
    assert.equal(one('anyone@example.org.evil.example'), undefined);
    const personal = (address: string) => {
      const a = authors([`From: ${address}`]);
      assert.ok(a.ok);
      return bindingTo(alice.certificate, a.authors[0]!);
    };
    assert.equal(personal('alice@EXAMPLE.ORG'), 'address');
    assert.equal(
      personal('Alice@example.org'),
      undefined,
      'the local part is case-sensitive (RFC 5321 2.4)',
    );
  });
});
