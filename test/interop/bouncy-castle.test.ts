// Interop with Bouncy Castle (issue 16 item 4): BC encrypts to our EC P-256
// domain encryption key by ECDH, naming the recipient by key identifier
// (rKeyId, RFC 5652 6.2.2) as BC's addRecipient(byte[], PublicKey) writes
// it; transformInbound decrypts it.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { OID } from '../../src/cms/oids.js';
import { splitMessage } from '../../src/mime/headers.js';
import { AnchorValidator } from '../../src/pki/anchor-validator.js';
import { certificatePem, type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { transformInbound } from '../../src/smime/inbound.js';
import { transformOutbound } from '../../src/smime/outbound.js';
import type { TransformResult } from '../../src/smime/types.js';
import { partitionHeaders } from '../../src/smime/wire.js';
import { type BouncyCastle, bouncyCastle } from '../helpers/bouncy-castle.js';
import { splitSmime } from '../helpers/gpgsm.js';

const OUTER =
  'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: from Bouncy Castle\r\n';
const CONTENT = Buffer.from(
  'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n' +
    'Grüße from the partner.\r\n.\r\nEnd.\r\n',
  'utf8',
);
/** What was sent: the message a user at example.org wrote. */
const SENT = Buffer.concat([Buffer.from(`${OUTER}MIME-Version: 1.0\r\n`), CONTENT]);

let dir = '';
let bc: BouncyCastle;
let ours: DomainPki; // example.net, the receiving domain: EC P-256
let theirs: DomainPki; // example.org, the sending domain
let certPath = '';

const ok = (r: TransformResult): Buffer => {
  assert.ok(r.ok, r.ok ? '' : `${r.error.code}: ${r.error.message}`);
  return r.message;
};
const sameBytes = (got: Buffer, want: Buffer) =>
  assert.ok(got.equals(want), `got:\n${got.toString('utf8')}\nwant:\n${want.toString('utf8')}`);

/** A message's outer headers and its top-level entity (content headers and body). */
function split(message: Buffer): { outer: Buffer; entity: Buffer } {
  const { headers, body } = splitMessage(message);
  const { entity, outer } = partitionHeaders(headers);
  const lines = (fields: typeof headers) => fields.map((f) => `${f.raw.toString('latin1')}\r\n`);
  return {
    outer: Buffer.from(lines(outer).join(''), 'latin1'),
    entity: Buffer.concat([Buffer.from(`${lines(entity).join('')}\r\n`, 'latin1'), body]),
  };
}

/** BC's ContentInfo as the application/pkcs7-mime entity of a message with `outer` headers. */
function smime(outer: Buffer, smimeType: string, cms: Buffer): Buffer {
  const b64 = cms.toString('base64').replace(/.{1,76}/g, '$&\r\n');
  return Buffer.concat([
    outer,
    Buffer.from(
      'MIME-Version: 1.0\r\n' +
        `Content-Type: application/pkcs7-mime; smime-type=${smimeType}; name=smime.p7m\r\n` +
        'Content-Disposition: attachment; filename=smime.p7m\r\n' +
        `Content-Transfer-Encoding: base64\r\n\r\n${b64}`,
    ),
  ]);
}

const inbound = (message: Buffer) =>
  transformInbound(message, {
    keys: [ours.encryption],
    validator: new AnchorValidator([theirs.ca.certificate]),
  });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'domsec-bc-'));
  [ours, theirs, bc] = await Promise.all([
    generateDomainPki('example.net', { algo: 'ec-p256' }),
    generateDomainPki('example.org', { algo: 'ec-p256' }),
    bouncyCastle(dir),
  ]);
  certPath = join(dir, 'example.net-encryption.pem');
  await writeFile(certPath, certificatePem(ours.encryption.certificate));
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('Bouncy Castle encrypts by ECDH to our key identifier, ours decrypts', () => {
  test('Bouncy Castle is the one Debian ships', () => {
    assert.match(bc.version, /^1\.\d+/);
  });

  test('the recipient is named by rKeyId: our subjectKeyIdentifier, not issuer and serial', async () => {
    const der = await bc.encrypt('gcm', certPath, CONTENT);
    const ski = ours.encryption.certificate.subjectKeyId!;
    // rKeyId [0] { subjectKeyIdentifier OCTET STRING }
    const rKeyId = Buffer.concat([Buffer.from([0xa0, ski.length + 2, 0x04, ski.length]), ski]);
    assert.ok(der.includes(rKeyId), 'rKeyId with our subjectKeyIdentifier');
    assert.ok(!der.includes(ours.encryption.certificate.serial), 'no issuerAndSerialNumber');
  });

  test('AuthEnvelopedData, AES-256-GCM: decrypted byte-exact, no signature needed', async () => {
    const der = await bc.encrypt('gcm', certPath, CONTENT);
    const r = await inbound(smime(Buffer.from(OUTER), 'authEnveloped-data', der));
    sameBytes(ok(r), SENT);
    assert.deepEqual(r.report.actions, ['decrypted']);
    assert.equal(r.report.layers.length, 1);
    const layer = r.report.layers[0]!;
    assert.equal(layer.kind, 'auth-enveloped');
    assert.equal(layer.algorithm, OID.aes256Gcm);
    assert.equal(layer.keyEncryption, OID.dhSinglePassStdDhSha256Kdf);
    assert.equal(layer.recipient?.fingerprint, ours.encryption.certificate.fingerprint);
  });

  test('EnvelopedData, AES-128-CBC, signed inside by example.org: decrypted and verified', async () => {
    // AES-CBC content is delivered only under a signature bound to its
    // author: example.org's gateway signs (ours, sign-only), BC encrypts.
    const signed = ok(
      await transformOutbound(SENT, {
        signer: { ...theirs.signing, chain: [] },
        recipients: [],
        options: { sign: true, encrypt: false },
      }),
    );
    const { outer, entity } = split(signed);
    const der = await bc.encrypt('cbc', certPath, entity);
    const r = await inbound(smime(outer, 'enveloped-data', der));
    // What example.org's gateway sent: the entity it signed (its 8bit made
    // quoted-printable, as signing does) under the outer headers.
    const { signedContent } = splitSmime(entity);
    assert.match(signedContent!.toString('latin1'), /quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe/);
    sameBytes(ok(r), Buffer.concat([Buffer.from(`${OUTER}MIME-Version: 1.0\r\n`), signedContent!]));
    assert.deepEqual(r.report.actions, ['decrypted', 'verified']);
    assert.deepEqual(
      r.report.layers.map((l) => l.kind),
      ['enveloped', 'signed-detached'],
    );
    const layer = r.report.layers[0]!;
    assert.equal(layer.algorithm, OID.aes128Cbc);
    assert.equal(layer.keyEncryption, OID.dhSinglePassStdDhSha256Kdf);
    assert.equal(layer.recipient?.fingerprint, ours.encryption.certificate.fingerprint);
    const s = r.report.layers[1]!.signers![0]!;
    assert.equal(s.valid, true, s.failure?.message);
    assert.equal(s.chain?.trusted, true, s.chain?.reason);
    assert.equal(s.certificate?.fingerprint, theirs.signing.certificate.fingerprint);
  });
});
