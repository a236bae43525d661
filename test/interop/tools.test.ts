// Proves the interop helpers against each other (openssl <-> openssl <-> gpgsm)
// without any code of ours, so a later interop failure points at our code.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Gpgsm, splitSmime } from '../helpers/gpgsm.js';
import {
  cmsDecrypt,
  cmsEncrypt,
  cmsPrint,
  cmsSign,
  cmsVerify,
  opensslVersion,
  runTool,
  runToolOk,
  smimeToDer,
} from '../helpers/openssl.js';
import { createDomainPki, type TestLeaf, x509Text } from '../helpers/pki.js';

const CONTENT = Buffer.from(
  'Content-Type: text/plain; charset=us-ascii\r\n\r\nHello from the interop tests.\r\nSecond line.\r\n',
);
const DAY = 86_400_000;

type Pki = Awaited<ReturnType<typeof createDomainPki>>;
let dir = '';
let a: Pki; // a.example: RSA, owns the shared root
let b: Pki; // b.example: RSA, same root
let ec: Pki; // ec.example: ECDSA P-256 with its own root
let gpg: Gpgsm;

const head = (msg: Buffer) => msg.subarray(0, msg.indexOf('\n\n') + 1).toString('latin1');
const tamper = (msg: Buffer) =>
  Buffer.from(msg.toString('latin1').replace('Hello', 'Jello'), 'latin1');

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'domsec-interop-'));
  a = await createDomainPki(dir, 'a.example');
  [b, ec] = await Promise.all([
    createDomainPki(dir, 'b.example', 'rsa-2048', a.ca),
    createDomainPki(dir, 'ec.example', 'ec-p256'),
  ]);
  gpg = await Gpgsm.create(dir, [a.ca.certPath]);
});

