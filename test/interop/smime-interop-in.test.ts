// Interop matrix of issue 3, theirs -> ours: the real `openssl cms`/`openssl
// smime` and GnuPG's gpgsm sign and encrypt, transformInbound verifies and
// decrypts with our keys and an AnchorValidator of the test CA.
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
import type { InboundContext, LayerKind, TransformResult } from '../../src/smime/types.js';
import { Gpgsm, splitSmime } from '../helpers/gpgsm.js';
import { cmsEncrypt, cmsSign, type EncryptOptions, type SignOptions } from '../helpers/openssl.js';
import { createDomainPki, createTestCa, type TestCa, type TestLeaf } from '../helpers/pki.js';

/** The entity the partner protects: 8-bit UTF-8, a "From " line and a "." line, CRLF. */
const CONTENT = Buffer.from(
  'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n' +
    'Grüße aus Köln, café für alle.\r\nFrom the partner, with love\r\n.\r\nEnd.\r\n',
  'utf8',
);
const OUTER =
  'From: Pat <pat@partner.example>\r\nTo: Otto <otto@ours.example>\r\nSubject: interop in\r\n';
/** What every successful unwrap must give: the outer headers, MIME-Version, the entity as sent. */
const EXPECTED = Buffer.concat([Buffer.from(`${OUTER}MIME-Version: 1.0\r\n`), CONTENT]);
const DAY = 86_400_000;

type Pki = Awaited<ReturnType<typeof createDomainPki>>;
let dir = '';
let ca: TestCa;
let ours: Pki; // our domain: RSA encryption key
let partner: Pki; // the sending domain, RSA
let ecKey: TestLeaf; // our EC P-256 encryption key (ECDH)
let pssKey: TestLeaf; // partner signer with an RSASSA-PSS key
let ecSigner: TestLeaf; // partner ECDSA P-256 signer
let ctx: InboundContext;

