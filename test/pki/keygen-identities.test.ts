import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { IdentityError, loadIdentities } from '../../src/pki/identities.js';
import {
  certificatePem,
  type DomainPki,
  generateDomainPki,
  issueCertificate,
  keyPem,
} from '../../src/pki/keygen.js';

const run = promisify(execFile);

describe('keygen', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'domsec-keygen-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const algo of ['rsa-2048', 'ec-p256', 'ed25519'] as const) {
    test(`${algo}: a CA, a signing and an encryption certificate OpenSSL accepts`, async () => {
      const pki = await generateDomainPki('example.org', {
        algo,
        ocspUrl: 'http://127.0.0.1:1/ocsp',
      });
      const ca = join(dir, `${algo}-ca.pem`);
      const signing = join(dir, `${algo}-sign.pem`);
      await writeFile(ca, certificatePem(pki.ca.certificate));
      await writeFile(signing, certificatePem(pki.signing.certificate));
      const { stdout } = await run('openssl', [
        'verify',
        '-CAfile',
        ca,
        '-purpose',
        'smimesign',
        signing,
      ]);
      assert.match(stdout, /: OK/);
      assert.deepEqual(pki.signing.certificate.rfc822Names, [
        'domain-signing-authority@example.org',
      ]);
      assert.deepEqual(pki.encryption.certificate.rfc822Names, [
        'domain-confidentiality-authority@example.org',
      ]);
      assert.deepEqual(pki.encryption.certificate.dnsNames, ['example.org']);
      const text = (await run('openssl', ['x509', '-in', signing, '-noout', '-text'])).stdout;
      assert.match(text, /Key Usage: critical\s+Digital Signature, Non Repudiation/);
      assert.match(text, /E-mail Protection/);
      assert.match(text, /OCSP - URI:http:\/\/127.0.0.1:1\/ocsp/);
      const encType = pki.encryption.certificate.publicKey.asymmetricKeyType;
      assert.equal(
        encType,
        algo === 'rsa-2048' ? 'rsa' : 'ec',
        'Ed25519 cannot encrypt: EC P-256 instead',
      );
    });
  }
});

describe('domain identities from DOMSEC_KEYS_DIR', () => {
  let dir: string;
  let pki: DomainPki;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'domsec-ids-'));
    pki = await generateDomainPki('example.org', { algo: 'ec-p256' });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function put(base: string, key: string, cert: string, mode = 0o600) {
    await writeFile(join(dir, `${base}.key.pem`), key);
    await chmod(join(dir, `${base}.key.pem`), mode);
    await writeFile(join(dir, `${base}.crt.pem`), cert);
  }

  test('signing and encryption keys of one domain; chain appended to the certificate file', async () => {
    await put(
      'example.org.sign',
      keyPem(pki.signing.privateKey),
      certificatePem(pki.signing.certificate) + certificatePem(pki.ca.certificate),
    );
    await put(
      'example.org.encrypt',
      keyPem(pki.encryption.privateKey),
      certificatePem(pki.encryption.certificate),
    );
    const ids = await loadIdentities(dir, ['example.org', 'example.net']);
    assert.deepEqual([...ids.keys()], ['example.org']);
    const id = ids.get('example.org')!;
    assert.equal(id.keys.length, 2);
    assert.equal(id.signer?.certificate.fingerprint, pki.signing.certificate.fingerprint);
    assert.equal(id.signer?.chain.length, 1);
    assert.equal(id.decryptionKeys.length, 2);
  });

  test('rollover: the newest valid signing key signs, an expired one still decrypts', async () => {
    const old = await issueCertificate({
      commonName: 'old signing',
      publicKey: pki.signing.certificate.publicKey,
      issuer: { certificate: pki.ca.certificate, privateKey: pki.ca.privateKey },
      keyUsage: ['digitalSignature'],
      notBefore: new Date(Date.now() - 20 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    await put('example.org.old', keyPem(pki.signing.privateKey), certificatePem(old));
    const id = (await loadIdentities(dir, ['example.org'])).get('example.org')!;
    assert.equal(id.keys.length, 3);
    assert.equal(id.signer?.certificate.fingerprint, pki.signing.certificate.fingerprint);
    assert.equal(id.decryptionKeys.length, 3);
  });

  test('a key file readable by others is refused with a one-line reason', async () => {
    await put(
      'example.org.loose',
      keyPem(pki.signing.privateKey),
      certificatePem(pki.signing.certificate),
      0o644,
    );
    await assert.rejects(loadIdentities(dir, ['example.org']), (err: unknown) => {
      assert.ok(err instanceof IdentityError);
      assert.match(err.message, /grants group or others access \(mode 644\): chmod 600 it/);
      return true;
    });
    await rm(join(dir, 'example.org.loose.key.pem'));
  });

  test('a key that does not match its certificate is refused', async () => {
    await put(
      'example.org.wrong',
      keyPem(pki.encryption.privateKey),
      certificatePem(pki.signing.certificate),
    );
    await assert.rejects(loadIdentities(dir, ['example.org']), /does not match the certificate/);
    await rm(join(dir, 'example.org.wrong.key.pem'));
  });
});
