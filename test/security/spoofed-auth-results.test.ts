// Spoofed Authentication-Results (RFC 8601 5): a result that claims our
// authserv-id but arrived from outside is a forgery and must be removed before
// ours is added, however it is spelled (case, comments, folding, quoting);
// results of other authserv-ids are left alone. At the milter protocol level
// with the real gateway application, mail from outside to our recipient.
// Through real Postfix and Sendmail, the plain forgery is also removed in
// test/e2e/gateway.test.ts and test/e2e/sendmail-gateway.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { headerValue, splitMessage } from '../../src/mime/index.js';
import { applyEdits } from '../helpers/gateway-app.js';
import type { TestMilter } from '../helpers/milter.js';
import {
  AUTHSERV_ID,
  OUTSIDE,
  protectedByOrg,
  replyOf,
  type SecurityPki,
  securityPki,
  send,
  startUs,
} from '../helpers/security-fixture.js';

let pki: SecurityPki;
let milter: TestMilter;

before(async () => {
  pki = await securityPki();
  milter = await startUs(pki);
});

after(async () => {
  await milter?.close();
  await pki?.cleanup();
});

/** Forgeries claiming to be mx.example.net, as header field lines (name included, CRLF folding). */
const SPOOFED: Record<string, string> = {
  exact: `Authentication-Results: ${AUTHSERV_ID}; smime=pass`,
  'upper case': 'Authentication-Results: MX.EXAMPLE.NET; smime=pass',
  'mixed case': 'Authentication-Results: Mx.Example.Net; smime=pass',
  'field name in lower case': `authentication-results: ${AUTHSERV_ID}; smime=pass`,
  'no space after the semicolon': `Authentication-Results: ${AUTHSERV_ID};smime=pass`,
  'comment before the id': `Authentication-Results: (checked) ${AUTHSERV_ID}; smime=pass`,
  'comment after the id': `Authentication-Results: ${AUTHSERV_ID} (checked); smime=pass`,
  'comment without space': `Authentication-Results: (x)${AUTHSERV_ID}; smime=pass`,
  'nested comment before the id': `Authentication-Results: (a (b) c) ${AUTHSERV_ID}; smime=pass`,
  'comment with a semicolon before the id': `Authentication-Results: (a; b) ${AUTHSERV_ID}; smime=pass`,
  'comment with an escaped parenthesis': `Authentication-Results: (a \\) b) ${AUTHSERV_ID}; smime=pass`,
  'version after the id': `Authentication-Results: ${AUTHSERV_ID} 1; smime=pass`,
  'folded before the id': `Authentication-Results:\r\n\t${AUTHSERV_ID};\r\n\tsmime=pass`,
  'folded after the id': `Authentication-Results: ${AUTHSERV_ID}\r\n ; smime=pass\r\n  body.smime-identifier=ceo@example.org`,
  'quoted-string id': `Authentication-Results: "${AUTHSERV_ID}"; smime=pass`,
  'no result': `Authentication-Results: ${AUTHSERV_ID}; none`,
};

/** Results of other authserv-ids: not ours to judge, kept as they came. */
const KEPT: Record<string, string> = {
  'another host': 'Authentication-Results: mx.example.com; smime=pass',
  'our domain, not our id':
    'Authentication-Results: example.net; spf=pass smtp.mailfrom=example.org',
  'our id as a prefix': `Authentication-Results: ${AUTHSERV_ID}.evil.example; smime=pass`,
  'our id as a suffix': `Authentication-Results: evil-${AUTHSERV_ID}; smime=pass`,
  'our id only in a comment': `Authentication-Results: (${AUTHSERV_ID}) relay.example.com; spf=pass`,
  'our id only in a property': `Authentication-Results: relay.example.com; dkim=pass header.d=${AUTHSERV_ID}`,
};

const BASE =
  'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: results\r\nMessage-ID: <ar@example.org>\r\n';

