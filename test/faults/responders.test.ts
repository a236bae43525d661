/**
 * Peers of the gateway that hang, reset the connection, or answer garbage,
 * seen through the whole gateway application over the milter protocol: an
 * OCSP responder named by an inbound signer's certificate, and the partner
 * LDAP directory (and its certificate's responder) for outbound mail. Each
 * answer comes within DOMSEC_LOOKUP_TIMEOUT; soft-fail delivers and says so,
 * hard-fail and required encryption answer 4xx: never lost, never a pass.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Decision } from '../../protocol/index.js';
import { certificatePem, type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { transformOutbound } from '../../src/smime/outbound.js';
import { fakeLdapServer } from '../helpers/fake-ldap.js';
import { type FakeServer, fakeServer, type Responder } from '../helpers/fake-tcp.js';
import { type MilterOutcome, runMessage, startGatewayMilter } from '../helpers/gateway-app.js';
import { dca, nonsense } from '../helpers/ldap-fixtures.js';

/** How a misbehaving peer treats each connection. */
type Fault = 'hang' | 'reset' | 'garbage';
const FAULTS: readonly Fault[] = ['hang', 'reset', 'garbage'];
/** What the OCSP client makes of each fault (so each case is known to meet its own). */
const OCSP_SAYS: Record<Fault, RegExp> = {
  hang: /no answer within 1000 ms/,
  reset: /ECONNRESET/,
  garbage: /HPE_\w+/,
};
const TIMEOUT_S = 1;
/** The time bound: the look-up timeout, plus slack for a loaded machine. */
const BOUND_MS = TIMEOUT_S * 1000 + 2000;

/** One peer whose behaviour is switched between cases (certificates name its port). */
async function switchablePeer(): Promise<FakeServer & { fault: Fault }> {
  const state = { fault: 'hang' as Fault };
  const server = await fakeServer((): Responder => {
    const fault = state.fault;
    return () => (fault === 'reset' ? 'reset' : fault === 'garbage' ? nonsense(256) : undefined);
  });
  // Accessors, not Object.assign (which would copy the getter's value once).
  return Object.defineProperty(server, 'fault', {
    get: () => state.fault,
    set: (f: Fault) => {
      state.fault = f;
    },
  }) as FakeServer & { fault: Fault };
}

const PLAIN = Buffer.from(
  'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: figures\r\n' +
    'Message-ID: <responders@example.org>\r\n\r\nHello Bob\r\n',
);

const replyOf = (d: Decision | undefined) =>
  d?.type === 'replyCode' ? `${d.code} ${d.xcode} ${String(d.text)}` : d?.type;
const authResults = (o: MilterOutcome) =>
  String(
    (
      o.edits.find((e) => e.type === 'insertHeader' && e.name === 'Authentication-Results') as
        | { value: string }
        | undefined
    )?.value ?? '',
  )
    .replace(/\s+/g, ' ')
    .trim();
const newContentType = (o: MilterOutcome) =>
  String(
    (
      o.edits.find(
        (e) =>
          (e.type === 'changeHeader' || e.type === 'addHeader') &&
          e.name.toLowerCase() === 'content-type',
      ) as { value: string } | undefined
    )?.value ?? '',
  );

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

let dir: string;
let ocsp: FakeServer & { fault: Fault };
let ldap: FakeServer & { fault: Fault };
/** example.org's certificates name the misbehaving OCSP responder. */
let org: DomainPki;
let net: DomainPki;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'domsec-responders-'));
  [ocsp, ldap] = await Promise.all([switchablePeer(), switchablePeer()]);
  const ocspUrl = `http://127.0.0.1:${ocsp.port}/`;
  [org, net] = await Promise.all([
    generateDomainPki('example.org', { algo: 'ec-p256', ocspUrl }),
    generateDomainPki('example.net', { algo: 'ec-p256', ocspUrl }),
  ]);
  await writeFile(join(dir, 'org-ca.pem'), certificatePem(org.ca.certificate));
  await writeFile(join(dir, 'net-ca.pem'), certificatePem(net.ca.certificate));
});

after(async () => {
  await Promise.all([ocsp?.close(), ldap?.close()]);
  await rm(dir, { recursive: true, force: true });
});

