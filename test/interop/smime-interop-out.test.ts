// Interop matrix of issue 3, ours -> theirs: transformOutbound produces, the
// real `openssl cms` and GnuPG's gpgsm verify and decrypt. Expected bytes come
// from the tools' own MIME splitting (test/helpers), never from src/mime.
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadCertificatesPem } from '../../src/cms/certificate.js';
import { OID } from '../../src/cms/oids.js';
import { AnchorValidator } from '../../src/pki/anchor-validator.js';
import { transformInbound } from '../../src/smime/inbound.js';
import { transformOutbound } from '../../src/smime/outbound.js';
import type {
  OutboundOptions,
  PartnerCertificate,
  TransformResult,
} from '../../src/smime/types.js';
import { Gpgsm, splitSmime } from '../helpers/gpgsm.js';
import { cmsDecrypt, cmsPrint, cmsVerify, smimeToDer } from '../helpers/openssl.js';
import { createDomainPki, createTestCa, type TestCa, type TestLeaf } from '../helpers/pki.js';

const BODY = 'Grüße aus Köln, café für alle.\r\nFrom the gateway, with love\r\n.\r\nEnd.\r\n';
const ENTITY_HEADERS =
  'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n';
const MESSAGE = Buffer.from(
  'From: Alice <alice@a.example>\r\nTo: Bob <bob@b.example>\r\nSubject: interop\r\n' +
    `Message-ID: <interop-out@a.example>\r\nMIME-Version: 1.0\r\n${ENTITY_HEADERS}\r\n${BODY}`,
  'utf8',
);
/** What encryption alone must carry: the Content-* headers and the body, unchanged. */
const PLAIN_ENTITY = Buffer.from(`${ENTITY_HEADERS}\r\n${BODY}`, 'utf8');

type Pki = Awaited<ReturnType<typeof createDomainPki>>;
let dir = '';
let ca: TestCa;
let a: Pki; // our domain, RSA signer
let b: Pki; // RSA partner
let ec: Pki; // EC P-256 partner (ECDSA signer, ECDH recipient)
let pssKey: TestLeaf;
let edKey: TestLeaf;
/** The signed entity (first part of our multipart/signed): deterministic for MESSAGE. */
let SIGNED: Buffer;

const cert = (leaf: TestLeaf) => loadCertificatesPem(leaf.certPem)[0]!;
const identity = (leaf: TestLeaf) => ({
  certificate: cert(leaf),
  chain: loadCertificatesPem(leaf.chainPem).slice(1),
  privateKey: createPrivateKey(leaf.keyPem),
});
const partner = (leaf: TestLeaf, capabilities?: string[]): PartnerCertificate => ({
  certificate: cert(leaf),
  ...(capabilities ? { capabilities } : {}),
});
const ok = (r: TransformResult): Buffer => {
  assert.ok(r.ok, r.ok ? '' : `${r.error.code}: ${r.error.message}`);
  return r.message;
};
const outbound = (
  opts: Partial<OutboundOptions>,
  recipients: PartnerCertificate[] = [],
  signer: TestLeaf = a.signing,
) =>
  transformOutbound(MESSAGE, {
    signer: identity(signer),
    recipients,
    options: { sign: true, encrypt: false, ...opts },
  });
/** Unfolded header block of a message or entity. */
const head = (msg: Buffer) =>
  msg
    .subarray(0, msg.indexOf('\r\n\r\n'))
    .toString('latin1')
    .replace(/\r\n[ \t]+/g, ' ');
