// Real mail through, unchanged: S/MIME parses only its own layers. The
// sender's MIME under them is delivered as written, however defective;
// outbound, defective user MIME is still protected where it can be, and
// refused permanently (never a tempfail that cannot pass) where it cannot;
// a signed layer's content is unwrapped by its content type.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { createCompressedData } from '../../src/cms/compressed.js';
import { OID } from '../../src/cms/oids.js';
import { createSignedData, type SigningIdentity } from '../../src/cms/sign.js';
import { encodeBase64Lines, splitMessage } from '../../src/mime/index.js';
import { AnchorValidator } from '../../src/pki/anchor-validator.js';
import { type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { transformInbound } from '../../src/smime/inbound.js';
import { transformOutbound } from '../../src/smime/outbound.js';
import type { InboundContext, TransformResult } from '../../src/smime/types.js';
import { verdictOf } from '../../src/smime/verdict.js';
import { runMessage, startGatewayMilter } from '../helpers/gateway-app.js';

let org: DomainPki;
let net: DomainPki;
let signer: SigningIdentity;
let inbound: InboundContext;

const HEAD =
  'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: odd\r\nMIME-Version: 1.0\r\n';

/** Defective MIME as real mailers write it (the cases the real-mail corpus found). */
const DEFECTIVE: Record<string, string> = {
  'a multipart whose body has no boundary delimiter':
    'Content-Type: multipart/mixed; boundary="gone"\r\n\r\nThe parts were lost on the way.\r\n',
  'a multipart/alternative without a boundary parameter':
    'Content-Type: multipart/alternative\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n',
  'a part whose header has a line without a colon':
    'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\nthis line has no colon\r\n\r\nbody\r\n--b--\r\n',
  'a multipart/report whose boundary parameter is cut off':
    'Content-Type: multipart/report; report-type=delivery-status; boundary="\r\n\r\n--abc\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n--abc--\r\n',
  'a nested multipart missing its closing delimiter':
    'Content-Type: multipart/mixed; boundary="o"\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary="i"\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\ntext\r\n--o--\r\n',
};

before(async () => {
  [org, net] = await Promise.all([
    generateDomainPki('example.org'),
    generateDomainPki('example.net'),
  ]);
  signer = {
    certificate: org.signing.certificate,
    chain: [org.ca.certificate],
    privateKey: org.signing.privateKey,
  };
  inbound = {
    keys: [{ certificate: net.encryption.certificate, privateKey: net.encryption.privateKey }],
    validator: new AnchorValidator([org.ca.certificate]),
  };
});

const ok = (r: TransformResult): Buffer => {
  assert.ok(r.ok, r.ok ? '' : `${r.error.code}: ${r.error.message}`);
  return r.message;
};

/** The part of a message from its Content-Type on: what the sender wrote as the entity. */
const entityOf = (m: Buffer): string => {
  const text = m.toString('latin1');
  return text.slice(text.indexOf('Content-Type:'));
};

describe('inbound: the sender content under S/MIME is opaque', () => {
  for (const [name, entity] of Object.entries(DEFECTIVE)) {
    test(`${name}: signed and encrypted, then decrypted, verified (pass) and delivered as written`, async () => {
      const sent = Buffer.from(`${HEAD}${entity}`, 'latin1');
      const wire = ok(
        await transformOutbound(sent, {
          signer,
          recipients: [{ certificate: net.encryption.certificate }],
          options: { sign: true, encrypt: true },
        }),
      );
      const r = await transformInbound(wire, inbound);
      const got = ok(r);
      assert.deepEqual(r.report.actions, ['decrypted', 'verified']);
      assert.equal(verdictOf(r.report).result, 'pass');
      assert.equal(entityOf(got), entityOf(sent));
      assert.equal(
        splitMessage(got)
          .headers.find((h) => h.name === 'Subject')
          ?.raw.toString(),
        'Subject: odd',
      );
    });
  }
});

describe('outbound: defective user MIME is protected where it can be, refused for good where not', () => {
  const eightBit = Buffer.from(
    `${HEAD}Content-Type: multipart/report; boundary="\r\nContent-Transfer-Encoding: 8bit\r\n\r\n--abc\r\nZustellung f\u00fcr M\u00fcller fehlgeschlagen.\r\n--abc--\r\n`,
    'latin1',
  );

  test('8-bit content in defective MIME, signed and encrypted: protected as its bytes (and read back exactly)', async () => {
    const r = await transformOutbound(eightBit, {
      signer,
      recipients: [{ certificate: net.encryption.certificate }],
      options: { sign: true, encrypt: true },
    });
    const wire = ok(r);
    assert.ok(
      r.report.notes.some((n) => /defective MIME .*signed as it is/.test(n)),
      r.report.notes.join('; '),
    );
    const back = ok(await transformInbound(wire, inbound));
    assert.equal(entityOf(back), entityOf(eightBit));
  });

  test('8-bit content in defective MIME, signed in the clear: a permanent malformed-mime failure with the reason', async () => {
    const r = await transformOutbound(eightBit, {
      signer,
      recipients: [],
      options: { sign: true, encrypt: false },
    });
    assert.equal(r.ok, false);
    assert.equal(r.ok ? '' : r.error.code, 'malformed-mime');
    assert.match(r.ok ? '' : r.error.message, /cannot be signed in the clear without altering it/);
  });
});

describe('a signed layer is unwrapped by its content type', () => {
  const pkcs7 = (der: Buffer) =>
    Buffer.concat([
      Buffer.from(
        `${HEAD}Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n`,
      ),
      encodeBase64Lines(der),
    ]);

  test('opaque SignedData whose eContentType is id-ct-compressedData: verified, then decompressed', async () => {
    const entity = Buffer.from('Content-Type: text/plain\r\n\r\nCompressed, then signed.\r\n');
    const signed = await createSignedData(createCompressedData(entity), signer, {
      detached: false,
      contentType: OID.compressedData,
    });
    const r = await transformInbound(pkcs7(signed), inbound);
    const got = ok(r);
    assert.deepEqual(r.report.actions, ['verified', 'decompressed']);
    assert.equal(verdictOf(r.report).result, 'pass');
    assert.match(
      got.toString('latin1'),
      /Content-Type: text\/plain\r\n\r\nCompressed, then signed\.\r\n$/,
    );
  });

  test('an unknown eContentType: a clear unsupported result, not raw DER as text', async () => {
    const signed = await createSignedData(Buffer.from('not MIME'), signer, {
      detached: false,
      contentType: '1.2.840.113549.1.9.16.1.2', // id-ct-authData
    });
    const r = await transformInbound(pkcs7(signed), inbound);
    assert.equal(r.ok, false);
    assert.equal(r.ok ? '' : r.error.code, 'unsupported');
    assert.match(
      r.ok ? '' : r.error.message,
      /protected content of type 1\.2\.840\.113549\.1\.9\.16\.1\.2 is not MIME/,
    );
  });
});

describe('the gateway: content that cannot be protected is refused for good, not held', () => {
  test('8-bit content in defective MIME, signed in the clear (no partner certificate): 550, not 451, even under DOMSEC_ON_ERROR=tempfail', async () => {
    const milter = await startGatewayMilter('example.org', org, { DOMSEC_ON_ERROR: 'tempfail' });
    try {
      const o = await runMessage(
        milter,
        Buffer.from(
          `${HEAD}Content-Type: multipart/report; boundary="\r\nContent-Transfer-Encoding: 8bit\r\n\r\n--abc\r\nM\u00fcller\r\n--abc--\r\n`,
          'latin1',
        ),
        { from: '<alice@example.org>', rcpts: ['<bob@example.net>'], address: '127.0.0.1' },
      );
      const d = o.decision;
      assert.equal(d?.type, 'replyCode');
      assert.match(
        d?.type === 'replyCode' ? `${d.code} ${d.xcode} ${String(d.text)}` : '',
        /^550 5\.7\.1 internal-error: 8-bit content in defective MIME .* cannot be signed in the clear/,
      );
    } finally {
      await milter.close();
    }
  });
});
