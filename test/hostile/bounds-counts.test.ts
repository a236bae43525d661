/**
 * Bounds on what a hostile message chooses the number of, counted rather
 * than timed: RecipientInfos (and a KeyAgreeRecipientInfo's encrypted keys)
 * per envelope, signed attributes and their values per SignerInfo; and the
 * notes the SignedData bounds leave reaching the transform's report. Each
 * at its limit (read) and one past it (not read, with a clear answer).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as pkijs from 'pkijs';
import { decryptEnvelope } from '../../src/cms/decrypt.js';
import * as der from '../../src/cms/der.js';
import { createEnvelope } from '../../src/cms/envelope.js';
import { MAX_RECIPIENT_INFOS, readKeyTransportEnvelope } from '../../src/cms/envelope-reader.js';
import { addParallelSigner, attribute, createSignedData } from '../../src/cms/sign.js';
import {
  MAX_ATTRIBUTE_VALUES,
  MAX_SIGNED_ATTRIBUTES,
  readSignedData,
  readSignerInfo,
} from '../../src/cms/signer-info.js';
import { verifySignedData } from '../../src/cms/verify.js';
import { encodeBase64Lines } from '../../src/mime/index.js';
import { AnchorValidator } from '../../src/pki/anchor-validator.js';
import { type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { transformInbound } from '../../src/smime/inbound.js';
import { CONTENT, childrenAt, editChildren } from '../helpers/der-edit.js';

const TEXT = Buffer.from('Content-Type: text/plain\r\n\r\nbounded\r\n');
const RECIPIENT_INFOS = [...CONTENT, 1];

/** The envelope with `n` copies of its first RecipientInfo before its second (ours). */
function withFillers(envelope: Buffer, n: number): Buffer {
  return editChildren(envelope, RECIPIENT_INFOS, ([filler, ours]) => [
    ...new Array<Buffer>(n).fill(filler!),
    ours!,
  ]);
}

/** Counts the RecipientInfos pkijs builds (its schema matching is the cost bounded). */
function countingRecipientInfos(): { count: () => number; restore: () => void } {
  const proto = pkijs.RecipientInfo.prototype;
  const original = proto.fromSchema;
  let n = 0;
  proto.fromSchema = function (this: pkijs.RecipientInfo, schema) {
    n++;
    return original.call(this, schema);
  };
  return { count: () => n, restore: () => (proto.fromSchema = original) };
}

function opaqueMessage(signedData: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(
      'From: alice@example.org\r\nTo: bob@example.net\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data\r\nContent-Transfer-Encoding: base64\r\n\r\n',
    ),
    encodeBase64Lines(signedData),
  ]);
}