after(async () => {
  await gpg?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('pki', () => {
  test('openssl is version 3', async () => {
    assert.match(await opensslVersion(), /^OpenSSL 3\./);
  });

  test('domain signing certificate follows RFC 3183 naming', async () => {
    const text = await x509Text(a.signing.certPath);
    assert.match(text, /email:domain-signing-authority@a\.example, DNS:a\.example/);
    assert.match(text, /Key Usage: critical\s+Digital Signature, Non Repudiation\n/);
    assert.match(text, /Extended Key Usage:\s+E-mail Protection\n/);
    assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /Subject Key Identifier/);
    assert.match(text, /Authority Key Identifier/);
    assert.match(a.signing.serialHex, /^[0-9A-F]{32,}$/);
    assert.notEqual(a.signing.serialHex, a.encryption.serialHex);
    assert.match(a.signing.keyPem, /^-----BEGIN PRIVATE KEY-----/);
    assert.equal(a.signing.subject, 'CN=Domain signing authority a.example,O=domsec test');
  });

  test('domain encryption certificates use keyEncipherment (RSA) / keyAgreement (EC)', async () => {
    const rsa = await x509Text(a.encryption.certPath);
    assert.match(rsa, /email:domain-confidentiality-authority@a\.example, DNS:a\.example/);
    assert.match(rsa, /Key Usage: critical\s+Key Encipherment\n/);
    assert.match(rsa, /E-mail Protection/);
    const ecText = await x509Text(ec.encryption.certPath);
    assert.match(ecText, /Key Usage: critical\s+Key Agreement\n/);
    assert.match(ecText, /ASN1 OID: prime256v1/);
  });

  test('CA certificate is a critical CA:TRUE with keyCertSign and cRLSign', async () => {
    const text = await x509Text(a.ca.certPath);
    assert.match(text, /Basic Constraints: critical\s+CA:TRUE/);
    assert.match(text, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
    assert.equal(a.ca.rootCertPath, a.ca.certPath);
  });

  test('explicit validity dates are honoured', async () => {
    const leaf = await a.ca.issue({
      commonName: 'dated',
      notBefore: new Date('2024-01-02T03:04:05Z'),
      notAfter: new Date('2025-06-07T08:09:10Z'),
    });
    const text = await x509Text(leaf.certPath);
    assert.match(text, /Not Before: Jan {2}2 03:04:05 2024 GMT/);
    assert.match(text, /Not After : Jun {2}7 08:09:10 2025 GMT/);
  });

  test('legacy and modern PKCS#12 differ in their PBE', async () => {
    const info = async (legacy: boolean) => {
      const p12 = await a.signing.p12Path('pw', legacy);
      const args = ['pkcs12', '-info', '-noout', '-in', p12, '-passin', 'pass:pw'];
      return (await runToolOk('openssl', [...args, '-legacy'])).stderr;
    };
    assert.match(await info(true), /pbeWithSHA1And40BitRC2-CBC|pbeWithSHA1And3-KeyTripleDES-CBC/);
    assert.match(await info(false), /PBES2/);
  });

  test('revoked certificates show up in the CRL', async () => {
    const leaf = await a.ca.issue({ commonName: 'to be revoked', purpose: 'signing' });
    await a.ca.revoke(leaf.certPath);
    const crl = await a.ca.crl();
    assert.match(crl.pem, /BEGIN X509 CRL/);
    const args = ['verify', '-crl_check', '-CRLfile', crl.path, '-CAfile', a.ca.certPath];
    const revoked = await runTool('openssl', [...args, leaf.certPath]);
    assert.notEqual(revoked.code, 0);
    assert.match(revoked.stdout.toString() + revoked.stderr, /certificate revoked/);
    assert.equal((await runTool('openssl', [...args, a.signing.certPath])).code, 0);
  });
});

describe('openssl signs, openssl verifies', () => {
  const verifyA = (msg: Buffer) => cmsVerify(msg, { caFile: a.ca.certPath });

  test('detached multipart/signed', async () => {
    const msg = await cmsSign(CONTENT, a.signing);
    assert.match(head(msg), /multipart\/signed; protocol="application\/pkcs7-signature"/);
    const r = await verifyA(msg);
    assert.ok(r.ok, r.stderr);
    assert.deepEqual(r.content, CONTENT);
    const tampered = await verifyA(tamper(msg));
    assert.equal(tampered.ok, false);
    assert.match(tampered.stderr, /verification failure/i);
  });

  test('opaque signed-data, -stream gives BER indefinite length', async () => {
    const msg = await cmsSign(CONTENT, a.signing, { detached: false, stream: true });
    assert.match(head(msg), /application\/pkcs7-mime; smime-type=signed-data/);
    // Decode the body ourselves: smimeToDer re-encodes with definite lengths.
    const raw = splitSmime(msg).cms;
    assert.equal(raw[1], 0x80, 'outer ContentInfo should use indefinite length');
    assert.equal((await smimeToDer(msg))[1], 0x82, 'openssl -cmsout re-encodes definite');
    const r = await verifyA(msg);
    assert.ok(r.ok, r.stderr);
    assert.deepEqual(r.content, CONTENT);
  });

  test('legacy openssl smime uses x-pkcs7 names and verifies', async () => {
    const msg = await cmsSign(CONTENT, a.signing, { legacySmime: true });
    assert.match(head(msg), /protocol="application\/x-pkcs7-signature"/);
    const r = await verifyA(msg);
    assert.ok(r.ok, r.stderr);
    assert.deepEqual(r.content, CONTENT);
  });

  test('RSA-PSS, ECDSA and Ed25519 signers', async () => {
    const pss = await cmsSign(CONTENT, a.signing, { keyopt: ['rsa_padding_mode:pss'] });
    assert.match(await cmsPrint(await smimeToDer(pss)), /rsassaPss/);
    assert.ok((await verifyA(pss)).ok);
    const ecMsg = await cmsSign(CONTENT, ec.signing, { crlfEol: true });
    assert.ok(!ecMsg.includes('\n\n'), 'crlfEol should leave no bare LF framing');
    assert.match(await cmsPrint(await smimeToDer(ecMsg)), /ecdsa-with-SHA256/);
    assert.ok((await cmsVerify(ecMsg, { caFile: ec.ca.certPath })).ok);
    assert.equal((await verifyA(ecMsg)).ok, false, 'wrong trust anchor must fail');
    const pssKey = await a.ca.issue({ commonName: 'pss key', algo: 'rsa-pss' });
    assert.match(await x509Text(pssKey.certPath), /Public Key Algorithm: rsassaPss/);
    const pssKeyMsg = await cmsSign(CONTENT, pssKey);
    assert.match(await cmsPrint(await smimeToDer(pssKeyMsg)), /rsassaPss/);
    assert.ok((await verifyA(pssKeyMsg)).ok);
    // Ed25519 certificates can be made, but OpenSSL 3.0 cannot sign CMS with them.
    const ed = await a.ca.issue({ commonName: 'ed signer', algo: 'ed25519' });
    assert.match(await x509Text(ed.certPath), /Public Key Algorithm: ED25519/);
    await assert.rejects(cmsSign(CONTENT, ed), /no default digest/);
  });

  test('intermediate CA: chainPath carries the intermediate', async () => {
    const sub = await a.ca.issueIntermediate('Interop Sub CA');
    const leaf = await sub.issue({ commonName: 'sub leaf', rfc822Names: ['x@a.example'] });
    assert.equal(leaf.chainPem, leaf.certPem + sub.certPem);
    const withChain = await cmsSign(CONTENT, leaf);
    assert.ok((await verifyA(withChain)).ok);
    const bare = await cmsSign(CONTENT, { certPath: leaf.certPath, keyPath: leaf.keyPath });
    assert.equal((await verifyA(bare)).ok, false, 'no intermediate, no chain');
  });

  test('expired signer and wrong EKU fail verification', async () => {
    const now = Date.now();
    const expired = await a.ca.issue({
      commonName: 'expired',
      notBefore: new Date(now - 400 * DAY),
      notAfter: new Date(now - 30 * DAY),
    });
    const r = await verifyA(await cmsSign(CONTENT, expired));
    assert.equal(r.ok, false);
    assert.match(r.stderr, /certificate has expired/);
    const noEku = await a.ca.issue({ commonName: 'tls only', ekuEmailProtection: false });
    const msg = await cmsSign(CONTENT, noEku);
    const bad = await verifyA(msg);
    assert.equal(bad.ok, false);
    assert.match(bad.stderr, /unsuitable certificate purpose/);
    assert.ok((await cmsVerify(msg, { caFile: a.ca.certPath, noVerify: true })).ok);
  });
});

describe('openssl encrypts, openssl decrypts', () => {
  const roundTrip = async (recip: TestLeaf, opts: Parameters<typeof cmsEncrypt>[2]) => {
    const msg = await cmsEncrypt(CONTENT, [recip.certPath], opts);
    const r = await cmsDecrypt(msg, recip);
    assert.ok(r.ok, r.stderr);
    assert.deepEqual(r.content, CONTENT);
    return { msg, print: await cmsPrint(await smimeToDer(msg)) };
  };

  test('AES-256-CBC with RSA v1.5 key transport', async () => {
    const { msg, print } = await roundTrip(b.encryption, {});
    assert.match(head(msg), /application\/pkcs7-mime; smime-type=enveloped-data/);
    assert.match(print, /aes-256-cbc/);
    assert.match(print, /rsaEncryption/);
    const wrong = await cmsDecrypt(msg, a.encryption);
    assert.equal(wrong.ok, false);
    assert.equal(wrong.content.length, 0);
  });

  test('RSA-OAEP', async () => {
    const { print } = await roundTrip(b.encryption, { oaep: true, cipher: 'aes-128-cbc' });
    assert.match(print, /rsaesOaep/);
    assert.match(print, /aes-128-cbc/);
  });

  test('AES-GCM gives AuthEnvelopedData', async () => {
    for (const cipher of ['aes-128-gcm', '-aes-256-gcm']) {
      const { msg, print } = await roundTrip(b.encryption, { cipher, stream: true });
      assert.match(head(msg), /smime-type=authEnveloped-data/);
      assert.match(print, /id-smime-ct-authEnvelopedData/);
      assert.match(print, cipher.includes('128') ? /aes-128-gcm/ : /aes-256-gcm/);
    }
  });

  test('ECDH recipient, several recipients, legacy smime', async () => {
    const { print } = await roundTrip(ec.encryption, {});
    assert.match(print, /dhSinglePass-stdDH-sha256kdf-scheme|originatorKey/);
    const two = await cmsEncrypt(CONTENT, [a.encryption.certPath, b.encryption.certPath], {
      oaep: true,
    });
    for (const r of [a.encryption, b.encryption]) {
      assert.deepEqual((await cmsDecrypt(two, r)).content, CONTENT);
    }
    const { msg } = await roundTrip(b.encryption, { legacySmime: true });
    assert.match(head(msg), /application\/x-pkcs7-mime/);
  });
});

describe('openssl <-> gpgsm', () => {
  test('openssl signs detached, gpgsm verifies', async () => {
    // LF framing (openssl default), x-pkcs7 names, and CRLF framing.
    for (const opts of [{}, { legacySmime: true }, { crlfEol: true }]) {
      const msg = await cmsSign(CONTENT, a.signing, opts);
      const r = await gpg.verify(msg);
      assert.ok(r.ok, r.status + r.stderr);
      assert.deepEqual(r.signers, [a.signing.fingerprintSha1]);
      const bad = await gpg.verify(tamper(msg));
      assert.equal(bad.ok, false);
      assert.match(bad.status, /BADSIG/);
    }
  });

  test('openssl signs opaque -stream, gpgsm verifies and returns the content', async () => {
    const msg = await cmsSign(CONTENT, b.signing, { detached: false, stream: true });
    const r = await gpg.verify(msg);
    assert.ok(r.ok, r.status + r.stderr);
    assert.deepEqual(r.signers, [b.signing.fingerprintSha1]);
    assert.deepEqual(r.content, CONTENT);
  });

  test('gpgsm rejects untrusted roots and expired signers', async () => {
    // Import the root so the failure is about trust, not a missing issuer.
    await gpg.importCert(ec.ca.certPath);
    const untrusted = await gpg.verify(await cmsSign(CONTENT, ec.signing));
    assert.equal(untrusted.ok, false);
    assert.match(untrusted.status, /GOODSIG[\s\S]*TRUST_UNDEFINED/);
    assert.match(untrusted.stderr, /root certificate is not marked trusted/);
    const now = Date.now();
    const expired = await a.ca.issue({
      commonName: 'expired for gpgsm',
      notBefore: new Date(now - 400 * DAY),
      notAfter: new Date(now - 30 * DAY),
    });
    const old = await gpg.verify(await cmsSign(CONTENT, expired));
    assert.equal(old.ok, false);
    assert.match(old.status, /EXPKEYSIG/);
  });

  test('gpgsm signs, openssl verifies', async () => {
    const detached = await gpg.sign(CONTENT, a.signing);
    assert.match(head(Buffer.from(detached.toString().replace(/\r\n/g, '\n'))), /micalg=sha-256/);
    const r = await cmsVerify(detached, { caFile: a.ca.certPath });
    assert.ok(r.ok, r.stderr);
    assert.deepEqual(r.content, CONTENT);
    assert.equal((await cmsVerify(tamper(detached), { caFile: a.ca.certPath })).ok, false);
    const opaque = await gpg.sign(CONTENT, a.signing.fingerprintSha1, false);
    const o = await cmsVerify(opaque, { caFile: a.ca.certPath });
    assert.ok(o.ok, o.stderr);
    assert.deepEqual(o.content, CONTENT);
  });

  test('openssl encrypts AES-256-CBC, gpgsm decrypts', async () => {
    await gpg.importKey(b.encryption);
    const msg = await cmsEncrypt(CONTENT, [b.encryption.certPath]);
    const r = await gpg.decrypt(msg);
    assert.ok(r.ok, r.status);
    assert.deepEqual(r.content, CONTENT);
    const notForUs = await gpg.decrypt(await cmsEncrypt(CONTENT, [a.encryption.certPath]));
    assert.equal(notForUs.ok, false);
  });

  test('gpgsm encrypts, openssl decrypts', async () => {
    const msg = await gpg.encrypt(CONTENT, b.encryption.certPath, { cipher: 'AES256' });
    assert.match(head(Buffer.from(msg.toString().replace(/\r\n/g, '\n'))), /enveloped-data/);
    assert.match(await cmsPrint(await smimeToDer(msg)), /aes-256-cbc/);
    const r = await cmsDecrypt(msg, b.encryption);
    assert.ok(r.ok, r.stderr);
    assert.deepEqual(r.content, CONTENT);
  });
});
