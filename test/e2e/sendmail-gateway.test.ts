/**
 * The gateway suite of gateway.test.ts through real Sendmail daemons instead
 * of Postfix: Sendmail A in front of example.org's outbound milter, Sendmail
 * B in front of example.net's inbound milter, each built from sendmail-cf
 * with the INPUT_MAIL_FILTER lines of deploy/sendmail/domsec-milter.mc.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ServingMilter, startServe } from '../helpers/cli.js';
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
import { freePort } from '../helpers/ports.js';
import { type SendmailInstance, startSendmail } from '../helpers/sendmail.js';
import { deployedMilterMc } from '../helpers/sendmail-mc.js';
import { type SendMailResult, sendMail } from '../helpers/smtp-client.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

const rcptCodes = (r: SendMailResult): number[] =>
  r.replies.filter((x) => x.command.startsWith('RCPT')).map((x) => x.code);

describe('the gateway between two domains through real Sendmail daemons', () => {
  let domains: GatewayDomains;
  let sinkA: SmtpSink;
  let sinkB: SmtpSink;
  let sendmailA: SendmailInstance;
  let sendmailB: SendmailInstance;
  const extra: { stop(): Promise<unknown> }[] = [];

  // The SMTP dialogue Sendmail logged, for a failed assertion's message.
  const traffic = (): string => `\nSendmail A:\n${sendmailA.traffic()}`;

  before(async () => {
    [domains, sinkA, sinkB] = await Promise.all([
      startGatewayDomains(),
      startSmtpSink(),
      startSmtpSink(),
    ]);
    [sendmailA, sendmailB] = await Promise.all([
      startSendmail({
        relayPort: sinkA.port,
        milterMc: deployedMilterMc(domains.milterA.port),
        hostname: 'mta-a.test',
      }),
      startSendmail({
        relayPort: sinkB.port,
        milterMc: deployedMilterMc(domains.milterB.port),
        hostname: 'mta-b.test',
      }),
    ]);
  });

  after(async () => {
    await Promise.all([sendmailA?.stop(), sendmailB?.stop(), ...extra.map((x) => x.stop())]);
    await domains?.stop();
    await Promise.all([sinkA?.close(), sinkB?.close()]);
  });

  test('alice@example.org -> bob@example.net leaves signed and encrypted, arrives decrypted with smime=pass', async () => {
    const sent = await sendMail({
      port: sendmailA.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      data: message('sm-1'),
    });
    assert.equal(sent.dataReply?.code, 250, JSON.stringify(sent.replies));
    // The milter logs Sendmail's queue id: the {i} macro reached it at end of message.
    const queueId = /^2\.0\.0 (\w+) Message accepted/.exec(sent.dataReply!.text)?.[1];
    assert.ok(queueId, sent.dataReply!.text);
    const logged = domains.milterA
      .output()
      .split('\n')
      .filter((l) => l.includes(`"queue":"${queueId}"`));
    assert.match(
      logged.join('\n'),
      /"direction":"outbound","action":"sign\+encrypt","outcome":"ok"/,
    );
    const out = await delivered(sinkA, 'sm-1');
    await assertSignedAndEncrypted(out, domains.keys);

    const inbound = await sendMail({
      port: sendmailB.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      data: withSpoofedResult(out.data),
    });
    assert.equal(inbound.dataReply?.code, 250, JSON.stringify(inbound.replies));
    assertArrivedVerified(await delivered(sinkB, 'sm-1'), 'figures sm-1', domains);
  });

  test('a tampered signed message arrives with smime=fail', async () => {
    const sent = await sendMail({
      port: sendmailA.smtpPort,
      from: 'alice@example.org',
      to: ['dave@example.info'],
      data: message('sm-2', 'Dave <dave@example.info>'),
    });
    assert.equal(sent.dataReply?.code, 250, JSON.stringify(sent.replies));
    const signed = await delivered(sinkA, 'sm-2');
    const r = await sendMail({
      port: sendmailB.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      data: tampered(signed),
    });
    assert.equal(r.dataReply?.code, 250);
    const got = await delivered(sinkB, 'sm-2');
    assert.match(got.header('authentication-results') ?? '', TAMPERED_RESULT);
  });

  test('encryption required without a certificate: 550 for that recipient only, the others delivered', async () => {
    const r = await sendMail({
      port: sendmailA.smtpPort,
      from: 'alice@example.org',
      to: ['carol@example.com', 'bob@example.net'],
      data: message('sm-3'),
    });
    assert.deepEqual(rcptCodes(r), [550, 250], traffic());
    assert.match(
      r.replies.find((x) => x.code === 550)!.text,
      /^5\.7\.1 .*encryption to example\.com is required/,
    );
    assert.equal(r.dataReply?.code, 250);
    const got = await delivered(sinkA, 'sm-3');
    assert.deepEqual(got.rcptTo, ['bob@example.net']);
    await assertSignedAndEncrypted(got, domains.keys);
  });

  test('a recipient with a certificate and one without: one encrypted copy cannot serve both, 452', async () => {
    const r = await sendMail({
      port: sendmailA.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net', 'dave@example.info'],
      data: message('sm-5'),
    });
    assert.deepEqual(rcptCodes(r), [250, 452], traffic());
    assert.match(r.replies.find((x) => x.code === 452)!.text, /4\.5\.3 .*separately plain copy/);
  });

  test('local and remote recipients: 452 4.5.3 for the second class, delivered in a second transaction', async () => {
    const first = await sendMail({
      port: sendmailA.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net', 'carol@example.org'],
      data: message('sm-4'),
    });
    assert.deepEqual(rcptCodes(first), [250, 452], traffic());
    assert.match(first.replies.find((x) => x.code === 452)!.text, /4\.5\.3/);
    assert.equal(first.dataReply?.code, 250);
    // What a client does with a 452: the same message again, to the deferred recipient.
    const second = await sendMail({
      port: sendmailA.smtpPort,
      from: 'alice@example.org',
      to: ['carol@example.org'],
      data: message('sm-4b', 'Carol <carol@example.org>'),
    });
    assert.equal(second.dataReply?.code, 250, JSON.stringify(second.replies));
    const remote = await delivered(sinkA, 'sm-4');
    assert.deepEqual(remote.rcptTo, ['bob@example.net']);
    await assertSignedAndEncrypted(remote, domains.keys);
    const local = await delivered(sinkA, 'sm-4b');
    assert.deepEqual(local.rcptTo, ['carol@example.org']);
    assert.equal(local.header('content-type'), undefined, 'between our own users: untouched');
    assert.ok(local.body().toString().includes('figures are attached'));
  });

  test("milter down: Sendmail's F=T tempfails, and the client's retry goes through once it is back", async () => {
    const sink = await startSmtpSink();
    extra.push({ stop: () => sink.close() });
    const milterPort = await freePort(); // nothing listens here yet
    const mta = await startSendmail({
      relayPort: sink.port,
      milterMc: deployedMilterMc(milterPort),
      hostname: 'mta-c.test',
    });
    extra.push(mta);
    const mail = { port: mta.smtpPort, from: 'alice@example.org', to: ['bob@example.net'] };
    const down = await sendMail({ ...mail, data: message('sm-6') });
    // F=T: Sendmail cannot reach the filter and defers the transaction at MAIL FROM.
    const from = down.replies.find((x) => x.command.startsWith('MAIL'));
    assert.equal(from?.code, 451, JSON.stringify(down.replies));
    assert.match(from!.text, /^4\.3\.2 /);
    assert.equal(down.dataReply, undefined, 'the message was never accepted');

    // The same configuration as milterA, on the port Sendmail is configured with.
    const milter: ServingMilter = await startServe({
      ...domains.orgEnv,
      DOMSEC_LISTEN: `inet:127.0.0.1:${milterPort}`,
    });
    extra.push(milter);
    assert.equal(sink.messages.length, 0, 'nothing went out while the milter was down');
    const retry = await sendMail({ ...mail, data: message('sm-6') });
    assert.equal(retry.dataReply?.code, 250, JSON.stringify(retry.replies));
    await assertSignedAndEncrypted(await delivered(sink, 'sm-6'), domains.keys);
  });
});