const verifyOk = async (msg: Buffer, expected: Buffer) => {
  const r = await cmsVerify(msg, { caFile: ca.certPath });
  assert.ok(r.ok, r.stderr);
  assert.ok(r.content.equals(expected), `content differs:\n${r.content.toString('latin1')}`);
};
/** A quoted-printable decoder of our own (the test must not lean on src/mime). */
const qpDecode = (text: string) =>
  Buffer.from(
    text
      .replace(/=\r\n/g, '')
      .replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
    'latin1',
  );

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'domsec-iop-out-'));
  ca = await createTestCa(dir, 'Interop Out Root');
  [a, b, ec, pssKey, edKey] = await Promise.all([
    createDomainPki(dir, 'a.example', 'rsa-2048', ca),
    createDomainPki(dir, 'b.example', 'rsa-2048', ca),
    createDomainPki(dir, 'ec.example', 'ec-p256', ca),
    ca.issue({ commonName: 'pss signer a.example', algo: 'rsa-pss', purpose: 'signing' }),
    ca.issue({ commonName: 'ed25519 signer a.example', algo: 'ed25519', purpose: 'signing' }),
  ]);
  SIGNED = splitSmime(ok(await outbound({}))).signedContent!;
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('ours signs, openssl verifies', () => {
  test('detached domain signature: verifies, content is the 7-bit signed entity, signatureType=domain', async () => {
    const msg = ok(await outbound({}));
    assert.match(
      head(msg),
      /Content-Type: multipart\/signed; protocol="application\/pkcs7-signature"; micalg=sha-256;/,
    );
    assert.match(head(msg), /^From: Alice <alice@a\.example>\r\nTo: Bob/);
    const signed = splitSmime(msg).signedContent!;
    assert.ok(signed.equals(SIGNED), 'the signed entity is deterministic');
    await verifyOk(msg, signed);
    // Transport-proof: 7-bit, no line an MTA would alter; it still decodes to the 8-bit body.
    assert.ok(![...signed].some((c) => c > 0x7e), 'signed entity is 7-bit');
    assert.doesNotMatch(signed.toString('latin1'), /^(From |\.)/m);
    assert.match(head(signed), /Content-Type: text\/plain; charset=utf-8/);
    assert.match(head(signed), /Content-Transfer-Encoding: quoted-printable/);
    const body = signed.subarray(signed.indexOf('\r\n\r\n') + 4).toString('latin1');
    assert.equal(qpDecode(body).toString('utf8'), BODY);
    const print = await cmsPrint(await smimeToDer(msg));
    assert.match(
      print,
      /object: id-smime-aa-signatureType \(1\.2\.840\.113549\.1\.9\.16\.2\.28\)\s+set:\s+OBJECT:\S* \(1\.2\.840\.113549\.1\.9\.16\.9\.2\)\n\n/,
    );
    assert.match(print, /sha256WithRSAEncryption|rsaEncryption/);
    // A changed signed part must fail in openssl, or the checks above prove nothing.
    const altered = Buffer.from(msg.toString('latin1').replace('Gr=C3=BC', 'Gr=C3=B6'), 'latin1');
    assert.notDeepEqual(altered, msg);
    assert.equal((await cmsVerify(altered, { caFile: ca.certPath })).ok, false);
  });

  test('opaque signed-data: verifies, eContent is the signed entity', async () => {
    const msg = ok(await outbound({ signatureFormat: 'opaque' }));
    assert.match(head(msg), /Content-Type: application\/pkcs7-mime; smime-type=signed-data/);
    await verifyOk(msg, SIGNED);
  });

  test('signer algorithms: RSA-PSS option, RSA-PSS key, ECDSA P-256 verify in openssl', async () => {
    const cases: [string, Partial<OutboundOptions>, TestLeaf, RegExp][] = [
      ['rsaPss option', { rsaPss: true }, a.signing, /algorithm: rsassaPss/],
      ['RSA-PSS key', {}, pssKey, /algorithm: rsassaPss/],
      ['ECDSA P-256', {}, ec.signing, /algorithm: ecdsa-with-SHA256/],
    ];
    for (const [name, opts, signer, alg] of cases) {
      const msg = ok(await outbound(opts, [], signer));
      assert.match(await cmsPrint(await smimeToDer(msg)), alg, name);
      await verifyOk(msg, SIGNED);
    }
  });

  test('Ed25519 signer: verified by our own inbound only (OpenSSL 3.0 and gpgsm 2.2 cannot)', async () => {
    const msg = ok(await outbound({}, [], edKey));
    assert.match(head(msg), /micalg=sha-512;/); // RFC 8419: Ed25519 with SHA-512
    assert.match(await cmsPrint(await smimeToDer(msg)), /algorithm: ED25519/);
    // The tool limit, asserted so that a newer OpenSSL that can verify shows up here.
    const tool = await cmsVerify(msg, { caFile: ca.certPath });
    assert.equal(tool.ok, false);
    assert.match(tool.stderr, /eddsa_digest_signverify_init:invalid digest/);
    const ctx = { keys: [], validator: new AnchorValidator(loadCertificatesPem(ca.certPem)) };
    const r = await transformInbound(msg, ctx);
    ok(r);
    const s = r.report.layers[0]?.signers?.[0];
    assert.equal(s?.valid, true, s?.failure?.message);
    assert.equal(s?.signatureAlgorithm, OID.ed25519);
    assert.equal(s?.digestAlgorithm, OID.sha512);
    assert.deepEqual(s?.signatureTypes, ['domain']);
    assert.equal(s?.chain?.trusted, true, s?.chain?.reason);
    const altered = Buffer.from(msg.toString('latin1').replace('Gr=C3=BC', 'Gr=C3=B6'), 'latin1');
    const bad = await transformInbound(altered, ctx);
    assert.equal(bad.report.layers[0]?.signers?.[0]?.valid, false);
  });
});

