// The failure actions and per-partner inbound requirements, at the milter
// protocol level: the gateway application behind our MilterServer, driven by
// our MilterClient the way Postfix drives it (the Postfix behaviour of the
// same replies and edits is covered by the e2e tests).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Decision } from '../../protocol/index.js';
import { loadConfig } from '../../src/config.js';
import { certificatePem, type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { transformOutbound } from '../../src/smime/outbound.js';
import { type MilterOutcome, runMessage, startGatewayMilter } from '../helpers/gateway-app.js';
import type { TestMilter } from '../helpers/milter.js';

let dir: string;
let org: DomainPki;
let net: DomainPki;
let com: DomainPki;

const PLAIN = Buffer.from(
  'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: figures\r\n\r\nHello Bob\r\n',
);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'domsec-policy-'));
  [org, net, com] = await Promise.all([
    generateDomainPki('example.org'),
    generateDomainPki('example.net'),
    generateDomainPki('example.com'),
  ]);
  await writeFile(join(dir, 'anchors.pem'), certificatePem(org.ca.certificate));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function gateway(env: Record<string, string>): Promise<TestMilter> {
  return startGatewayMilter('example.net', net, {
    DOMSEC_TRUSTED_NETWORKS: '192.0.2.0/24',
    DOMSEC_TRUST_ANCHORS: join(dir, 'anchors.pem'),
    DOMSEC_AUTHSERV_ID: 'mx.example.net',
    ...env,
  });
}

async function protect(opts: { sign: boolean; encrypt: boolean; to?: DomainPki }) {
  const r = await transformOutbound(PLAIN, {
    signer: {
      certificate: org.signing.certificate,
      chain: [org.ca.certificate],
      privateKey: org.signing.privateKey,
    },
    recipients: [{ certificate: (opts.to ?? net).encryption.certificate }],
    options: { sign: opts.sign, encrypt: opts.encrypt },
  });
  assert.ok(r.ok);
  return r.message;
}

/** A signed message whose signed content was changed in transit. */
async function tampered(): Promise<Buffer> {
  const signed = await protect({ sign: true, encrypt: false });
  const at = signed.indexOf('Hello Bob');
  assert.ok(at > 0);
  const copy = Buffer.from(signed);
  copy.write('Hello Eve', at, 'latin1');
  return copy;
}

type Outcome = MilterOutcome;

/** One message from outside (198.51.100.7) to bob@example.net and carol@example.net. */
const deliver = (milter: TestMilter, message: Buffer): Promise<Outcome> =>
  runMessage(milter, message, {
    from: '<alice@example.org>',
    rcpts: ['<bob@example.net>', '<carol@example.net>'],
    address: '198.51.100.7',
  });

const replyOf = (d: Decision | undefined) =>
  d?.type === 'replyCode' ? `${d.code} ${d.xcode} ${String(d.text)}` : d?.type;
const arValue = (o: Outcome) =>
  String(
    (
      o.edits.find((e) => e.type === 'insertHeader' && e.name === 'Authentication-Results') as
        | { value: string }
        | undefined
    )?.value ?? '',
  );

