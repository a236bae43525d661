import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { OID } from '../../src/cms/oids.js';
import { createSignedData, DEFAULT_CAPABILITIES } from '../../src/cms/sign.js';
import {
  capabilityIdsValue,
  octetsValue,
  oidValue,
  readSignedData,
  readSignerInfo,
} from '../../src/cms/signer-info.js';
import { verifySignedData } from '../../src/cms/verify.js';
import { type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';

const CONTENT = Buffer.from('Content-Type: text/plain\r\n\r\nsigned by position\r\n');

describe('SignedData and SignerInfo read by position', () => {
  let pki: DomainPki;
  let opaque: Buffer;
  let detached: Buffer;
  before(async () => {
    pki = await generateDomainPki('example.org');
    const id = {
      certificate: pki.signing.certificate,
      chain: [pki.ca.certificate],
      privateKey: pki.signing.privateKey,
    };
    opaque = await createSignedData(CONTENT, id, { detached: false });
    detached = await createSignedData(CONTENT, id);
  });

  test('our SignedData: content, certificates and every signed attribute', () => {
    const sd = readSignedData(opaque);
    assert.ok(sd);
    assert.equal(sd.eContentType, OID.data);
    assert.deepEqual(sd.eContent, CONTENT);
    assert.deepEqual(sd.certificates, [pki.signing.certificate.der, pki.ca.certificate.der]);
    assert.equal(sd.signerInfos.length, 1);
    const si = readSignerInfo(sd.signerInfos[0]!);
    assert.ok(si);
    assert.equal(si.digestAlgorithm, OID.sha256);
    assert.equal(si.signatureAlgorithm, OID.rsaEncryption);
    assert.ok('serial' in si.sid && si.sid.serial.equals(pki.signing.certificate.serial));
    const attrs = new Map(si.signedAttrs!.attributes.map((a) => [a.type, a.values]));
    assert.equal(oidValue(attrs.get(OID.contentType)![0]), OID.data);
    assert.equal(octetsValue(attrs.get(OID.messageDigest)![0])!.length, 32);
    assert.deepEqual(capabilityIdsValue(attrs.get(OID.smimeCapabilities)![0]), [
      ...DEFAULT_CAPABILITIES,
    ]);
    assert.equal(oidValue(attrs.get(OID.signatureType)![0]), OID.domainSig);
    assert.equal(si.signedAttrs!.signed[0], 0x31, 'signed over the SET OF encoding');
    assert.equal(readSignedData(detached)!.eContent, undefined);
  });

  test('not DER of the expected shape: undefined, and verification still says why', async () => {
    assert.equal(readSignerInfo(Buffer.from([0x30, 0x80, 0x02, 0x01, 0x01, 0, 0])), undefined);
    assert.equal(readSignedData(Buffer.from([0x30, 0x03, 0x06, 0x01, 0x00])), undefined);
    // Value readers refuse the wrong types instead of guessing.
    assert.equal(oidValue(Buffer.from([0x04, 0x01, 0x00])), undefined);
    assert.equal(octetsValue(Buffer.from([0x06, 0x01, 0x2a])), undefined);
    assert.deepEqual(capabilityIdsValue(Buffer.from([0x04, 0x00])), []);
    const v = await verifySignedData(opaque);
    assert.equal(v.signers[0]!.valid, true);
  });

  test('damage anywhere gives a typed error or an invalid signer, never a valid one from a changed signature', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: opaque.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        async (at, x) => {
          const damaged = Buffer.from(opaque);
          damaged[at]! ^= x;
          try {
            const v = await verifySignedData(damaged);
            const content = v.content;
            // Valid only if the signed content and the signature bytes were untouched.
            if (v.signers.some((s) => s.valid)) assert.deepEqual(content, CONTENT);
          } catch (err) {
            assert.equal((err as Error).name, 'CmsError', String(err));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
