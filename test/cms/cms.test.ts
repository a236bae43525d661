import assert from 'node:assert/strict';
import { constants, publicEncrypt, randomBytes } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { CmsError } from '../../src/cms/asn1.js';
import { createCompressedData, decompressCompressedData } from '../../src/cms/compressed.js';
import { decryptEnvelope } from '../../src/cms/decrypt.js';
import { createEnvelope } from '../../src/cms/envelope.js';
import { OID } from '../../src/cms/oids.js';
import { decryptPkcs1KeyTransport } from '../../src/cms/rsa-pkcs1.js';
import { addParallelSigner, createSignedData, type SigningIdentity } from '../../src/cms/sign.js';
import { verifySignedData } from '../../src/cms/verify.js';
import { AnchorValidator } from '../../src/pki/anchor-validator.js';
import { type DomainPki, generateDomainPki, issueCertificate } from '../../src/pki/keygen.js';

const CONTENT = Buffer.from('Content-Type: text/plain\r\n\r\nThe domain signs this.\r\n');

function signer(p: DomainPki): SigningIdentity {
  return { certificate: p.signing.certificate, chain: [], privateKey: p.signing.privateKey };
}

/** Flips one byte of `needle`'s first occurrence inside `der`. */
function tamper(der: Buffer, needle: Buffer, offset = 0): Buffer {
  const at = der.indexOf(needle);
  assert.ok(at >= 0, 'needle present');
  const copy = Buffer.from(der);
  copy[at + offset]! ^= 0x01;
  return copy;
}

