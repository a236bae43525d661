// Decryption oracle: an insider (or anyone who can relay through us) holding
// a ciphertext captured on its way to example.net must not get the gateway to
// decrypt it for them. Only mail from outside to our own recipients is
// decrypted (src/gateway/direction.ts). At the milter protocol level with the
// real gateway application; the same through real Postfix is in
// decryption-oracle-postfix.test.ts. The direction rule itself is unit-tested in
// test/gateway/direction.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestMilter } from '../helpers/milter.js';
import {
  addedResults,
  assertNoPlaintext,
  type Envelope,
  INSIDE,
  newBody,
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
const fromOutside = { from: '<alice@example.org>', rcpts: ['<bob@example.net>'], address: OUTSIDE };
/** example.org's signed and encrypted mail to bob@example.net, as captured on the wire. */
let captured: Buffer;

before(async () => {
  pki = await securityPki();
  milter = await startUs(pki);
  captured = await protectedByOrg(pki);
  assert.ok(!captured.includes(SECRET), 'the capture is ciphertext');
});

after(async () => {
  await milter?.close();
  await pki?.cleanup();
});

/** Delivered exactly as it came: accepted, no header or body edit at all. */
async function assertNotDecrypted(e: Envelope): Promise<void> {
  const o = await send(milter, captured, e);
  assertNoPlaintext(o);
  assert.equal(o.decision?.type, 'accept', replyOf(o.decision));
  assert.deepEqual(o.edits, [], 'delivered as it came');
}

describe('decryption oracle: a captured ciphertext is decrypted only from outside to our recipients', () => {
  it('control: from outside to bob@example.net it is decrypted, smime=pass', async () => {
    const o = await send(milter, captured, {
      from: '<alice@example.org>',
      rcpts: ['<bob@example.net>'],
      address: OUTSIDE,
    });
    assert.equal(o.decision?.type, 'accept');
    assert.ok(newBody(o)?.includes(SECRET), 'decrypted for our recipient');
    assert.match(addedResults(o)[0] ?? '', /smime=pass/);
  });

  it('from a trusted network, an insider sender, to an internal mailbox: not decrypted', async () => {
    await assertNotDecrypted({
      from: '<mallory@example.net>',
      rcpts: ['<mallory@example.net>'],
      address: INSIDE,
    });
  });

  it('from a trusted network with the forged remote sender alice@example.org: not decrypted', async () => {
    await assertNotDecrypted({
      from: '<alice@example.org>',
      rcpts: ['<mallory@example.net>'],
      address: INSIDE,
    });
  });

  it('from a trusted network as IPv4-mapped IPv6 (::ffff:192.0.2.10): not decrypted', async () => {
    await assertNotDecrypted({
      from: '<alice@example.org>',
      rcpts: ['<mallory@example.net>'],
      address: `::ffff:${INSIDE}`,
    });
  });

  it('authenticated ({auth_authen}) from an outside address, to an internal mailbox: not decrypted', async () => {
    for (const from of ['<mallory@example.net>', '<alice@example.org>', '<>']) {
      await assertNotDecrypted({
        from,
        rcpts: ['<mallory@example.net>'],
        address: OUTSIDE,
        authenticatedAs: 'mallory',
      });
    }
  });

  it('from outside to a remote recipient (relay): not decrypted', async () => {
    await assertNotDecrypted({
      from: '<alice@example.org>',
      rcpts: ['<eve@example.com>'],
      address: OUTSIDE,
    });
  });

  it('from outside to a remote and a local recipient: the local one must come separately (452), nothing decrypted', async () => {
    for (const rcpts of [
      ['<eve@example.com>', '<bob@example.net>'],
      ['<bob@example.net>', '<eve@example.com>'],
    ]) {
      const o = await send(milter, captured, {
        from: '<alice@example.org>',
        rcpts,
        address: OUTSIDE,
      });
      assertNoPlaintext(o);
      assert.equal(o.stage, 'rcpt');
      assert.match(replyOf(o.decision) ?? '', /^452 4\.5\.3 /);
    }
  });

  it('from outside to a subdomain of ours (not configured as local): not decrypted', async () => {
    await assertNotDecrypted({
      from: '<alice@example.org>',
      rcpts: ['<bob@mail.example.net>'],
      address: OUTSIDE,
    });
  });
});

describe('decryption oracle: the time to answer encrypted mail', () => {
  it('is a multiple of DOMSEC_ENCRYPTED_REPLY_QUANTUM, for the genuine message and a broken one alike; plain mail is not held', async () => {
    const quantum = 1000;
    const m = await startUs(pki, { DOMSEC_ENCRYPTED_REPLY_QUANTUM: String(quantum) });
    try {
      const broken = Buffer.from(captured);
      // A byte of the base64 body changed: the envelope no longer decrypts to anything readable.
      const at = broken.lastIndexOf('\r\n\r\n', broken.length - 200) - 40;
      broken[at] = broken[at] === 0x41 ? 0x42 : 0x41;
      const timed = async (message: Buffer) => {
        const t0 = process.hrtime.bigint();
        const o = await send(m, message, fromOutside);
        return { o, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
      };
      for (const message of [captured, broken]) {
        const { o, ms } = await timed(message);
        assert.equal(o.decision?.type, 'accept');
        assert.ok(ms >= quantum, `answered after ${ms.toFixed(0)} ms, before the quantum`);
      }
      const plain = await timed(
        Buffer.from('From: alice@example.org\r\nSubject: hi\r\n\r\nhello\r\n'),
      );
      assert.ok(plain.ms < quantum, `plain mail held for ${plain.ms.toFixed(0)} ms`);
    } finally {
      await m.close();
    }
  });
});