describe('ours encrypts, openssl decrypts', () => {
  // [name, recipient, capabilities, cipher, key transport, smime-type, openssl print]
  type Case = [string, () => TestLeaf, string[] | undefined, string, string, string, RegExp[]];
  const cases: Case[] = [
    [
      'RSA v1.5 + AES-256-CBC',
      () => b.encryption,
      undefined,
      'aes-256-cbc',
      'rsa-pkcs1',
      'enveloped-data',
      [/algorithm: rsaEncryption/, /algorithm: aes-256-cbc/],
    ],
    [
      'RSA-OAEP + AES-256-CBC',
      () => b.encryption,
      [OID.rsaesOaep],
      'aes-256-cbc',
      'rsa-oaep',
      'enveloped-data',
      [/algorithm: rsaesOaep/, /algorithm: aes-256-cbc/],
    ],
    [
      'RSA v1.5 + AES-256-GCM',
      () => b.encryption,
      [OID.aes256Gcm],
      'aes-256-gcm',
      'rsa-pkcs1',
      'authEnveloped-data',
      [/id-smime-ct-authEnvelopedData/, /algorithm: aes-256-gcm/],
    ],
    [
      'ECDH P-256 + AES-256-CBC',
      () => ec.encryption,
      undefined,
      'aes-256-cbc',
      'ecdh',
      'enveloped-data',
      [/dhSinglePass-stdDH-sha\d+kdf-scheme/, /algorithm: aes-256-cbc/],
    ],
    [
      'ECDH P-256 + AES-256-GCM',
      () => ec.encryption,
      [OID.aes256Gcm],
      'aes-256-gcm',
      'ecdh',
      'authEnveloped-data',
      [/dhSinglePass-stdDH-sha\d+kdf-scheme/, /algorithm: aes-256-gcm/],
    ],
  ];
  for (const [name, recipient, caps, cipher, transport, smimeType, prints] of cases) {
    test(`${name}: encrypt-only decrypts byte-exact; sign+encrypt decrypts and the inner signature verifies`, async () => {
      const recip = recipient();
      const only = await outbound({ sign: false, encrypt: true }, [partner(recip, caps)]);
      const enc = ok(only);
      assert.equal(only.report.cipher, cipher);
      assert.equal(only.report.keyTransport, transport);
      assert.match(head(enc), new RegExp(`application/pkcs7-mime; smime-type=${smimeType};`));
      const print = await cmsPrint(await smimeToDer(enc));
      for (const p of prints) assert.match(print, p);
      const plain = await cmsDecrypt(enc, recip);
      assert.ok(plain.ok, plain.stderr);
      assert.ok(plain.content.equals(PLAIN_ENTITY), plain.content.toString('utf8'));

      const both = ok(await outbound({ encrypt: true }, [partner(recip, caps)]));
      const inner = await cmsDecrypt(both, recip);
      assert.ok(inner.ok, inner.stderr);
      assert.match(head(inner.content), /^Content-Type: multipart\/signed; protocol=/);
      await verifyOk(inner.content, SIGNED);
      // Encrypted to b, not to a: openssl must refuse with a's key.
      const wrong = await cmsDecrypt(both, recip === ec.encryption ? b.encryption : a.encryption);
      assert.equal(wrong.ok, false);
    });
  }
});

describe('ours <-> gpgsm', () => {
  let gpg: Gpgsm;
  before(async () => {
    gpg = await Gpgsm.create(dir, [ca.certPath]);
    await gpg.importKey(b.encryption);
  });
  after(async () => {
    await gpg?.close();
  });

  test('gpgsm verifies our detached and opaque domain signatures', async () => {
    const detached = await gpg.verify(ok(await outbound({})));
    assert.ok(detached.ok, detached.status + detached.stderr);
    assert.deepEqual(detached.signers, [a.signing.fingerprintSha1]);
    const opaque = await gpg.verify(ok(await outbound({ signatureFormat: 'opaque' })));
    assert.ok(opaque.ok, opaque.status + opaque.stderr);
    assert.ok(opaque.content.equals(SIGNED));
    // Sanity: a tampered signed part is refused by gpgsm.
    const msg = ok(await outbound({}));
    const bad = Buffer.from(msg.toString('latin1').replace('Gr=C3=BC', 'Gr=C3=B6'), 'latin1');
    assert.equal((await gpg.verify(bad)).ok, false);
  });

  test('gpgsm decrypts our AES-256-CBC + RSA v1.5 byte-exact, and verifies the inner signature', async () => {
    const only = await gpg.decrypt(
      ok(await outbound({ sign: false, encrypt: true }, [partner(b.encryption)])),
    );
    assert.ok(only.ok, only.status + only.stderr);
    assert.ok(only.content.equals(PLAIN_ENTITY), only.content.toString('utf8'));
    const both = await gpg.decrypt(ok(await outbound({ encrypt: true }, [partner(b.encryption)])));
    assert.ok(both.ok, both.status + both.stderr);
    const v = await gpg.verify(both.content);
    assert.ok(v.ok, v.status + v.stderr);
    assert.deepEqual(v.signers, [a.signing.fingerprintSha1]);
    assert.ok(splitSmime(both.content).signedContent?.equals(SIGNED));
  });
});
