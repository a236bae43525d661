/**
 * The RFC 9216 / draft-ireland-examples-cms objects kept under test/vectors/.
 */
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { type CertificateInfo, loadCertificatesPem } from '../../src/cms/certificate.js';
import { decryptEnvelope } from '../../src/cms/decrypt.js';
import { verifySignedData } from '../../src/cms/verify.js';
import { CMS_VECTORS } from '../helpers/vectors.js';

const ROOT = CMS_VECTORS;
const SAMPLE = 'This is some sample content.';

const file = (name: string) => readFileSync(join(ROOT, 'binary-files', `${name}.p7m`));
const cert = (name: string) =>
  loadCertificatesPem(readFileSync(join(ROOT, 'certs-and-keys', name), 'utf8'))[0]!;
const key = (name: string) => createPrivateKey(readFileSync(join(ROOT, 'certs-and-keys', name)));

describe('public CMS test vectors (RFC 9216 keys)', () => {
  let alice: CertificateInfo;
  let carlos: CertificateInfo;
  before(() => {
    assert.ok(existsSync(ROOT), `CMS vectors not found at ${ROOT}`);
    alice = cert('lamps-alice.crt');
    carlos = cert('lamps-carlos.crt');
  });

  for (const [name, signer, alg] of [
    ['signedByAliceRSA', 'alice@smime.example', '1.2.840.113549.1.1.1'],
    ['signedByAliceRSAPSS', 'alice@smime.example', '1.2.840.113549.1.1.10'],
    ['signedByCarlosEd25519', 'carlos@smime.example', '1.3.101.112'],
  ] as const) {
    test(`${name} verifies`, async () => {
      const r = await verifySignedData(file(name));
      assert.equal(r.content.toString(), SAMPLE);
      assert.equal(r.signers.length, 1);
      assert.equal(r.signers[0]!.valid, true, JSON.stringify(r.signers[0]!.failure));
      assert.deepEqual(r.signers[0]!.certificate?.rfc822Names, [signer]);
      assert.equal(r.signers[0]!.signatureAlgorithm, alg);
    });
  }

  test('signedByCarlosDetached verifies with its detached content, and not with other content', async () => {
    const good = await verifySignedData(file('signedByCarlosDetached'), {
      detachedContent: Buffer.from(SAMPLE),
    });
    assert.equal(good.signers[0]!.valid, true);
    const bad = await verifySignedData(file('signedByCarlosDetached'), {
      detachedContent: Buffer.from(`${SAMPLE}!`),
    });
    assert.equal(bad.signers[0]!.valid, false);
  });

  test('signedByAliceAndCarlosNoCerts: two signers, verified with certificates known from elsewhere', async () => {
    const without = await verifySignedData(file('signedByAliceAndCarlosNoCerts'));
    assert.deepEqual(
      without.signers.map((s) => s.failure?.code),
      ['no-signer-certificate', 'no-signer-certificate'],
    );
    const r = await verifySignedData(file('signedByAliceAndCarlosNoCerts'), {
      knownCertificates: [alice, carlos],
    });
    assert.deepEqual(
      r.signers.map((s) => s.valid),
      [true, true],
    );
    assert.deepEqual(r.signers.map((s) => s.certificate?.rfc822Names[0]).sort(), [
      'alice@smime.example',
      'carlos@smime.example',
    ]);
  });

  const bob = () => ({
    certificate: cert('lamps-bob.encrypt.crt'),
    privateKey: key('lamps-bob.decrypt.p8.pem'),
  });
  const dana = () => ({
    certificate: cert('lamps-dana.encrypt.crt'),
    privateKey: key('lamps-dana.decrypt.p8.pem'),
  });

  for (const [name, who, authenticated] of [
    ['encryptedForBobRSAOaep', bob, false],
    ['encryptedForBobAndDana', bob, false],
    ['encryptedForBobAndDana', dana, false],
    ['authEnvelopedForBobChaCha20Poly1305', bob, true],
    ['authEnvelopedForDanaX25519HKDF', dana, true],
  ] as const) {
    test(`${name} decrypts for ${who === bob ? 'Bob (RSA)' : 'Dana (X25519)'}`, () => {
      const r = decryptEnvelope(file(name), [who()]);
      assert.equal(r.content.toString(), SAMPLE);
      assert.equal(r.authenticated, authenticated);
    });
  }

  test('encryptedKekri: a KEK recipient is not one of our keys, said clearly', () => {
    assert.throws(() => decryptEnvelope(file('encryptedKekri'), [bob(), dana()]), {
      code: 'no-recipient',
    });
  });

  test('a message for Bob is not decrypted with Dana alone', () => {
    assert.throws(() => decryptEnvelope(file('encryptedForBobRSAOaep'), [dana()]), {
      code: 'no-recipient',
    });
  });
});
