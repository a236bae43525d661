import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { OID } from '../../src/cms/oids.js';
import {
  decodeTransferEncoding,
  findHeader,
  headerValue,
  parseEntity,
  splitMessage,
} from '../../src/mime/index.js';
import { AnchorValidator } from '../../src/pki/anchor-validator.js';
import { type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { transformInbound } from '../../src/smime/inbound.js';
import { transformOutbound } from '../../src/smime/outbound.js';
import type {
  InboundContext,
  OutboundContext,
  OutboundOptions,
  TransformResult,
} from '../../src/smime/types.js';

const MESSAGE = Buffer.from(
  'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: Quarterly figures\r\n' +
    'Message-ID: <q1@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n' +
    'Content-Transfer-Encoding: 8bit\r\n\r\nRevenue grew by 12 %. Caf\xc3\xa9 au lait for everyone.\r\n.\r\nFrom here on\r\n',
  'latin1',
);

function ok(r: TransformResult): Buffer {
  assert.ok(r.ok, r.ok ? '' : `${r.error.code}: ${r.error.message}`);
  return r.message;
}

function header(message: Buffer, name: string): string | undefined {
  const f = findHeader(splitMessage(message).headers, name);
  return f ? headerValue(f) : undefined;
}

describe('S/MIME transform', () => {
  let org: DomainPki;
  let net: DomainPki;
  let outbound: (opts: Partial<OutboundOptions>, caps?: string[]) => OutboundContext;
  let inbound: InboundContext;
  before(async () => {
    [org, net] = await Promise.all([
      generateDomainPki('example.org'),
      generateDomainPki('example.net', { algo: 'ec-p256' }),
    ]);
    outbound = (opts, caps) => ({
      signer: {
        certificate: org.signing.certificate,
        chain: [org.ca.certificate],
        privateKey: org.signing.privateKey,
      },
      recipients: [
        { certificate: net.encryption.certificate, ...(caps ? { capabilities: caps } : {}) },
      ],
      options: { sign: true, encrypt: true, ...opts },
    });
    inbound = {
      keys: [{ certificate: net.encryption.certificate, privateKey: net.encryption.privateKey }],
      validator: new AnchorValidator([org.ca.certificate]),
    };
  });

  test('sign and encrypt, then decrypt and verify: the content survives, outer headers stay', async () => {
    const out = await transformOutbound(MESSAGE, outbound({}));
    const protectedMessage = ok(out);
    assert.deepEqual(out.report.actions, ['signed', 'encrypted']);
    assert.equal(out.report.cipher, 'aes-256-cbc');
    assert.match(
      header(protectedMessage, 'content-type') ?? '',
      /^application\/pkcs7-mime; smime-type=enveloped-data/,
    );
    assert.equal(header(protectedMessage, 'subject'), 'Quarterly figures');
    assert.equal(protectedMessage.indexOf(Buffer.from('Revenue')), -1, 'no clear text left');
    const back = await transformInbound(protectedMessage, inbound);
    const plain = ok(back);
    assert.deepEqual(back.report.actions, ['decrypted', 'verified']);
    const signed = back.report.layers[1]!;
    assert.equal(signed.signers?.[0]?.valid, true);
    assert.deepEqual(signed.signers?.[0]?.signatureTypes, ['domain']);
    assert.equal(signed.signers?.[0]?.chain?.trusted, true);
    assert.equal(header(plain, 'subject'), 'Quarterly figures');
    assert.equal(header(plain, 'content-type'), 'text/plain; charset=utf-8');
    // The 8-bit body was made 7-bit before signing (quoted-printable); it decodes to the same text.
    const entity = parseEntity(plain);
    assert.equal(
      decodeTransferEncoding(entity.body, entity.transferEncoding).toString('latin1'),
      splitMessage(MESSAGE).body.toString('latin1'),
    );
    assert.equal(header(plain, 'content-transfer-encoding'), 'quoted-printable');
    assert.match(splitMessage(plain).body.toString('latin1'), /Caf=C3=A9 au lait/);
  });

  test('signing only: multipart/signed with sha-256, the signed part is 7-bit, verification passes', async () => {
    const signed = ok(await transformOutbound(MESSAGE, outbound({ encrypt: false })));
    const ct = header(signed, 'content-type') ?? '';
    assert.match(
      ct,
      /^multipart\/signed; protocol="application\/pkcs7-signature"; micalg=sha-256; boundary=/,
    );
    assert.ok(
      ![...splitMessage(signed).body].some((b) => b > 0x7e),
      'the whole signed message is 7-bit',
    );
    const v = await transformInbound(signed, inbound);
    assert.equal(v.report.layers[0]?.signers?.[0]?.valid, true);
  });

  test('opaque signing, GCM when the partner announced it, triple wrapping', async () => {
    const opaque = ok(
      await transformOutbound(MESSAGE, outbound({ encrypt: false, signatureFormat: 'opaque' })),
    );
    assert.match(header(opaque, 'content-type') ?? '', /smime-type=signed-data/);
    assert.equal((await transformInbound(opaque, inbound)).report.layers[0]?.kind, 'signed-opaque');
    const gcm = await transformOutbound(MESSAGE, outbound({}, [OID.aes256Gcm, OID.aes256Cbc]));
    assert.equal(gcm.report.cipher, 'aes-256-gcm');
    assert.match(header(ok(gcm), 'content-type') ?? '', /smime-type=authEnveloped-data/);
    assert.equal(
      (await transformInbound(ok(gcm), inbound)).report.layers[0]?.kind,
      'auth-enveloped',
    );
    const triple = ok(await transformOutbound(MESSAGE, outbound({ tripleWrap: true })));
    const t = await transformInbound(triple, inbound);
    assert.deepEqual(
      t.report.layers.map((l) => l.kind),
      ['signed-detached', 'enveloped', 'signed-detached'],
    );
    assert.ok(t.report.layers.every((l) => l.kind === 'enveloped' || l.signers?.[0]?.valid));
  });

  test('already encrypted mail is left alone; already signed mail is wrapped or signed in parallel', async () => {
    const encrypted = ok(await transformOutbound(MESSAGE, outbound({})));
    const again = await transformOutbound(encrypted, outbound({}));
    assert.ok(ok(again).equals(encrypted));
    assert.deepEqual(again.report.notes, ['already encrypted: left as it is']);
    const userSigned = ok(await transformOutbound(MESSAGE, outbound({ encrypt: false })));
    const wrapped = await transformOutbound(userSigned, outbound({ encrypt: false }));
    assert.deepEqual(wrapped.report.actions, ['signed (encapsulating the originator signature)']);
    const w = await transformInbound(ok(wrapped), inbound);
    assert.deepEqual(
      w.report.layers.map((l) => l.signers?.[0]?.valid),
      [true, true],
    );
    const parallel = await transformOutbound(
      userSigned,
      outbound({ encrypt: false, alreadySigned: 'parallel' }),
    );
    const p = await transformInbound(ok(parallel), inbound);
    assert.equal(p.report.layers.length, 1);
    assert.equal(p.report.layers[0]?.signers?.length, 2);
  });

  test('header protection: the whole message travels inside, the outer Subject is hidden', async () => {
    const hp = ok(await transformOutbound(MESSAGE, outbound({ headerProtection: true })));
    assert.equal(header(hp, 'subject'), '[...]');
    // In transit a relay adds a trace field; the receiving side restores the real headers.
    const relayed = Buffer.concat([
      Buffer.from('Received: from relay.example by mx.example.net\r\n'),
      hp,
    ]);
    const r = await transformInbound(relayed, inbound);
    const back = ok(r);
    assert.ok(r.report.actions.includes('headers-restored'));
    assert.equal(header(back, 'subject'), 'Quarterly figures');
    assert.equal(header(back, 'received'), 'from relay.example by mx.example.net');
    assert.equal(header(back, 'content-type'), 'text/plain; charset=utf-8');
    assert.equal(
      splitMessage(back).headers.filter((h) => h.name.toLowerCase() === 'subject').length,
      1,
    );
    assert.match(splitMessage(back).body.toString('latin1'), /Caf=C3=A9 au lait/);
  });

  test('a forwarded message (message/rfc822 without forwarded=no) is not unwrapped', async () => {
    const forward = Buffer.from(
      'From: a@example.org\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\nFrom: x@example.com\r\nSubject: inner\r\n\r\nhi\r\n',
    );
    const signed = ok(await transformOutbound(forward, outbound({ encrypt: false })));
    const back = ok(await transformInbound(signed, inbound));
    assert.equal(header(back, 'subject'), 'Fwd');
    assert.equal(header(back, 'content-type'), 'message/rfc822');
  });

  test('policy that cannot be met is a typed failure, never an exception', async () => {
    const noSigner = await transformOutbound(MESSAGE, { ...outbound({}), signer: undefined });
    assert.equal(!noSigner.ok && noSigner.error.code, 'no-signer');
    const noCert = await transformOutbound(MESSAGE, { ...outbound({}), recipients: [] });
    assert.equal(!noCert.ok && noCert.error.code, 'no-recipient-certificate');
    const notForUs = await transformInbound(ok(await transformOutbound(MESSAGE, outbound({}))), {
      keys: [{ certificate: org.encryption.certificate, privateKey: org.encryption.privateKey }],
    });
    assert.equal(!notForUs.ok && notForUs.error.code, 'not-encrypted-to-us');
    const garbage = await transformInbound(
      Buffer.from('this is not a header\r\n\r\nbody'),
      inbound,
    );
    assert.equal(!garbage.ok && garbage.error.code, 'malformed-mime');
    let deep = 'Content-Type: text/plain\r\n\r\nleaf\r\n';
    for (let i = 0; i < 1000; i++)
      deep = `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n${deep}\r\n--b${i}--\r\n`;
    // Outbound it is signed and encrypted as bytes; inbound, once decrypted and
    // verified, the sender's MIME is not parsed: it is delivered as written.
    const deepMessage = ok(
      await transformOutbound(Buffer.from(`From: a@example.org\r\n${deep}`), outbound({})),
    );
    const deepInside = await transformInbound(deepMessage, inbound);
    assert.ok(deepInside.ok, deepInside.ok ? '' : deepInside.error.message);
    assert.ok(deepInside.message.includes('--b999--'), 'the 1000 levels as they were');
  });

  test('a tampered signed message verifies as failed, with the reason in the report', async () => {
    const signed = ok(await transformOutbound(MESSAGE, outbound({ encrypt: false })));
    const tampered = Buffer.from(
      signed.toString('latin1').replace('Revenue grew by 12', 'Revenue grew by 92'),
      'latin1',
    );
    const v = await transformInbound(tampered, inbound);
    assert.equal(v.ok, true);
    assert.equal(v.report.layers[0]?.signers?.[0]?.failure?.code, 'digest-mismatch');
  });

  test('plain inbound mail is passed unchanged with nothing in the report', async () => {
    const r = await transformInbound(MESSAGE, inbound);
    assert.ok(ok(r).equals(MESSAGE));
    assert.deepEqual(r.report.layers, []);
  });
});