describe('inbound: the signer certificate names an OCSP responder that fails', () => {
  let protectedMessage: Buffer;
  before(async () => {
    const r = await transformOutbound(PLAIN, {
      signer: {
        certificate: org.signing.certificate,
        chain: [org.ca.certificate],
        privateKey: org.signing.privateKey,
      },
      recipients: [{ certificate: net.encryption.certificate }],
      options: { sign: true, encrypt: true },
    });
    assert.ok(r.ok);
    protectedMessage = r.message;
  });

  /** A fresh gateway for example.net (its own cache: nothing remembered between cases). */
  async function receive(policy: 'soft-fail' | 'hard-fail') {
    const milter = await startGatewayMilter('example.net', net, {
      DOMSEC_TRUSTED_NETWORKS: '192.0.2.0/24',
      DOMSEC_TRUST_ANCHORS: join(dir, 'org-ca.pem'),
      DOMSEC_AUTHSERV_ID: 'mx.example.net',
      DOMSEC_REVOCATION: 'ocsp',
      DOMSEC_REVOCATION_POLICY: policy,
      DOMSEC_LOOKUP_TIMEOUT: String(TIMEOUT_S),
    });
    try {
      return await timed(() =>
        runMessage(milter, protectedMessage, {
          from: '<alice@example.org>',
          rcpts: ['<bob@example.net>'],
          address: '198.51.100.7',
        }),
      );
    } finally {
      await milter.close();
    }
  }

  for (const fault of FAULTS) {
    it(`${fault}: soft-fail delivers it decrypted, smime=pass with the doubt noted, within the timeout`, async () => {
      ocsp.fault = fault;
      const before = ocsp.accepted;
      const { value: o, ms } = await receive('soft-fail');
      assert.equal(o.decision?.type, 'accept', replyOf(o.decision));
      assert.match(
        authResults(o),
        /^mx\.example\.net; smime=pass \(.*example\.org domain signing.*revocation status unavailable: ocsp http:\/\/127\.0\.0\.1:\d+\/: .+\) body\.smime-identifier=/,
      );
      assert.match(authResults(o), OCSP_SAYS[fault]);
      const body = o.edits.find((e) => e.type === 'replaceBody');
      assert.ok(body?.chunk.includes('Hello Bob'), 'decrypted');
      assert.ok(ocsp.accepted > before, 'the responder was asked');
      assert.ok(ms < BOUND_MS, `${ms} ms`);
    });

    it(`${fault}: hard-fail answers 451 and changes nothing: the sender keeps it`, async () => {
      ocsp.fault = fault;
      const { value: o, ms } = await receive('hard-fail');
      assert.match(
        replyOf(o.decision) ?? '',
        /^451 4\.7\.1 revocation-unknown: .*revocation status unavailable/,
      );
      assert.match(replyOf(o.decision) ?? '', OCSP_SAYS[fault]);
      assert.deepEqual(o.edits, [], 'nothing delivered, no pass recorded');
      assert.ok(ms < BOUND_MS, `${ms} ms`);
      if (fault === 'hang') assert.ok(ms >= TIMEOUT_S * 1000 - 100, `waited the timeout: ${ms}`);
    });
  }
});

describe('outbound: the partner directory, or its certificate responder, fails', () => {
  /** A fresh gateway for example.org looking partners up in `ldapUrl` only. */
  async function send(rcpt: string, env: Record<string, string>) {
    const milter = await startGatewayMilter('example.org', org, {
      DOMSEC_PARTNER_SOURCES: 'ldap',
      DOMSEC_ENCRYPT_REQUIRED_DOMAINS: 'example.net',
      DOMSEC_LOOKUP_TIMEOUT: String(TIMEOUT_S),
      ...env,
    });
    try {
      return await timed(() =>
        runMessage(milter, PLAIN, {
          from: '<alice@example.org>',
          rcpts: [`<${rcpt}>`],
          address: '127.0.0.1',
        }),
      );
    } finally {
      await milter.close();
    }
  }
  const directory = () => ({ DOMSEC_LDAP_URLS: `ldap://127.0.0.1:${ldap.port}/dc=example,dc=net` });

  for (const fault of FAULTS) {
    it(`${fault} directory: required encryption gets 450 at RCPT within the timeout`, async () => {
      ldap.fault = fault;
      const { value: o, ms } = await send('bob@example.net', directory());
      assert.match(
        replyOf(o.decision) ?? '',
        /^450 4\.7\.1 certificate lookup for example\.net failed/,
      );
      assert.deepEqual(o.edits, []);
      assert.ok(ms < BOUND_MS, `${ms} ms`);
    });

    it(`${fault} directory: an opportunistic domain gets it signed, as policy allows`, async () => {
      ldap.fault = fault;
      const { value: o, ms } = await send('dave@example.info', directory());
      assert.equal(o.decision?.type, 'accept', replyOf(o.decision));
      assert.match(newContentType(o), /multipart\/signed/);
      assert.ok(ms < 2 * BOUND_MS, `${ms} ms (one look-up at RCPT, reused at the end)`);
    });
  }

  describe('the directory answers, the partner certificate names a failing responder', () => {
    let partnerDirectory: FakeServer;
    before(async () => {
      partnerDirectory = await fakeLdapServer([
        {
          dn: 'cn=net,dc=example,dc=net',
          attributes: {
            mail: [Buffer.from(dca('example.net'))],
            'userCertificate;binary': [net.encryption.certificate.der],
          },
        },
      ]);
    });
    after(() => partnerDirectory.close());
    const vetted = (policy: string) => ({
      DOMSEC_LDAP_URLS: `ldap://127.0.0.1:${partnerDirectory.port}/dc=example,dc=net`,
      DOMSEC_TRUST_ANCHORS: join(dir, 'net-ca.pem'),
      DOMSEC_REVOCATION: 'ocsp',
      DOMSEC_REVOCATION_POLICY: policy,
    });

    for (const fault of FAULTS) {
      it(`${fault}: hard-fail does not encrypt to an unchecked certificate: 450, not plain`, async () => {
        ocsp.fault = fault;
        const { value: o, ms } = await send('bob@example.net', vetted('hard-fail'));
        assert.match(
          replyOf(o.decision) ?? '',
          /^450 4\.7\.1 certificate lookup for example\.net failed/,
        );
        assert.deepEqual(o.edits, []);
        assert.ok(ms < BOUND_MS, `${ms} ms`);
      });

      it(`${fault}: soft-fail encrypts to it`, async () => {
        ocsp.fault = fault;
        const { value: o } = await send('bob@example.net', vetted('soft-fail'));
        assert.equal(o.decision?.type, 'accept', replyOf(o.decision));
        assert.match(newContentType(o), /enveloped-data/);
      });
    }
  });
});
