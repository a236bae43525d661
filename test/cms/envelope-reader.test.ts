import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { decryptEnvelope } from '../../src/cms/decrypt.js';
import { createEnvelope } from '../../src/cms/envelope.js';
import { readKeyTransportEnvelope } from '../../src/cms/envelope-reader.js';
import { OID } from '../../src/cms/oids.js';
import { type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';

/** The same DER with every definite length of the outer three levels made indefinite (BER). */
function asBer(der: Buffer): Buffer {
  // ContentInfo SEQUENCE and its [0]: rewritten with 0x80 lengths and end-of-contents octets.
  const header = (b: Buffer, at: number) => {
    const first = b[at + 1]!;
    return first < 0x80 ? 2 : 2 + (first & 0x7f);
  };
  const ciHead = header(der, 0);
  const oidLength = 2 + der[ciHead + 1]!;
  const explicitAt = ciHead + oidLength;
  const explicitHead = header(der, explicitAt);
  return Buffer.concat([
    Buffer.from([0x30, 0x80]),
    der.subarray(ciHead, explicitAt),
    Buffer.from([0xa0, 0x80]),
    der.subarray(explicitAt + explicitHead),
    Buffer.from([0, 0, 0, 0]),
  ]);
}

describe('EnvelopedData read by position', () => {
  let rsa: DomainPki;
  let ec: DomainPki;
  before(async () => {
    [rsa, ec] = await Promise.all([
      generateDomainPki('example.net'),
      generateDomainPki('example.com', { algo: 'ec-p256' }),
    ]);
  });
  const key = (p: DomainPki) => ({
    certificate: p.encryption.certificate,
    privateKey: p.encryption.privateKey,
  });

  test('our DER envelopes (CBC and GCM, OAEP and PKCS#1 v1.5) are read by position and decrypt', () => {
    for (const cipher of ['aes-256-cbc', 'aes-128-gcm'] as const) {
      for (const keyTransport of ['rsa-oaep', 'rsa-pkcs1'] as const) {
        const content = Buffer.from(`content for ${cipher} ${keyTransport}`);
        const der = createEnvelope(
          content,
          [{ certificate: rsa.encryption.certificate, keyTransport }],
          {
            cipher,
          },
        );
        const env = readKeyTransportEnvelope(der);
        assert.ok(env, `${cipher} ${keyTransport} read by position`);
        assert.equal(env.authenticated, cipher.endsWith('gcm'));
        assert.equal(env.recipients.length, 1);
        assert.equal(
          env.recipients[0]!.keyEncryption,
          keyTransport === 'rsa-oaep' ? OID.rsaesOaep : OID.rsaEncryption,
        );
        assert.equal(env.tag !== undefined, cipher.endsWith('gcm'));
        const r = decryptEnvelope(der, [key(rsa)]);
        assert.deepEqual(r.content, content);
        assert.equal(r.recipient, rsa.encryption.certificate);
      }
    }
  });

  test('key agreement and BER go to the asn1js reader, and still decrypt', () => {
    const kari = createEnvelope(Buffer.from('to an EC key'), [
      { certificate: ec.encryption.certificate },
    ]);
    assert.equal(readKeyTransportEnvelope(kari), undefined);
    assert.deepEqual(decryptEnvelope(kari, [key(ec)]).content, Buffer.from('to an EC key'));
    const der = createEnvelope(Buffer.from('BER'), [{ certificate: rsa.encryption.certificate }]);
    const ber = asBer(der);
    assert.equal(readKeyTransportEnvelope(ber), undefined);
    assert.deepEqual(decryptEnvelope(ber, [key(rsa)]).content, Buffer.from('BER'));
  });

  test('a message for someone else, and any damage, give the same errors as before', () => {
    const der = createEnvelope(Buffer.from('x'), [
      { certificate: ec.encryption.certificate },
      { certificate: rsa.encryption.certificate },
    ]);
    assert.throws(
      () => decryptEnvelope(der, [{ ...key(rsa), certificate: ec.signing.certificate }]),
      {
        code: 'no-recipient',
      },
    );
    const only = createEnvelope(Buffer.from('y'), [{ certificate: rsa.encryption.certificate }]);
    fc.assert(
      fc.property(fc.nat({ max: only.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const damaged = Buffer.from(only);
        damaged[at]! ^= x;
        try {
          decryptEnvelope(damaged, [key(rsa)]);
        } catch (err) {
          // Typed errors only: never a TypeError or RangeError from the position reader.
          assert.equal((err as Error).name, 'CmsError', String(err));
        }
      }),
      { numRuns: 300 },
    );
  });
});