describe('bounds: what a message chooses the number of', () => {
  let ours: DomainPki;
  let other: DomainPki;
  let oursEc: DomainPki;
  let otherEc: DomainPki;
  before(async () => {
    [ours, other, oursEc, otherEc] = await Promise.all([
      generateDomainPki('example.org'),
      generateDomainPki('example.net'),
      generateDomainPki('example.org', { algo: 'ec-p256' }),
      generateDomainPki('example.net', { algo: 'ec-p256' }),
    ]);
  });
  const key = (p: DomainPki) => ({
    certificate: p.encryption.certificate,
    privateKey: p.encryption.privateKey,
  });
  const signer = (p: DomainPki) => ({
    certificate: p.signing.certificate,
    chain: [p.ca.certificate],
    privateKey: p.signing.privateKey,
  });

  test(`RecipientInfos read by position: the first ${MAX_RECIPIENT_INFOS}; 10 000 cost no more`, () => {
    assert.equal(MAX_RECIPIENT_INFOS, 64);
    const envelope = createEnvelope(TEXT, [
      { certificate: other.encryption.certificate },
      { certificate: ours.encryption.certificate },
    ]);
    // Ours is the 64th: read, decrypted.
    const at = withFillers(envelope, 63);
    assert.equal(readKeyTransportEnvelope(at)?.recipients.length, 64);
    assert.deepEqual(decryptEnvelope(at, [key(ours)]).content, TEXT);
    // The 65th: not looked at.
    const past = withFillers(envelope, 64);
    const read = readKeyTransportEnvelope(past);
    assert.equal(read?.recipients.length, 64);
    assert.equal(read?.moreRecipients, true);
    assert.throws(() => decryptEnvelope(past, [key(ours)]), {
      code: 'no-recipient',
      message: /among its first 64 recipients/,
    });
    const bomb = withFillers(envelope, 10_000);
    assert.ok(bomb.length > 3_000_000, `${bomb.length} bytes`);
    assert.equal(readKeyTransportEnvelope(bomb)?.recipients.length, 64);
    assert.throws(() => decryptEnvelope(bomb, [key(ours)]), { code: 'no-recipient' });
  });

  test('RecipientInfos read by asn1js and pkijs (key agreement): the same bound, counted', () => {
    const envelope = createEnvelope(TEXT, [
      { certificate: otherEc.encryption.certificate },
      { certificate: oursEc.encryption.certificate },
    ]);
    assert.equal(readKeyTransportEnvelope(envelope), undefined, 'not read by position');
    const built = countingRecipientInfos();
    try {
      assert.deepEqual(decryptEnvelope(withFillers(envelope, 63), [key(oursEc)]).content, TEXT);
      assert.equal(built.count(), 64);
      const past = withFillers(envelope, 5000);
      const before = built.count();
      assert.throws(() => decryptEnvelope(past, [key(oursEc)]), {
        code: 'no-recipient',
        message: /among its first 64 recipients/,
      });
      assert.equal(built.count() - before, 64, 'RecipientInfos built for 5001');
    } finally {
      built.restore();
    }
  });

  test("a KeyAgreeRecipientInfo's encrypted keys count as recipients", () => {
    const envelope = createEnvelope(TEXT, [{ certificate: oursEc.encryption.certificate }]);
    const keysPath = [...RECIPIENT_INFOS, 0, 3];
    const [rek] = childrenAt(envelope, keysPath);
    // The same encrypted key, addressed to serial numbers nobody has.
    const filler = (i: number) => editChildren(rek!, [0], ([issuer]) => [issuer!, der.int(i + 1)]);
    const withKeys = (n: number) =>
      editChildren(envelope, keysPath, ([ours]) => [
        ...Array.from({ length: n }, (_, i) => filler(i)),
        ours!,
      ]);
    assert.deepEqual(decryptEnvelope(withKeys(63), [key(oursEc)]).content, TEXT);
    assert.throws(() => decryptEnvelope(withKeys(64), [key(oursEc)]), {
      code: 'no-recipient',
      message: /among its first 64 recipients/,
    });
  });

  test(`signed attributes: ${MAX_SIGNED_ATTRIBUTES} read; one more refuses that signer, not the message`, async () => {
    assert.equal(MAX_SIGNED_ATTRIBUTES, 64);
    const plain = await createSignedData(TEXT, signer(ours), { detached: false });
    const own = readSignerInfo(readSignedData(plain)!.signerInfos[0]!)!.signedAttrs!.attributes;
    const extra = (n: number) =>
      Array.from({ length: n }, (_, i) => attribute(`1.3.6.1.4.1.99999.${i}`, der.nullValue()));
    const signedWith = (n: number) =>
      createSignedData(TEXT, signer(ours), {
        detached: false,
        extraSignedAttributes: extra(n - own.length),
      });
    const at = await verifySignedData(await signedWith(64));
    assert.equal(at.signers[0]?.valid, true, JSON.stringify(at.signers[0]?.failure));
    assert.equal(at.signers[0]?.signedAttributes.length, 64);
    // One more: refused with its reason, and a second signer beside it still counts.
    const past = await addParallelSigner(await signedWith(65), TEXT, signer(other));
    const v = await verifySignedData(past);
    assert.deepEqual(v.signers[0]?.failure, {
      code: 'too-large',
      message: 'the signer sent more than 64 signed attributes',
    });
    assert.equal(v.signers[0]?.valid, false);
    assert.equal(v.signers[1]?.valid, true);
    // 50 000 attributes (900 KB): refused as fast, the rest never read.
    const huge = await signedWith(50_000);
    assert.ok(huge.length > 900_000, `${huge.length} bytes`);
    assert.equal(readSignerInfo(readSignedData(huge)!.signerInfos[0]!)?.refused?.code, 'too-large');
  });

  test(`values per signed attribute: ${MAX_ATTRIBUTE_VALUES} read, one more refuses the signer`, async () => {
    assert.equal(MAX_ATTRIBUTE_VALUES, 16);
    const withValues = async (n: number) => {
      const values = Array.from({ length: n }, (_, i) => der.int(i));
      const sd = await createSignedData(TEXT, signer(ours), {
        detached: false,
        extraSignedAttributes: [attribute('1.3.6.1.4.1.99999.1', ...values)],
      });
      return (await verifySignedData(sd)).signers[0]!;
    };
    assert.equal((await withValues(16)).valid, true);
    const past = await withValues(17);
    assert.equal(past.valid, false);
    assert.deepEqual(past.failure, {
      code: 'too-large',
      message: 'the signed attribute 1.3.6.1.4.1.99999.1 has more than 16 values',
    });
  });

  test('what the SignedData bounds leave unread is in the transform report', async () => {
    const one = await createSignedData(TEXT, signer(ours), { detached: false });
    // 40 more certificates (the signer's with other serial numbers) and 8 more signers.
    const certificate = ours.signing.certificate.der;
    const copies = Array.from({ length: 40 }, (_, i) =>
      editChildren(certificate, [0], ([version, , ...rest]) => [version!, der.int(i + 1), ...rest]),
    );
    let sd = editChildren(one, [...CONTENT, 3], (certs) => [...certs, ...copies]);
    sd = editChildren(sd, [...CONTENT, 4], ([si]) => new Array<Buffer>(9).fill(si!));
    const r = await transformInbound(opaqueMessage(sd), {
      keys: [],
      validator: new AnchorValidator([ours.ca.certificate]),
    });
    assert.ok(r.ok, r.ok ? '' : r.error.message);
    assert.deepEqual(r.report.notes, [
      '1 of 9 signers not checked (at most 8)',
      '10 of 42 certificates in the message not read (at most 32)',
    ]);
    const signers = r.report.layers[0]?.signers ?? [];
    assert.equal(signers.length, 8);
    assert.ok(signers.every((s) => s.valid && s.chain?.trusted));
  });
});
