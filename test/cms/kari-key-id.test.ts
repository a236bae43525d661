// A KeyAgreeRecipientInfo that names our key by rKeyId (RecipientKeyIdentifier
// with our certificate's subjectKeyIdentifier, RFC 5652 6.2.2), as Bouncy
// Castle writes it, decrypts (issue 16 item 4). test/interop/bouncy-castle.test.ts
// does the same with the real Bouncy Castle.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { CmsError } from '../../src/cms/asn1.js';
import { decryptEnvelope } from '../../src/cms/decrypt.js';
import * as der from '../../src/cms/der.js';
import { createEnvelope } from '../../src/cms/envelope.js';
import { OID } from '../../src/cms/oids.js';
import { type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { CONTENT, childrenAt, editChildren } from '../helpers/der-edit.js';

/** (Auth)EnvelopedData -> recipientInfos -> the kari -> recipientEncryptedKeys -> the first one. */
const FIRST_ENCRYPTED_KEY = [...CONTENT, 1, 0, 3, 0];

/** `envelope`'s first RecipientEncryptedKey with its rid replaced by `rid`. */
const withRid = (envelope: Buffer, rid: Buffer) =>
  editChildren(envelope, FIRST_ENCRYPTED_KEY, ([, encryptedKey]) => [rid, encryptedKey!]);

/** rKeyId [0] IMPLICIT RecipientKeyIdentifier { subjectKeyIdentifier, date GeneralizedTime? }. */
const rKeyId = (ski: Buffer, date?: string) =>
  der.context(
    0,
    der.octets(ski),
    ...(date ? [Buffer.concat([Buffer.from([0x18, date.length]), Buffer.from(date)])] : []),
  );

describe('key agreement recipients named by key identifier', () => {
  let ours: DomainPki;
  let other: DomainPki;
  before(async () => {
    [ours, other] = await Promise.all([
      generateDomainPki('example.net', { algo: 'ec-p256' }),
      generateDomainPki('example.com', { algo: 'ec-p256' }),
    ]);
  });
  const key = (p: DomainPki) => p.encryption;
  const ski = (p: DomainPki) => p.encryption.certificate.subjectKeyId!;
  const envelope = (content: Buffer, cipher: 'aes-128-cbc' | 'aes-256-gcm') =>
    createEnvelope(content, [{ certificate: ours.encryption.certificate }], { cipher });

  test('the rid edited is the issuerAndSerialNumber our envelope writes', () => {
    const [rid] = childrenAt(envelope(Buffer.from('x'), 'aes-128-cbc'), FIRST_ENCRYPTED_KEY);
    assert.equal(rid![0], 0x30, 'issuerAndSerialNumber SEQUENCE');
    assert.ok(rid!.includes(ours.encryption.certificate.serial));
  });

  for (const cipher of ['aes-128-cbc', 'aes-256-gcm'] as const) {
    test(`${cipher}: rKeyId with our subjectKeyIdentifier decrypts`, () => {
      const content = Buffer.from(`by key identifier, ${cipher}`);
      const byKeyId = withRid(envelope(content, cipher), rKeyId(ski(ours)));
      const r = decryptEnvelope(byKeyId, [key(other), key(ours)]);
      assert.deepEqual(r.content, content);
      assert.equal(r.authenticated, cipher.endsWith('gcm'));
      assert.equal(r.keyEncryption, OID.dhSinglePassStdDhSha256Kdf);
      assert.equal(r.recipient, ours.encryption.certificate);
    });
  }

  test("rKeyId with a date (the key's version) still names our key", () => {
    const content = Buffer.from('dated key identifier');
    const dated = withRid(envelope(content, 'aes-256-gcm'), rKeyId(ski(ours), '20240501000000Z'));
    assert.deepEqual(decryptEnvelope(dated, [key(ours)]).content, content);
  });

  test('rKeyId with another subjectKeyIdentifier is not for us', () => {
    const byOtherId = withRid(envelope(Buffer.from('x'), 'aes-256-gcm'), rKeyId(ski(other)));
    assert.throws(
      () => decryptEnvelope(byOtherId, [key(ours)]),
      (e) =>
        e instanceof CmsError &&
        e.code === 'no-recipient' &&
        /not encrypted to any key we hold/.test(e.message),
    );
  });
});