function withFields(fields: string[], body = 'Hello Bob\r\n'): Buffer {
  return Buffer.from(`${fields.map((f) => `${f}\r\n`).join('')}${BASE}\r\n${body}`, 'latin1');
}

/** The Authentication-Results values of the message the MTA delivers, unfolded. */
async function deliveredResults(message: Buffer): Promise<string[]> {
  const o = await send(milter, message, {
    from: '<alice@example.org>',
    rcpts: ['<bob@example.net>'],
    address: OUTSIDE,
  });
  assert.equal(o.decision?.type, 'accept', replyOf(o.decision));
  return splitMessage(applyEdits(message, o.edits))
    .headers.filter((h) => h.name.toLowerCase() === 'authentication-results')
    .map((h) => headerValue(h).replace(/\r?\n/g, '').trim());
}

/** Mallory writes her own outer header: the results only inside the protected copy. */
function withoutOuterResults(message: Buffer): Buffer {
  const { headers, body } = splitMessage(message);
  const kept = headers.filter((h) => h.name.toLowerCase() !== 'authentication-results');
  return Buffer.concat([
    ...kept.flatMap((h) => [h.raw, Buffer.from('\r\n')]),
    Buffer.from('\r\n'),
    body,
  ]);
}

const unfolded = (field: string): string =>
  field
    .slice(field.indexOf(':') + 1)
    .replace(/\r\n/g, '')
    .trim();

describe('spoofed Authentication-Results claiming our authserv-id are removed', () => {
  for (const [variant, field] of Object.entries(SPOOFED)) {
    it(`removed: ${variant}`, async () => {
      const results = await deliveredResults(withFields([field]));
      assert.equal(results.length, 1, `only ours: ${results.join(' | ')}`);
      assert.match(results[0]!, /^mx\.example\.net;\s*smime=none$/);
    });
  }

  it('all at once, among results of other hosts: every forgery removed, every other result kept in order', async () => {
    const fields = [...Object.values(SPOOFED), ...Object.values(KEPT)];
    const results = await deliveredResults(withFields(fields));
    assert.deepEqual(results.slice(1), Object.values(KEPT).map(unfolded));
    assert.match(results[0]!, /^mx\.example\.net;\s*smime=none$/);
  });

  for (const [variant, field] of Object.entries(KEPT)) {
    it(`kept: ${variant}`, async () => {
      const results = await deliveredResults(withFields([field]));
      assert.deepEqual(results.slice(1), [unfolded(field)]);
    });
  }

  it('a forged result inside an encrypted, header-protected message is removed too', async () => {
    // Mallory encrypts to our public certificate a whole message (message/rfc822;
    // forwarded=no) whose protected header carries the forgery: after decryption
    // those headers become the real ones (RFC 8551 3.1).
    const inner = withFields([SPOOFED['exact']!, SPOOFED['upper case']!]);
    const encrypted = withoutOuterResults(
      // AES-GCM: unsigned CBC content would not be delivered decrypted at all.
      await protectedByOrg(pki, inner, {
        sign: false,
        headerProtection: true,
        cipher: 'aes-256-gcm',
      }),
    );
    assert.ok(!encrypted.includes('smime=pass'), 'the forgery is not visible outside');
    const results = await deliveredResults(encrypted);
    assert.equal(results.length, 1, `only ours: ${results.join(' | ')}`);
    assert.match(results[0]!, /^mx\.example\.net;\s*smime=none$/);
  });

  it('a forged result inside a signed, header-protected message (valid signature) is removed too', async () => {
    const inner = withFields([SPOOFED['comment before the id']!, KEPT['another host']!]);
    const signed = withoutOuterResults(
      await protectedByOrg(pki, inner, { encrypt: false, headerProtection: true }),
    );
    const results = await deliveredResults(signed);
    assert.equal(results.length, 2, results.join(' | '));
    assert.match(results[0]!, /^mx\.example\.net;\s*smime=pass/);
    assert.equal(results[1], unfolded(KEPT['another host']!));
  });
});
