// A relay cannot turn a pass into a fail, nor stall us, through the
// certificate set of a SignedData: it is not signed, so anyone on the path
// can add to it. An altered copy of the signer's certificate (same issuer and
// serial: broken CA signature, or another key), a malformed certificate, or
// a pile of unrelated ones must leave a valid, trusted signature valid and
// trusted: every candidate that matches the signer identifier is tried
// (bounded), and the one whose signature verifies and whose path validates
// decides (src/cms/verify.ts, src/cms/signed-data-certificates.ts).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createSignedData, type SigningIdentity } from '../../src/cms/sign.js';
import { verifySignedData } from '../../src/cms/verify.js';
import { encodeBase64Lines } from '../../src/mime/index.js';
import { AnchorValidator } from '../../src/pki/anchor-validator.js';
import { generateDomainPki } from '../../src/pki/keygen.js';
import { withContent } from '../helpers/cms-mutations.js';
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

const CONTENT = Buffer.from('Content-Type: text/plain\r\n\r\nThe figures, signed.\r\n');
/** ContentInfo [0] -> SignedData -> its fourth field, certificates [0]. */
const CERTIFICATES = [1, 0, 3];

let pki: SecurityPki;
let milter: TestMilter;
let signer: SigningIdentity;
let genuine: Buffer;

before(async () => {
  pki = await securityPki();
  milter = await startUs(pki, { DOMSEC_INBOUND_REQUIRE_SIGNED: 'example.org' });
  signer = {
    certificate: pki.org.signing.certificate,
    chain: [pki.org.ca.certificate],
    privateKey: pki.org.signing.privateKey,
  };
  genuine = await createSignedData(CONTENT, signer, { detached: false });
});

after(async () => {
  await milter?.close();
  await pki?.cleanup();
});

/** The SignedData with `extra` certificates put in front of its own. */
function withCertificatesFirst(der: Buffer, extra: readonly Buffer[]): Buffer {
  const own = signer.certificate.der;
  const ca = pki.org.ca.certificate.der;
  const at = der.indexOf(own);
  assert.ok(at > 0 && der.indexOf(ca) > 0, 'both certificates are in the set');
  return withContent(der, CERTIFICATES, Buffer.concat([...extra, own, ca]));
}

/** The signer's certificate with one byte changed at `offsetFromEnd` (its CA signature) or in its key. */
function altered(where: 'signature' | 'key'): Buffer {
  const der = Buffer.from(signer.certificate.der);
  const spki = der.indexOf(Buffer.from('0282010100', 'hex'));
  const at = where === 'signature' ? der.length - 8 : spki + 40;
  der[at]! ^= 0x5a;
  return der;
}

const verdictOf = async (der: Buffer) => {
  const v = await verifySignedData(der, {
    validator: new AnchorValidator([pki.org.ca.certificate]),
  });
  return v.signers[0]!;
};

const asMessage = (der: Buffer): Buffer =>
  Buffer.concat([
    Buffer.from(
      'From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nMIME-Version: 1.0\r\n' +
        'Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\n' +
        'Content-Transfer-Encoding: base64\r\n\r\n',
    ),
    encodeBase64Lines(der),
  ]);

describe('a relay cannot turn a pass into a fail through the certificate set', () => {
  it('control: the genuine SignedData is valid and trusted', async () => {
    const s = await verdictOf(genuine);
    assert.equal(s.valid, true);
    assert.equal(s.chain?.trusted, true, s.chain?.reason);
  });

  for (const where of ['signature', 'key'] as const) {
    it(`an altered copy of the signer's certificate (${where} changed) in front of the genuine one: still valid and trusted, by the genuine certificate`, async () => {
      const s = await verdictOf(withCertificatesFirst(genuine, [altered(where)]));
      assert.equal(s.valid, true, s.failure?.message);
      assert.equal(s.chain?.trusted, true, s.chain?.reason);
      assert.equal(s.certificate?.fingerprint, signer.certificate.fingerprint);
    });
  }

  it('a malformed certificate and 60 unrelated ones in front: still valid and trusted, the rest noted', async () => {
    const others = await Promise.all(
      Array.from({ length: 3 }, (_, i) => generateDomainPki(`junk${i}.example`)),
    );
    const junk = Array.from({ length: 60 }, (_, i) => others[i % 3]!.signing.certificate.der);
    // Well-formed DER that is no usable certificate: its modulus INTEGER made an OCTET STRING.
    const broken = Buffer.from(signer.certificate.der);
    broken[broken.indexOf(Buffer.from('0282010100', 'hex'))] = 0x04;
    const der = withCertificatesFirst(genuine, [broken, ...junk]);
    const v = await verifySignedData(der, {
      validator: new AnchorValidator([pki.org.ca.certificate]),
    });
    assert.equal(v.signers[0]?.valid, true, v.signers[0]?.failure?.message);
    assert.equal(v.signers[0]?.chain?.trusted, true, v.signers[0]?.chain?.reason);
    assert.ok(
      v.notes.some((n) => /certificates in the message not read/.test(n)),
      v.notes.join('; '),
    );
    assert.ok(
      v.notes.some((n) => /1 malformed certificate/.test(n)),
      v.notes.join('; '),
    );
  });

  it('through the gateway, the partner required to sign: smime=pass, accepted, not the bad-signature action', async () => {
    const message = asMessage(
      withCertificatesFirst(genuine, [altered('signature'), altered('key')]),
    );
    const o = await send(milter, message, {
      from: '<alice@example.org>',
      rcpts: ['<bob@example.net>'],
      address: OUTSIDE,
    });
    assert.equal(o.decision?.type, 'accept', replyOf(o.decision));
    assert.match(addedResults(o)[0] ?? '', /smime=pass/);
  });
});