const cert = (leaf: TestLeaf) => loadCertificatesPem(leaf.certPem)[0]!;
/** The tool's message behind our outer headers, in its first line's line-end style. */
const deliver = (toolMessage: Buffer) => {
  const lf = toolMessage[toolMessage.indexOf('\n') - 1] !== 0x0d;
  return Buffer.concat([Buffer.from(lf ? OUTER.replace(/\r\n/g, '\n') : OUTER), toolMessage]);
};
const crlf = (b: Buffer) => Buffer.from(b.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
const ok = (r: TransformResult): Buffer => {
  assert.ok(r.ok, r.ok ? '' : `${r.error.code}: ${r.error.message}`);
  return r.message;
};
const inbound = (toolMessage: Buffer) => transformInbound(deliver(toolMessage), ctx);
const sameBytes = (got: Buffer, want: Buffer) =>
  assert.ok(got.equals(want), `got:\n${got.toString('latin1')}\nwant:\n${want.toString('latin1')}`);

/** One signed layer, its signer valid and trusted, the content as sent. */
function assertSigned(r: TransformResult, kind: LayerKind, signer: TestLeaf) {
  sameBytes(ok(r), EXPECTED);
  assert.equal(r.report.layers.length, 1);
  const layer = r.report.layers[0]!;
  assert.equal(layer.kind, kind);
  assert.equal(layer.signers?.length, 1);
  const s = layer.signers![0]!;
  assert.equal(s.valid, true, s.failure?.message);
  assert.equal(s.chain?.trusted, true, s.chain?.reason);
  assert.equal(s.certificate?.fingerprint, cert(signer).fingerprint);
  return s;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'domsec-iop-in-'));
  ca = await createTestCa(dir, 'Interop In Root');
  [ours, partner, ecKey, pssKey, ecSigner] = await Promise.all([
    createDomainPki(dir, 'ours.example', 'rsa-2048', ca),
    createDomainPki(dir, 'partner.example', 'rsa-2048', ca),
    ca.issue({ commonName: 'ours ec', algo: 'ec-p256', purpose: 'encryption' }),
    ca.issue({ commonName: 'partner pss', algo: 'rsa-pss', purpose: 'signing' }),
    ca.issue({ commonName: 'partner ecdsa', algo: 'ec-p256', purpose: 'signing' }),
  ]);
  ctx = {
    keys: [ours.encryption, ecKey].map((k) => ({
      certificate: cert(k),
      privateKey: createPrivateKey(k.keyPem),
    })),
    validator: new AnchorValidator(loadCertificatesPem(ca.certPem)),
  };
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('openssl signs, ours verifies', () => {
  // [name, cmsSign options, signer, layer kind, signatureAlgorithm, header check]
  type Case = [string, SignOptions, () => TestLeaf, LayerKind, string, RegExp];
  const cases: Case[] = [
    [
      'cms -sign detached, CRLF framing',
      { crlfEol: true },
      () => partner.signing,
      'signed-detached',
      OID.rsaEncryption,
      /protocol="application\/pkcs7-signature"/,
    ],
    [
      'cms -sign detached, LF framing',
      {},
      () => partner.signing,
      'signed-detached',
      OID.rsaEncryption,
      /protocol="application\/pkcs7-signature"/,
    ],
    [
      'cms -sign -nodetach (opaque)',
      { detached: false },
      () => partner.signing,
      'signed-opaque',
      OID.rsaEncryption,
      /application\/pkcs7-mime; smime-type=signed-data/,
    ],
    [
      'cms -sign -nodetach -stream (BER)',
      { detached: false, stream: true },
      () => partner.signing,
      'signed-opaque',
      OID.rsaEncryption,
      /application\/pkcs7-mime; smime-type=signed-data/,
    ],
    [
      'smime -sign detached (x-pkcs7)',
      { legacySmime: true },
      () => partner.signing,
      'signed-detached',
      OID.rsaEncryption,
      /protocol="application\/x-pkcs7-signature"/,
    ],
    [
      'smime -sign -nodetach (x-pkcs7-mime)',
      { legacySmime: true, detached: false },
      () => partner.signing,
      'signed-opaque',
      OID.rsaEncryption,
      /application\/x-pkcs7-mime/,
    ],
    [
      'cms -sign RSA-PSS padding',
      { keyopt: ['rsa_padding_mode:pss'] },
      () => partner.signing,
      'signed-detached',
      OID.rsassaPss,
      /micalg="?sha-256/,
    ],
    [
      'cms -sign RSA-PSS key',
      { crlfEol: true },
      () => pssKey,
      'signed-detached',
      OID.rsassaPss,
      /micalg="?sha-256/,
    ],
    [
      'cms -sign ECDSA P-256',
      { crlfEol: true },
      () => ecSigner,
      'signed-detached',
      OID.ecdsaWithSha256,
      /micalg="?sha-256/,
    ],
  ];
  for (const [name, opts, signer, kind, sigAlg, headerCheck] of cases) {
    test(`${name}: valid, trusted, content as sent`, async () => {
      const leaf = signer();
      const msg = await cmsSign(CONTENT, leaf, opts);
      assert.match(msg.subarray(0, 300).toString('latin1'), headerCheck);
      if (opts.stream) assert.equal(splitSmime(msg).cms[1], 0x80, 'indefinite-length BER');
      if (!opts.crlfEol) assert.match(msg.toString('latin1'), /^MIME-Version: 1\.0\n/);
      const r = await inbound(msg);
      // openssl writes the content part as given (CRLF) even inside LF framing: exact bytes.
      const s = assertSigned(r, kind, leaf);
      assert.equal(s.signatureAlgorithm, sigAlg);
      assert.equal(s.digestAlgorithm, OID.sha256);
      assert.deepEqual(r.report.actions, ['verified']);
    });
  }

  test('cms -sign detached, then every CR lost (mailbox stored unix-style): still valid', async () => {
    const signed = await cmsSign(CONTENT, partner.signing); // content part is CRLF even here
    const msg = Buffer.from(signed.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    assert.ok(!msg.includes('\r'));
    const r = await inbound(msg);
    sameBytes(crlf(ok(r)), EXPECTED); // line ends are all that may differ
    const s = r.report.layers[0]?.signers?.[0];
    assert.equal(s?.valid, true, s?.failure?.message);
    assert.equal(s?.chain?.trusted, true, s?.chain?.reason);
  });
});

describe('openssl encrypts, ours decrypts', () => {
  // [name, cmsEncrypt options, recipient, layer kind, content encryption, key encryption]
  type Case = [string, EncryptOptions, () => TestLeaf, LayerKind, string, string];
  const cases: Case[] = [
    [
      'cms -encrypt -aes256, RSA v1.5',
      { cipher: 'aes256' },
      () => ours.encryption,
      'enveloped',
      OID.aes256Cbc,
      OID.rsaEncryption,
    ],
    [
      'cms -encrypt -aes-128-cbc -stream',
      { cipher: 'aes-128-cbc', stream: true },
      () => ours.encryption,
      'enveloped',
      OID.aes128Cbc,
      OID.rsaEncryption,
    ],
    [
      'cms -encrypt RSA-OAEP keyopt',
      { oaep: true },
      () => ours.encryption,
      'enveloped',
      OID.aes256Cbc,
      OID.rsaesOaep,
    ],
    [
      'cms -encrypt -aes-256-gcm (AuthEnvelopedData)',
      { cipher: 'aes-256-gcm' },
      () => ours.encryption,
      'auth-enveloped',
      OID.aes256Gcm,
      OID.rsaEncryption,
    ],
    [
      'cms -encrypt -aes-128-gcm -stream, OAEP',
      { cipher: 'aes-128-gcm', stream: true, oaep: true },
      () => ours.encryption,
      'auth-enveloped',
      OID.aes128Gcm,
      OID.rsaesOaep,
    ],
    [
      'cms -encrypt to EC P-256 (ECDH)',
      {},
      () => ecKey,
      'enveloped',
      OID.aes256Cbc,
      OID.dhSinglePassStdDhSha1Kdf,
    ],
    [
      'cms -encrypt -aes-256-gcm to EC P-256',
      { cipher: 'aes-256-gcm' },
      () => ecKey,
      'auth-enveloped',
      OID.aes256Gcm,
      OID.dhSinglePassStdDhSha1Kdf,
    ],
    [
      'smime -encrypt (x-pkcs7-mime)',
      { legacySmime: true },
      () => ours.encryption,
      'enveloped',
      OID.aes256Cbc,
      OID.rsaEncryption,
    ],
  ];
  for (const [name, opts, recipient, kind, contentAlg, keyAlg] of cases) {
    // AES-CBC content is delivered only under a bound signature (it has no
    // integrity of its own): the CBC cases encrypt what openssl signed first.
    const cbc = kind === 'enveloped';
    test(`${name}${cbc ? ', signed inside' : ''}: decrypted byte-exact`, async () => {
      const leaf = recipient();
      const inner = cbc ? await cmsSign(CONTENT, partner.signing) : CONTENT;
      const r = await inbound(await cmsEncrypt(inner, [leaf.certPath], opts));
      sameBytes(ok(r), EXPECTED);
      assert.deepEqual(r.report.actions, cbc ? ['decrypted', 'verified'] : ['decrypted']);
      const layer = r.report.layers[0]!;
      assert.equal(layer.kind, kind);
      assert.equal(layer.algorithm, contentAlg);
      assert.equal(layer.keyEncryption, keyAlg);
      assert.equal(layer.recipient?.fingerprint, cert(leaf).fingerprint);
    });
  }

  test('openssl signs then encrypts: both layers, signer valid and trusted', async () => {
    const signed = await cmsSign(CONTENT, partner.signing);
    const r = await inbound(await cmsEncrypt(signed, [ours.encryption.certPath], { oaep: true }));
    sameBytes(ok(r), EXPECTED);
    assert.deepEqual(r.report.actions, ['decrypted', 'verified']);
    assert.deepEqual(
      r.report.layers.map((l) => l.kind),
      ['enveloped', 'signed-detached'],
    );
    const s = r.report.layers[1]!.signers![0]!;
    assert.equal(s.valid, true, s.failure?.message);
    assert.equal(s.chain?.trusted, true, s.chain?.reason);
    assert.equal(s.certificate?.fingerprint, cert(partner.signing).fingerprint);
  });
});

describe('gpgsm signs and encrypts, ours verifies and decrypts', () => {
  let gpg: Gpgsm;
  before(async () => {
    gpg = await Gpgsm.create(dir, [ca.certPath]);
  });
  after(async () => {
    await gpg?.close();
  });

  test('gpgsm --detach-sign: valid, trusted, content as sent', async () => {
    const r = await inbound(await gpg.sign(CONTENT, partner.signing));
    assertSigned(r, 'signed-detached', partner.signing);
  });

  test('gpgsm --sign (opaque): valid, trusted, content as sent', async () => {
    const r = await inbound(await gpg.sign(CONTENT, partner.signing, false));
    assertSigned(r, 'signed-opaque', partner.signing);
  });

  test('unsigned AES-CBC from openssl and gpgsm decrypts, and is not delivered decrypted: nothing vouches for it', async () => {
    for (const msg of [
      await cmsEncrypt(CONTENT, [ours.encryption.certPath], {}),
      await gpg.encrypt(CONTENT, ours.encryption.certPath, {}),
    ]) {
      const r = await inbound(msg);
      assert.equal(r.ok, false);
      assert.equal(r.ok ? '' : r.error.code, 'unauthenticated-content');
      assert.equal(r.report.layers[0]?.kind, 'enveloped', 'it did decrypt');
    }
  });

  test('gpgsm --encrypt (AES-256 and default AES-128, RSA v1.5) of signed mail: decrypted byte-exact', async () => {
    for (const [cipher, oid] of [
      ['AES256', OID.aes256Cbc],
      [undefined, OID.aes128Cbc],
    ] as const) {
      const signed = await cmsSign(CONTENT, partner.signing);
      const msg = await gpg.encrypt(signed, ours.encryption.certPath, cipher ? { cipher } : {});
      const r = await inbound(msg);
      sameBytes(ok(r), EXPECTED);
      assert.deepEqual(r.report.actions, ['decrypted', 'verified']);
      assert.equal(r.report.layers[0]?.kind, 'enveloped');
      assert.equal(r.report.layers[0]?.algorithm, oid);
      assert.equal(r.report.layers[0]?.keyEncryption, OID.rsaEncryption);
    }
  });
});

describe('negative cases', () => {
  test('altered body of a detached and of an opaque signature: signer invalid, digest-mismatch', async () => {
    const detached = await cmsSign(CONTENT, partner.signing, { crlfEol: true });
    const altered = Buffer.from(detached.toString('latin1').replace('End.', 'Fin.'), 'latin1');
    assert.notDeepEqual(altered, detached);
    const d = await inbound(altered);
    const ds = d.report.layers[0]?.signers?.[0];
    assert.equal(ds?.valid, false);
    assert.equal(ds?.failure?.code, 'digest-mismatch');
    // Opaque: change the eContent inside the DER (same length), re-wrap it.
    const der = Buffer.from(
      splitSmime(await cmsSign(CONTENT, partner.signing, { detached: false })).cms,
    );
    const at = der.indexOf('End.');
    assert.ok(at > 0);
    der.write('Fin.', at, 'latin1');
    const b64 = (der.toString('base64').match(/.{1,64}/g) ?? []).join('\r\n');
    const opaque = Buffer.from(
      'MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data\r\n' +
        `Content-Transfer-Encoding: base64\r\n\r\n${b64}\r\n`,
    );
    const o = await inbound(opaque);
    const os = o.report.layers[0]?.signers?.[0];
    assert.equal(os?.valid, false);
    assert.equal(os?.failure?.code, 'digest-mismatch');
  });

  test('encrypted to another key: not-encrypted-to-us', async () => {
    const stranger = await ca.issue({ commonName: 'stranger', purpose: 'encryption' });
    const r = await inbound(await cmsEncrypt(CONTENT, [stranger.certPath]));
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.error.code, 'not-encrypted-to-us');
  });

  test('signer from an untrusted CA: signature valid, chain not trusted', async () => {
    const other = await createTestCa(dir, 'Untrusted Root');
    const leaf = await other.issue({ commonName: 'untrusted signer', purpose: 'signing' });
    const r = await inbound(await cmsSign(CONTENT, leaf, { crlfEol: true }));
    const s = r.report.layers[0]?.signers?.[0];
    assert.equal(s?.valid, true, s?.failure?.message);
    assert.equal(s?.chain?.trusted, false);
    assert.match(s?.chain?.reason ?? '', /no path to a trusted/);
  });

  test('expired signer certificate: chain not trusted, reason says expired', async () => {
    const now = Date.now();
    const expired = await ca.issue({
      commonName: 'expired signer',
      purpose: 'signing',
      notBefore: new Date(now - 400 * DAY),
      notAfter: new Date(now - 30 * DAY),
    });
    const r = await inbound(await cmsSign(CONTENT, expired, { crlfEol: true }));
    const s = r.report.layers[0]?.signers?.[0];
    assert.equal(s?.valid, true, s?.failure?.message);
    assert.equal(s?.chain?.trusted, false);
    assert.match(s?.chain?.reason ?? '', /expired/);
  });
});