describe('inbound failure actions', () => {
  it('defaults: a bad signature is recorded (smime=fail) and delivered', async () => {
    const m = await gateway({});
    try {
      const o = await deliver(m, await tampered());
      assert.equal(o.decision?.type, 'accept');
      assert.match(arValue(o), /smime=fail/);
    } finally {
      await m.close();
    }
  });

  it('defaults: mail we cannot decrypt is delivered as it came (smime=permerror), never refused, also under DOMSEC_ON_ERROR=reject', async () => {
    for (const env of [
      {},
      { DOMSEC_ON_ERROR: 'reject' },
      { DOMSEC_ON_ERROR: 'tempfail' },
    ] as Record<string, string>[]) {
      const m = await gateway(env);
      try {
        const o = await deliver(m, await protect({ sign: true, encrypt: true, to: com }));
        assert.equal(o.decision?.type, 'accept', JSON.stringify(env));
        assert.ok(!o.edits.some((e) => e.type === 'replaceBody'), 'the body stays as it came');
        assert.match(arValue(o), /smime=permerror\s+\(encrypted content not decrypted\)/);
      } finally {
        await m.close();
      }
    }
  });

  it('DOMSEC_ON_DECRYPT_FAILURE=reject or tempfail is refused at start: it would be a decryption oracle', () => {
    for (const value of ['reject', 'tempfail']) {
      assert.throws(
        () => loadConfig({ DOMSEC_ON_DECRYPT_FAILURE: value }),
        /DOMSEC_ON_DECRYPT_FAILURE=.*expected accept \| quarantine \| redirect \(a refusal would tell the sender whether the message decrypted: a decryption oracle\)/,
      );
    }
  });

  it('redirect: undecryptable mail goes to the administrator, the reason in a header', async () => {
    const m = await gateway({
      DOMSEC_ON_DECRYPT_FAILURE: 'redirect',
      DOMSEC_ADMIN_ADDRESS: 'postmaster@example.net',
    });
    try {
      const o = await deliver(m, await protect({ sign: true, encrypt: true, to: com }));
      assert.equal(o.decision?.type, 'accept');
      const deleted = o.edits.filter((e) => e.type === 'deleteRecipient').map((e) => e.address);
      assert.deepEqual(deleted, ['<bob@example.net>', '<carol@example.net>']);
      assert.deepEqual(
        o.edits.filter((e) => e.type === 'addRecipient').map((e) => e.address),
        ['<postmaster@example.net>'],
      );
      const refused = o.edits.find((e) => e.type === 'addHeader' && e.name === 'X-Domsec-Refused');
      assert.match(
        String((refused as { value: string }).value),
        /decrypt-failure: .*not encrypted to/,
      );
      assert.match(arValue(o), /smime=permerror/);
    } finally {
      await m.close();
    }
  });

  it('quarantine: a bad signature held by the MTA, still marked', async () => {
    const m = await gateway({ DOMSEC_ON_BAD_SIGNATURE: 'quarantine' });
    try {
      const o = await deliver(m, await tampered());
      assert.equal(o.decision?.type, 'accept');
      const q = o.edits.find((e) => e.type === 'quarantine');
      assert.match(String((q as { reason: string }).reason), /^domsec bad-signature: /);
      assert.match(arValue(o), /smime=fail/);
    } finally {
      await m.close();
    }
  });

  it('reject: 550 with the kind and reason, nothing edited', async () => {
    const m = await gateway({ DOMSEC_ON_BAD_SIGNATURE: 'reject' });
    try {
      const o = await deliver(m, await tampered());
      assert.match(replyOf(o.decision) ?? '', /^550 5\.7\.1 bad-signature: /);
      assert.equal(o.edits.length, 0);
    } finally {
      await m.close();
    }
  });
});

describe('per-partner inbound requirements', () => {
  it('required signed: plain mail from that domain is refused (DOMSEC_ON_UNPROTECTED)', async () => {
    const m = await gateway({
      DOMSEC_INBOUND_REQUIRE_SIGNED: 'example.org',
      DOMSEC_ON_UNPROTECTED: 'reject',
    });
    try {
      const o = await deliver(m, PLAIN);
      assert.match(
        replyOf(o.decision) ?? '',
        /^550 5\.7\.1 unprotected: mail from example.org must be signed/,
      );
      const ok = await deliver(m, await protect({ sign: true, encrypt: false }));
      assert.equal(ok.decision?.type, 'accept');
      assert.match(arValue(ok), /smime=pass/);
    } finally {
      await m.close();
    }
  });

  it('required signed: a bad signature from that domain falls to DOMSEC_ON_ERROR', async () => {
    const m = await gateway({ DOMSEC_INBOUND_REQUIRE_SIGNED: 'example.org' });
    try {
      const o = await deliver(m, await tampered());
      assert.match(replyOf(o.decision) ?? '', /^451 4\.7\.1 bad-signature: /);
    } finally {
      await m.close();
    }
  });

  it('required encrypted: signed-only mail is refused, signed+encrypted passes', async () => {
    const m = await gateway({
      DOMSEC_INBOUND_REQUIRE_ENCRYPTED: 'example.org',
      DOMSEC_ON_UNPROTECTED: 'reject',
    });
    try {
      const o = await deliver(m, await protect({ sign: true, encrypt: false }));
      assert.match(replyOf(o.decision) ?? '', /must be encrypted/);
      const ok = await deliver(m, await protect({ sign: true, encrypt: true }));
      assert.equal(ok.decision?.type, 'accept');
      assert.match(arValue(ok), /smime=pass/);
    } finally {
      await m.close();
    }
  });

  it('another domain is not affected by the requirement', async () => {
    const m = await gateway({
      DOMSEC_INBOUND_REQUIRE_SIGNED: 'example.com',
      DOMSEC_ON_UNPROTECTED: 'reject',
    });
    try {
      assert.equal((await deliver(m, PLAIN)).decision?.type, 'accept');
    } finally {
      await m.close();
    }
  });
});

describe('configuration of actions', () => {
  it('redirect without DOMSEC_ADMIN_ADDRESS is refused at start', () => {
    assert.throws(
      () => loadConfig({ DOMSEC_ON_REVOKED: 'redirect' }),
      /DOMSEC_ADMIN_ADDRESS="": expected an address, since DOMSEC_ON_REVOKED=redirect/,
    );
  });
});