describe('CMS signing and verification', () => {
  const pkis: Record<string, DomainPki> = {};
  before(async () => {
    for (const algo of ['rsa-2048', 'ec-p256', 'ed25519'] as const)
      pkis[algo] = await generateDomainPki('example.org', { algo });
  });

  for (const [algo, rsaPss, sigAlg] of [
    ['rsa-2048', false, OID.rsaEncryption],
    ['rsa-2048', true, OID.rsassaPss],
    ['ec-p256', false, OID.ecdsaWithSha256],
    ['ed25519', false, OID.ed25519],
  ] as const) {
    test(`${algo}${rsaPss ? ' PSS' : ''}: detached and opaque round trips with the domain signature type`, async () => {
      const p = pkis[algo]!;
      const validator = new AnchorValidator([p.ca.certificate]);
      const detached = await createSignedData(CONTENT, signer(p), { rsaPss });
      const v = await verifySignedData(detached, { detachedContent: CONTENT, validator });
      const s = v.signers[0]!;
      assert.equal(s.valid, true, JSON.stringify(s.failure));
      assert.equal(s.signatureAlgorithm, sigAlg);
      assert.deepEqual(s.signatureTypes, ['domain']);
      assert.equal(s.chain?.trusted, true);
      assert.deepEqual(s.capabilities.slice(0, 2), [OID.aes256Gcm, OID.aes128Gcm]);
      assert.ok(s.signedAttributes.includes(OID.signingCertificateV2));
      assert.ok(s.signingTime instanceof Date);
      const opaque = await createSignedData(CONTENT, signer(p), { detached: false, rsaPss });
      const o = await verifySignedData(opaque);
      assert.ok(o.content.equals(CONTENT));
      assert.equal(o.signers[0]!.valid, true);
    });
  }

  test('tampered content, tampered signed attribute, foreign certificate: each a clear failure', async () => {
    const p = pkis['rsa-2048']!;
    const der = await createSignedData(CONTENT, signer(p), {
      signingTime: new Date('2026-01-02T03:04:05Z'),
    });
    const content = Buffer.from(CONTENT);
    content[content.length - 3]! ^= 0x20;
    const v1 = await verifySignedData(der, { detachedContent: content });
    assert.equal(v1.signers[0]!.failure?.code, 'digest-mismatch');
    const badTime = tamper(der, Buffer.from('260102030405Z'), 5);
    const v2 = await verifySignedData(badTime, { detachedContent: CONTENT });
    assert.equal(v2.signers[0]!.failure?.code, 'bad-signature');
    const other = pkis['ec-p256']!;
    const untrusted = await verifySignedData(der, {
      detachedContent: CONTENT,
      validator: new AnchorValidator([other.ca.certificate]),
    });
    assert.equal(untrusted.signers[0]!.valid, true);
    assert.equal(untrusted.signers[0]!.chain?.trusted, false);
    assert.match(untrusted.signers[0]!.chain?.reason ?? '', /no path to a trusted/);
  });

  test('an expired signer certificate is reported as such by the validator', async () => {
    const p = pkis['rsa-2048']!;
    const expired = await issueCertificate({
      commonName: 'expired signer',
      publicKey: p.signing.certificate.publicKey,
      issuer: { certificate: p.ca.certificate, privateKey: p.ca.privateKey },
      keyUsage: ['digitalSignature'],
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const der = await createSignedData(CONTENT, {
      certificate: expired,
      chain: [],
      privateKey: p.signing.privateKey,
    });
    const v = await verifySignedData(der, {
      detachedContent: CONTENT,
      validator: new AnchorValidator([p.ca.certificate]),
    });
    assert.equal(v.signers[0]!.chain?.trusted, false);
    assert.match(v.signers[0]!.chain?.reason ?? '', /expired on/);
  });

  test('content inside a detached signature is refused (CVE-2018-18509)', async () => {
    const opaque = await createSignedData(CONTENT, signer(pkis['rsa-2048']!), { detached: false });
    await assert.rejects(verifySignedData(opaque, { detachedContent: CONTENT }), {
      code: 'malformed',
    });
  });

  test('truncated and garbage DER are malformed, never a crash', async () => {
    const der = await createSignedData(CONTENT, signer(pkis['rsa-2048']!));
    for (const cut of [1, 10, 100, der.length - 1]) {
      await assert.rejects(
        verifySignedData(der.subarray(0, cut), { detachedContent: CONTENT }),
        CmsError,
      );
    }
    await assert.rejects(
      verifySignedData(randomBytes(300), { detachedContent: CONTENT }),
      CmsError,
    );
  });

  test('a parallel SignerInfo keeps the first signer valid and adds ours', async () => {
    const first = await createSignedData(CONTENT, signer(pkis['ec-p256']!), {
      signatureTypes: [OID.originatorSig],
    });
    const both = await addParallelSigner(first, CONTENT, signer(pkis['rsa-2048']!));
    const v = await verifySignedData(both, { detachedContent: CONTENT });
    assert.deepEqual(
      v.signers.map((s) => [s.valid, s.signatureTypes[0]]),
      [
        [true, 'originator'],
        [true, 'domain'],
      ],
    );
    assert.equal(v.certificates.length, 2);
  });
});

describe('CMS encryption and decryption', () => {
  let rsa: DomainPki;
  let ec: DomainPki;
  before(async () => {
    rsa = await generateDomainPki('example.net', { algo: 'rsa-2048' });
    ec = await generateDomainPki('example.com', { algo: 'ec-p256' });
  });
  const key = (p: DomainPki) => ({
    certificate: p.encryption.certificate,
    privateKey: p.encryption.privateKey,
  });

  for (const cipher of ['aes-128-cbc', 'aes-256-cbc', 'aes-128-gcm', 'aes-256-gcm'] as const) {
    test(`${cipher} to an RSA (OAEP and v1.5) and an EC recipient`, () => {
      const der = createEnvelope(
        CONTENT,
        [
          { certificate: rsa.encryption.certificate, keyTransport: 'rsa-pkcs1' },
          { certificate: ec.encryption.certificate },
        ],
        { cipher },
      );
      for (const k of [key(rsa), key(ec)]) {
        const r = decryptEnvelope(der, [k]);
        assert.ok(r.content.equals(CONTENT));
        assert.equal(r.authenticated, cipher.endsWith('gcm'));
      }
      const oaep = createEnvelope(CONTENT, [{ certificate: rsa.encryption.certificate }], {
        cipher,
      });
      assert.equal(decryptEnvelope(oaep, [key(rsa)]).keyEncryption, OID.rsaesOaep);
    });
  }

  test('a tampered GCM ciphertext or tag fails authentication', () => {
    const der = createEnvelope(CONTENT, [{ certificate: rsa.encryption.certificate }], {
      cipher: 'aes-256-gcm',
    });
    const flipped = Buffer.from(der);
    flipped[der.length - 20]! ^= 1; // inside the tag at the end
    assert.throws(() => decryptEnvelope(flipped, [key(rsa)]), { code: 'decrypt-failed' });
  });

  test('a key we do not hold: no-recipient; our other key: no-recipient', () => {
    const der = createEnvelope(CONTENT, [{ certificate: rsa.encryption.certificate }]);
    assert.throws(() => decryptEnvelope(der, [key(ec)]), { code: 'no-recipient' });
  });

  test('RSA v1.5 implicit rejection: bad padding gives a deterministic key of the right length, not an error', () => {
    const k = rsa.encryption.privateKey;
    const pub = rsa.encryption.certificate.publicKey;
    const cek = randomBytes(32);
    const good = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, cek);
    assert.ok(decryptPkcs1KeyTransport(k, good, 32).equals(cek));
    const wrongLength = publicEncrypt(
      { key: pub, padding: constants.RSA_PKCS1_PADDING },
      randomBytes(16),
    );
    const garbage = randomBytes(256);
    garbage[0] = 0;
    for (const bad of [wrongLength, garbage, Buffer.alloc(10)]) {
      const a = decryptPkcs1KeyTransport(k, bad, 32);
      assert.equal(a.length, 32);
      assert.ok(
        a.equals(decryptPkcs1KeyTransport(k, bad, 32)),
        'same ciphertext, same synthetic key',
      );
      assert.ok(!a.equals(cek));
    }
  });

  test('bad and good v1.5 padding end in the same outward result', () => {
    // GCM content: a wrong key always fails authentication (CBC would pass its padding check 1 time in 256).
    const der = createEnvelope(
      CONTENT,
      [{ certificate: rsa.encryption.certificate, keyTransport: 'rsa-pkcs1' }],
      {
        cipher: 'aes-256-gcm',
      },
    );
    // Replace the encrypted key by a valid v1.5 block around the wrong key, and by garbage.
    const encKeyAt = der.indexOf(Buffer.from([0x04, 0x82, 0x01, 0x00])) + 4;
    const wrongKey = publicEncrypt(
      { key: rsa.encryption.certificate.publicKey, padding: constants.RSA_PKCS1_PADDING },
      randomBytes(32),
    );
    const results = [wrongKey, randomBytes(256)].map((enc) => {
      const copy = Buffer.from(der);
      enc.copy(copy, encKeyAt);
      try {
        decryptEnvelope(copy, [key(rsa)]);
        return 'decrypted';
      } catch (err) {
        return (err as CmsError).code;
      }
    });
    assert.deepEqual(results, ['decrypt-failed', 'decrypt-failed']);
  });
});

describe('CMS compressed data', () => {
  test('round trip, and a decompression bomb is refused by ratio', () => {
    const der = createCompressedData(CONTENT);
    assert.ok(decompressCompressedData(der).content.equals(CONTENT));
    const bomb = createCompressedData(Buffer.alloc(20 * 1024 * 1024));
    assert.ok(bomb.length < 100_000);
    assert.throws(
      () => decompressCompressedData(bomb, { maxRatio: 100, maxBytes: 64 * 1024 * 1024 }),
      { code: 'too-large' },
    );
  });
});
