// The failure actions and per-partner inbound requirements, at the milter
// protocol level: the gateway application behind our MilterServer, driven by
// our MilterClient the way Postfix drives it (the Postfix behaviour of the
// same replies and edits is covered by the e2e tests).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Decision, Modification } from '../../protocol/index.js';
import { MemoryCache } from '../../src/cache/memory.js';
import { loadConfig } from '../../src/config.js';
import { gatewayApplication } from '../../src/gateway/application.js';
import { parseNetworks } from '../../src/gateway/direction.js';
import { splitMessage } from '../../src/mime/index.js';
import { identityFromKeys } from '../../src/pki/identities.js';
import { certificatePem, type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { loadPki } from '../../src/pki/setup.js';
import { failurePolicyFrom } from '../../src/policy/actions.js';
import { transformOutbound } from '../../src/smime/outbound.js';
import { startTestMilter, type TestMilter } from '../helpers/milter.js';

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

async function gateway(env: Record<string, string>): Promise<TestMilter> {
  const config = loadConfig({
    DOMSEC_LOCAL_DOMAINS: 'example.net',
    DOMSEC_TRUSTED_NETWORKS: '192.0.2.0/24',
    DOMSEC_TRUST_ANCHORS: join(dir, 'anchors.pem'),
    DOMSEC_REVOCATION: 'off',
    ...env,
  });
  const keys = [net.signing, net.encryption].map((k, i) => ({
    label: i === 0 ? 'sign' : 'encrypt',
    certificate: k.certificate,
    chain: [net.ca.certificate],
    privateKey: k.privateKey,
  }));
  const pki = await loadPki(config, { cache: new MemoryCache() });
  const app = gatewayApplication({
    directions: {
      localDomains: new Set(config.localDomains),
      trustedNetworks: parseNetworks(config.trustedNetworks),
    },
    outbound: { sign: 'always', encrypt: 'opportunistic', encryptRequiredDomains: new Set() },
    identities: new Map([['example.net', identityFromKeys('example.net', keys)]]),
    pki,
    authservId: 'mx.example.net',
    failures: failurePolicyFrom(config),
    requirements: {
      signed: new Set(config.inboundRequireSigned),
      encrypted: new Set(config.inboundRequireEncrypted),
    },
    adminAddress: config.adminAddress,
    log: { info: () => {}, warn: () => {}, error: () => {} },
  });
  return startTestMilter(app);
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

interface Outcome {
  readonly decision: Decision | undefined;
  readonly edits: readonly Modification[];
}

/** One message from outside (198.51.100.7) to bob@example.net and postmaster@example.net. */
async function deliver(milter: TestMilter, message: Buffer): Promise<Outcome> {
  const client = await milter.client();
  await client.connectEvent({
    hostname: 'mail.example.org',
    family: 'inet',
    port: 25,
    address: '198.51.100.7',
  });
  const { headers, body } = splitMessage(message);
  const r = await client.sendMessage({
    from: '<alice@example.org>',
    rcpts: ['<bob@example.net>', '<carol@example.net>'],
    headers: headers.map(
      (h) => [h.name, h.raw.toString('latin1').slice(h.name.length + 1)] as const,
    ),
    body,
  });
  client.quit();
  return { decision: r.decision, edits: r.eom?.modifications ?? [] };
}

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

  it('defaults: mail we cannot decrypt is tempfailed (DOMSEC_ON_ERROR): the sender keeps it', async () => {
    const m = await gateway({});
    try {
      const o = await deliver(m, await protect({ sign: true, encrypt: true, to: com }));
      assert.match(replyOf(o.decision) ?? '', /^451 4\.7\.1 decrypt-failure: /);
      assert.equal(o.edits.length, 0);
    } finally {
      await m.close();
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
