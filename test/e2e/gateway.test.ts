/**
 * Two domains on one machine, each with its own Postfix and domsec-milter:
 * example.org's outbound side signs and encrypts, example.net's inbound side
 * decrypts and verifies. Checked with openssl and at the sinks.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  assertArrivedVerified,
  assertSignedAndEncrypted,
  delivered,
  type GatewayDomains,
  message,
  startGatewayDomains,
  TAMPERED_RESULT,
  tampered,
  withSpoofedResult,
} from '../helpers/gateway-fixture.js';
import { type PostfixInstance, startPostfix } from '../helpers/postfix.js';
import { sendMail } from '../helpers/smtp-client.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

describe('the gateway between two domains through real Postfix instances', () => {
  let domains: GatewayDomains;
  let sinkA: SmtpSink;
  let sinkB: SmtpSink;
  let postfixA: PostfixInstance;
  let postfixB: PostfixInstance;

  before(async () => {
    [domains, sinkA, sinkB] = await Promise.all([
      startGatewayDomains(),
      startSmtpSink(),
      startSmtpSink(),
    ]);
    postfixA = await startPostfix({ relayPort: sinkA.port, milter: domains.milterA.address });
    postfixB = await startPostfix({ relayPort: sinkB.port, milter: domains.milterB.address });
  });

  after(async () => {
    await Promise.all([postfixA?.stop(), postfixB?.stop()]);
    await domains?.stop();
    await Promise.all([sinkA?.close(), sinkB?.close()]);
  });

  test('alice@example.org -> bob@example.net leaves signed and encrypted, arrives decrypted with smime=pass', async () => {
    const sent = await sendMail({
      port: postfixA.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      data: message('e2e-1'),
    });
    assert.equal(sent.dataReply?.code, 250, JSON.stringify(sent.replies));
    const out = await delivered(sinkA, 'e2e-1');
    await assertSignedAndEncrypted(out, domains.keys);

    // Into example.net, with a spoofed result claiming to be mx.example.net.
    const inbound = await sendMail({
      port: postfixB.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      data: withSpoofedResult(out.data),
    });
    assert.equal(inbound.dataReply?.code, 250);
    assertArrivedVerified(await delivered(sinkB, 'e2e-1'), 'figures e2e-1', domains);
  });

  test('a tampered signed message arrives with smime=fail', async () => {
    // example.info has no certificate and requires none: signed only, then altered in transit.
    const sent = await sendMail({
      port: postfixA.smtpPort,
      from: 'alice@example.org',
      to: ['dave@example.info'],
      data: message('e2e-2', 'Dave <dave@example.info>'),
    });
    assert.equal(sent.dataReply?.code, 250);
    const signed = await delivered(sinkA, 'e2e-2');
    const r = await sendMail({
      port: postfixB.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      data: tampered(signed),
    });
    assert.equal(r.dataReply?.code, 250);
    const got = await delivered(sinkB, 'e2e-2');
    assert.match(got.header('authentication-results') ?? '', TAMPERED_RESULT);
  });

  test('encryption required without a certificate: 550 for that recipient only, the others delivered', async () => {
    const r = await sendMail({
      port: postfixA.smtpPort,
      from: 'alice@example.org',
      to: ['carol@example.com', 'bob@example.net'],
      data: message('e2e-3'),
    });
    const rcpt = r.replies.filter((x) => x.command.startsWith('RCPT'));
    assert.deepEqual(
      rcpt.map((x) => x.code),
      [550, 250],
    );
    assert.match(rcpt[0]!.text, /5\.7\.1 encryption to example\.com is required/);
    const got = await delivered(sinkA, 'e2e-3');
    assert.deepEqual(got.rcptTo, ['bob@example.net']);
    assert.match(got.header('content-type') ?? '', /enveloped-data/);
  });

  test('a recipient with a certificate and one without: one encrypted copy cannot serve both, 452', async () => {
    const r = await sendMail({
      port: postfixA.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net', 'dave@example.info'],
      data: message('e2e-5'),
    });
    const rcpt = r.replies.filter((x) => x.command.startsWith('RCPT'));
    assert.deepEqual(
      rcpt.map((x) => x.code),
      [250, 452],
    );
    assert.match(rcpt[1]!.text, /4\.5\.3 .*separately plain copy/);
  });

  test('local and remote recipients in one transaction: the second class gets 452 4.5.3', async () => {
    const r = await sendMail({
      port: postfixA.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net', 'carol@example.org'],
      data: message('e2e-4'),
    });
    const rcpt = r.replies.filter((x) => x.command.startsWith('RCPT'));
    assert.deepEqual(
      rcpt.map((x) => x.code),
      [250, 452],
    );
    assert.match(rcpt[1]!.text, /4\.5\.3/);
  });
});
