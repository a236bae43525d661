// Signing oracle: RFC 3183 allows a domain signature only for an originator
// the domain authenticated (SMTP AUTH or a trusted network). A stranger who
// claims one of our senders must not get mail signed with our domain key.
// Here we are example.org (trusted network 192.0.2.0/24); at the milter
// protocol level with the real gateway application, the way Postfix sends
// the client address and {auth_authen}. The direction rule itself is
// unit-tested in test/gateway/direction.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { transformInbound } from '../../src/smime/inbound.js';
import { applyEdits, startGatewayMilter } from '../helpers/gateway-app.js';
import type { TestMilter } from '../helpers/milter.js';
import {
  type Envelope,
  INSIDE,
  OUTSIDE,
  plainMessage,
  replyOf,
  type SecurityPki,
  securityPki,
  send,
  TRUSTED_NETWORKS,
} from '../helpers/security-fixture.js';

let pki: SecurityPki;
let milter: TestMilter;
const MESSAGE = plainMessage('sign-me', 'Invoice', 'Please pay 10 000 EUR to account X.');

before(async () => {
  pki = await securityPki();
  milter = await startGatewayMilter('example.org', pki.org, {
    DOMSEC_TRUSTED_NETWORKS: TRUSTED_NETWORKS,
    DOMSEC_AUTHSERV_ID: 'mx.example.org',
  });
});

after(async () => {
  await milter?.close();
  await pki?.cleanup();
});

/** The fingerprints of the domain signers on the message the MTA would deliver. */
async function domainSigners(e: Envelope): Promise<string[]> {
  const o = await send(milter, MESSAGE, e);
  assert.equal(o.decision?.type, 'accept', replyOf(o.decision));
  const out = applyEdits(MESSAGE, o.edits);
  const r = await transformInbound(out, { keys: [] });
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return r.report.layers
    .flatMap((l) => l.signers ?? [])
    .filter((s) => s.valid && s.signatureTypes.includes('domain'))
    .map((s) => s.certificate?.fingerprint ?? '?');
}

async function assertNotSigned(e: Envelope): Promise<void> {
  const o = await send(milter, MESSAGE, e);
  assert.equal(o.decision?.type, 'accept', replyOf(o.decision));
  assert.ok(
    !o.edits.some(
      (e) =>
        e.type === 'replaceBody' ||
        ((e.type === 'addHeader' || e.type === 'insertHeader') &&
          e.name.toLowerCase() === 'content-type'),
    ),
    'no signature added',
  );
  assert.deepEqual(await domainSigners(e), []);
}

describe('signing oracle: only authenticated or trusted clients get the domain signature', () => {
  it('control: an authenticated client ({auth_authen}) from anywhere is signed for', async () => {
    assert.deepEqual(
      await domainSigners({
        from: '<alice@example.org>',
        rcpts: ['<bob@example.com>'],
        address: OUTSIDE,
        authenticatedAs: 'alice',
      }),
      [pki.org.signing.certificate.fingerprint],
    );
  });

  it('control: a client in DOMSEC_TRUSTED_NETWORKS is signed for', async () => {
    assert.deepEqual(
      await domainSigners({
        from: '<alice@example.org>',
        rcpts: ['<bob@example.com>'],
        address: INSIDE,
      }),
      [pki.org.signing.certificate.fingerprint],
    );
  });

  it('an unauthenticated outside client with MAIL FROM alice@example.org is not signed for', async () => {
    await assertNotSigned({
      from: '<alice@example.org>',
      rcpts: ['<bob@example.com>'],
      address: OUTSIDE,
    });
  });

  it('the same with the local sender spelled otherwise (case, trailing dot, source route): not signed', async () => {
    for (const from of [
      '<ALICE@EXAMPLE.ORG>',
      '<alice@example.org.>',
      '<@relay.example.com:alice@example.org>',
    ]) {
      await assertNotSigned({ from, rcpts: ['<bob@example.com>'], address: OUTSIDE });
    }
  });

  it('an empty {auth_authen} macro is no authentication: not signed', async () => {
    await assertNotSigned({
      from: '<alice@example.org>',
      rcpts: ['<bob@example.com>'],
      address: OUTSIDE,
      authenticatedAs: '',
    });
  });

  it('an unauthenticated outside client to one of our recipients: handled as inbound, not signed', async () => {
    const o = await send(milter, MESSAGE, {
      from: '<alice@example.org>',
      rcpts: ['<carol@example.org>'],
      address: OUTSIDE,
    });
    assert.equal(o.decision?.type, 'accept');
    assert.deepEqual(
      await domainSigners({
        from: '<alice@example.org>',
        rcpts: ['<carol@example.org>'],
        address: OUTSIDE,
      }),
      [],
    );
  });

  it('a trusted client sending with a foreign sender is not signed for (we sign only for our domain)', async () => {
    await assertNotSigned({
      from: '<mallory@example.com>',
      rcpts: ['<bob@example.com>'],
      address: INSIDE,
    });
    await assertNotSigned({
      from: '<mallory@example.com>',
      rcpts: ['<bob@example.com>'],
      address: OUTSIDE,
      authenticatedAs: 'mallory',
    });
  });
});
