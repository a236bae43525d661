/**
 * Failure actions through a real Postfix: what Postfix does with the
 * milter's redirect (recipients replaced by the administrator's address),
 * quarantine (the hold queue) and reject/tempfail replies, on example.net's
 * inbound side.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { certificatePem, type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { writeDomainPki } from '../../src/pki/keygen-files.js';
import { transformOutbound } from '../../src/smime/outbound.js';
import { type ServingMilter, startServe } from '../helpers/cli.js';
import { type PostfixInstance, startPostfix } from '../helpers/postfix.js';
import { sendMail } from '../helpers/smtp-client.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

const message = (id: string) =>
  Buffer.from(
    `From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: ${id}\r\nMessage-ID: <${id}@example.org>\r\n\r\nHello Bob\r\n`,
  );

describe('failure actions carried out by a real Postfix', () => {
  let dir: string;
  let org: DomainPki;
  let com: DomainPki;
  let sink: SmtpSink;
  let milter: ServingMilter;
  let postfix: PostfixInstance;

  async function protect(id: string, to: DomainPki, encrypt: boolean): Promise<Buffer> {
    const r = await transformOutbound(message(id), {
      signer: {
        certificate: org.signing.certificate,
        chain: [org.ca.certificate],
        privateKey: org.signing.privateKey,
      },
      recipients: [{ certificate: to.encryption.certificate }],
      options: { sign: true, encrypt },
    });
    assert.ok(r.ok);
    return r.message;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'domsec-actions-'));
    let net: DomainPki;
    [org, net, com] = await Promise.all([
      generateDomainPki('example.org'),
      generateDomainPki('example.net'),
      generateDomainPki('example.com'),
    ]);
    await writeDomainPki(join(dir, 'net'), 'example.net', net);
    await writeFile(join(dir, 'org-ca.pem'), certificatePem(org.ca.certificate));
    sink = await startSmtpSink();
    milter = await startServe({
      DOMSEC_LOCAL_DOMAINS: 'example.net',
      DOMSEC_KEYS_DIR: join(dir, 'net'),
      DOMSEC_TRUST_ANCHORS: join(dir, 'org-ca.pem'),
      DOMSEC_TRUSTED_NETWORKS: '192.0.2.0/24',
      DOMSEC_AUTHSERV_ID: 'mx.example.net',
      DOMSEC_ON_DECRYPT_FAILURE: 'redirect',
      DOMSEC_ADMIN_ADDRESS: 'postmaster@example.net',
      DOMSEC_ON_BAD_SIGNATURE: 'quarantine',
      DOMSEC_INBOUND_REQUIRE_SIGNED: 'example.org',
      DOMSEC_ON_UNPROTECTED: 'reject',
    });
    postfix = await startPostfix({ relayPort: sink.port, milter: milter.address });
  });

  after(async () => {
    await postfix?.stop();
    await milter?.stop();
    await sink?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('undecryptable mail is redirected: the administrator gets it, the recipients do not', async () => {
    const sent = await sendMail({
      port: postfix.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net', 'carol@example.net'],
      data: await protect('redirect-1', com, true),
    });
    assert.equal(sent.dataReply?.code, 250, JSON.stringify(sent.replies));
    const [got] = await sink.waitFor(1, 30_000);
    assert.deepEqual(got!.rcptTo, ['postmaster@example.net']);
    assert.match(got!.header('x-domsec-refused') ?? '', /^decrypt-failure: .*not encrypted to/);
    assert.match(got!.header('authentication-results') ?? '', /smime=permerror/);
  });

  test('a bad signature is quarantined: Postfix holds it', async () => {
    const signed = await protect('held-1', org, false);
    const at = signed.indexOf('Hello Bob');
    signed.write('Hello Eve', at, 'latin1');
    const before = sink.messages.length;
    const sent = await sendMail({
      port: postfix.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      data: signed,
    });
    assert.equal(sent.dataReply?.code, 250, JSON.stringify(sent.replies));
    const deadline = Date.now() + 15_000;
    while (!(await postfix.queueEntries()).some((e) => e.queue === 'hold')) {
      assert.ok(Date.now() < deadline, 'no message in the hold queue after 15 s');
      await sleep(100);
    }
    assert.equal(sink.messages.length, before, 'nothing delivered');
    // Postfix logs the hold but not the milter's reason text.
    assert.match(await postfix.log(), /milter-hold: END-OF-MESSAGE .* to=<bob@example.net>/);
  });

  test("a required sender's unsigned mail is rejected at end of data", async () => {
    const sent = await sendMail({
      port: postfix.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      data: message('plain-1'),
    });
    assert.equal(sent.dataReply?.code, 550);
    assert.match(sent.dataReply?.text ?? '', /unprotected: mail from example.org must be signed/);
  });
});
