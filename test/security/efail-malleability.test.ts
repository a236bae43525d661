// EFAIL's other half, CBC malleability: who knows one plaintext block of a
// CBC ciphertext can rewrite it at will by changing the block before it (for
// the first block: the IV), without the key. EnvelopedData has no integrity
// of its own; only AuthEnvelopedData (AES-GCM) or a valid inner signature
// shows the change. So AES-CBC content is delivered decrypted only under a
// valid, trusted signature bound to its author; a rewritten CBC message, and
// a rewritten AES-GCM one, are delivered as they came (still encrypted), with
// the same answer as any other encrypted mail (no oracle).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decryptEnvelope } from '../../src/cms/decrypt.js';
import { applyEdits, type MilterOutcome } from '../helpers/gateway-app.js';
import type { TestMilter } from '../helpers/milter.js';
import {
  addedResults,
  assertNoPlaintext,
  derOf,
  OUTSIDE,
  protectedByOrg,
  replyOf,
  SECRET,
  type SecurityPki,
  securityPki,
  send,
  startUs,
  uniqueOffset,
  withDer,
} from '../helpers/security-fixture.js';

let pki: SecurityPki;
const milters: TestMilter[] = [];

before(async () => {
  pki = await securityPki();
});

after(async () => {
  for (const m of milters) await m.close();
  await pki?.cleanup();
});

async function gateway(env: Record<string, string> = {}): Promise<TestMilter> {
  const m = await startUs(pki, env);
  milters.push(m);
  return m;
}

const fromAlice = { from: '<alice@example.org>', rcpts: ['<bob@example.net>'], address: OUTSIDE };

/** aes256-CBC AlgorithmIdentifier up to its IV: OID 2.16.840.1.101.3.4.1.42, OCTET STRING of 16. */
const CBC_IV = Buffer.from('060960864801650304012a0410', 'hex');
/** aes256-GCM AlgorithmIdentifier: OID 2.16.840.1.101.3.4.1.46 (the GCMParameters follow). */
const GCM_OID = Buffer.from('060960864801650304012e', 'hex');
const INJECTED = 'X-Tampered: yes;';

/** The captured CBC mail with its first plaintext block rewritten to INJECTED through the IV. */
async function rewrittenCbc(): Promise<Buffer> {
  const captured = await protectedByOrg(pki, undefined, { cipher: 'aes-256-cbc' });
  const der = derOf(captured);
  // The attacker knows the first block from the structure every such mail has; here we read it.
  const known = decryptEnvelope(der, [
    { certificate: pki.net.encryption.certificate, privateKey: pki.net.encryption.privateKey },
  ]).content.subarray(0, 16);
  assert.match(known.toString('latin1'), /^Content-Type: /);
  const at = uniqueOffset(der, CBC_IV) + CBC_IV.length;
  const tampered = Buffer.from(der);
  for (let i = 0; i < 16; i++) tampered[at + i]! ^= known[i]! ^ INJECTED.charCodeAt(i);
  // Proof of the rewrite, with the key: exactly the first block changed.
  const back = decryptEnvelope(tampered, [
    { certificate: pki.net.encryption.certificate, privateKey: pki.net.encryption.privateKey },
  ]).content;
  assert.equal(back.subarray(0, 16).toString('latin1'), INJECTED);
  return withDer(captured, tampered);
}

describe('EFAIL malleability: rewritten ciphertexts', () => {
  /** Delivered as it came: the ciphertext untouched, our smime=permerror, nothing decrypted handed over. */
  function assertDeliveredEncrypted(message: Buffer, o: MilterOutcome): void {
    assertNoPlaintext(o);
    assert.equal(o.decision?.type, 'accept', replyOf(o.decision));
    assert.ok(!o.edits.some((e) => e.type === 'replaceBody'), 'the body stays as it came');
    assert.ok(!applyEdits(message, o.edits).includes(SECRET));
    assert.match(addedResults(o)[0] ?? '', /smime=permerror\s+\(encrypted content not decrypted\)/);
  }

  it('AES-CBC rewritten through the IV: not delivered decrypted, since no signature vouches for the rewritten content', async () => {
    const m = await gateway();
    const message = await rewrittenCbc();
    assertDeliveredEncrypted(message, await send(m, message, fromAlice));
  });

  it('AES-CBC rewritten, the partner required to sign (DOMSEC_INBOUND_REQUIRE_SIGNED): the same answer, no refusal to tell it apart', async () => {
    const m = await gateway({ DOMSEC_INBOUND_REQUIRE_SIGNED: 'example.org' });
    const message = await rewrittenCbc();
    assertDeliveredEncrypted(message, await send(m, message, fromAlice));
  });

  it('AES-GCM (AuthEnvelopedData) with its nonce changed: not decrypted, delivered as it came, no plaintext', async () => {
    const m = await gateway();
    const captured = await protectedByOrg(pki, undefined, { cipher: 'aes-256-gcm' });
    const der = derOf(captured);
    // GCMParameters ::= SEQUENCE { aes-nonce OCTET STRING (12), ... }: 30 LL 04 0C <nonce>.
    const at = uniqueOffset(der, GCM_OID) + GCM_OID.length;
    assert.deepEqual([der[at], der[at + 2], der[at + 3]], [0x30, 0x04, 0x0c]);
    const tampered = Buffer.from(der);
    tampered[at + 4]! ^= 0x01;
    const message = withDer(captured, tampered);
    assertDeliveredEncrypted(message, await send(m, message, fromAlice));
  });
});
