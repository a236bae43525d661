// Weak signatures are not pass: SHA-1 and MD5, as the message digest or in
// the signature algorithm, are no longer accepted as proof of anything
// (RFC 8551 2.1, the CA/B Forum S/MIME Baseline Requirements). A signature
// made with them by a valid, trusted, bound signer verifies to
// `smime=policy (weak algorithm: sha1)`: distinct, documented, not pass.
// Signed by us (SHA-1) and by OpenSSL (SHA-1, MD5), through the gateway.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { certificatePem, keyPem } from '../../src/pki/keygen.js';
import { transformOutbound } from '../../src/smime/outbound.js';
import type { TestMilter } from '../helpers/milter.js';
import { cmsSign } from '../helpers/openssl.js';
import {
  addedResults,
  OUTSIDE,
  replyOf,
  type SecurityPki,
  securityPki,
  send,
  startUs,
} from '../helpers/security-fixture.js';

const MESSAGE =
  'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: old client\r\n';
const BODY = 'Content-Type: text/plain\r\n\r\nSigned with an old digest.\r\n';

let pki: SecurityPki;
let milter: TestMilter;
/** The same gateway, example.org required to sign. */
let strict: TestMilter;
let org: { certPath: string; keyPath: string };

before(async () => {
  pki = await securityPki();
  [milter, strict] = await Promise.all([
    startUs(pki),
    startUs(pki, { DOMSEC_INBOUND_REQUIRE_SIGNED: 'example.org' }),
  ]);
  org = { certPath: join(pki.dir, 'org-sign.crt'), keyPath: join(pki.dir, 'org-sign.key') };
  await writeFile(org.certPath, certificatePem(pki.org.signing.certificate));
  await writeFile(org.keyPath, keyPem(pki.org.signing.privateKey), { mode: 0o600 });
});

after(async () => {
  await milter?.close();
  await strict?.close();
  await pki?.cleanup();
});

async function resultOf(
  message: Buffer,
  gateway: TestMilter = milter,
): Promise<{ reply: string | undefined; ar: string }> {
  const o = await send(gateway, message, {
    from: '<alice@example.org>',
    rcpts: ['<bob@example.net>'],
    address: OUTSIDE,
  });
  return { reply: replyOf(o.decision), ar: addedResults(o)[0] ?? '' };
}

/** OpenSSL's multipart/signed of BODY behind our headers. */
async function signedByOpenssl(md: string): Promise<Buffer> {
  const signed = await cmsSign(Buffer.from(BODY), org, { md, crlfEol: true });
  return Buffer.concat([Buffer.from(MESSAGE), signed]);
}

describe('weak signatures are not pass', () => {
  it('control: SHA-256 by OpenSSL is smime=pass', async () => {
    const { reply, ar } = await resultOf(await signedByOpenssl('sha256'));
    assert.equal(reply, 'accept');
    assert.match(ar, /smime=pass/);
  });

  for (const md of ['sha1', 'md5']) {
    it(`${md.toUpperCase()} by OpenSSL: smime=policy (weak algorithm), and a required sender's mail is not accepted as signed`, async () => {
      const message = await signedByOpenssl(md);
      const { reply, ar } = await resultOf(message);
      assert.equal(reply, 'accept');
      assert.match(ar, new RegExp(`smime=policy\\s+\\(weak algorithm: ${md}\\)`));
      const required = await resultOf(message, strict);
      assert.match(
        required.reply ?? '',
        /^451 4\.7\.1 unprotected: mail from example\.org must be signed/,
      );
    });
  }

  it('SHA-1 by our own signer (digest sha1): smime=policy (weak algorithm: sha1)', async () => {
    const r = await transformOutbound(Buffer.from(`${MESSAGE}\r\nHello.\r\n`), {
      signer: {
        certificate: pki.org.signing.certificate,
        chain: [pki.org.ca.certificate],
        privateKey: pki.org.signing.privateKey,
      },
      recipients: [],
      options: { sign: true, encrypt: false, digest: 'sha1' },
    });
    assert.ok(r.ok);
    const { ar } = await resultOf(r.message);
    assert.match(ar, /smime=policy\s+\(weak algorithm: sha1\)/);
  });
});
