/**
 * Our milter attached to a real private Postfix (smtpd_milters and
 * non_smtpd_milters), relaying to a sink: what Postfix delivers is asserted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ServingMilter, startServe } from '../helpers/cli.js';
import { startTestMilter, type TestMilter } from '../helpers/milter.js';
import { freePort } from '../helpers/ports.js';
import { type PostfixInstance, startPostfix } from '../helpers/postfix.js';
import { sendMail, sendMany } from '../helpers/smtp-client.js';
import { type SinkMessage, type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';
import { numberedBody, testApplication } from '../helpers/test-app.js';

function message(id: string, body: string, extraHeaders = ''): string {
  return (
    `From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: ${id}\r\n` +
    `Message-ID: <${id}@example.org>\r\n${extraHeaders}\r\n${body}`
  );
}

function byMessageId(messages: SinkMessage[], id: string): SinkMessage {
  const found = messages.find((m) => m.header('message-id') === `<${id}@example.org>`);
  assert.ok(found, `message ${id} not delivered`);
  return found;
}

describe('pass-through milter (domsec-milter serve) behind Postfix', () => {
  let sink: SmtpSink;
  let milter: ServingMilter;
  let pf: PostfixInstance;
  before(async () => {
    sink = await startSmtpSink();
    milter = await startServe({ DOMSEC_LOG_LEVEL: 'debug', DOMSEC_MODE: 'pass-through' });
    pf = await startPostfix({ relayPort: sink.port, milter: milter.address });
  });
  after(async () => {
    await pf?.stop();
    await milter?.stop();
    await sink?.close();
  });

  test('N messages in, N delivered, bytes unchanged, through smtpd and sendmail', async () => {
    // Lines stay under 998 octets: Postfix's SMTP client folds longer ones (smtp_line_length_limit).
    const bodies = Array.from(
      { length: 40 },
      (_, i) => `Message ${i}\r\n${`${'x'.repeat(76)}\r\n`.repeat(i * 3)}.dot line\r\n`,
    );
    const results = await sendMany(
      pf.smtpPort,
      bodies.map((b, i) => ({
        from: 'alice@example.org',
        to: ['bob@example.net'],
        data: message(`pt-${i}`, b),
      })),
      10,
    );
    assert.ok(
      results.every((r) => r.dataReply?.code === 250),
      'every message accepted',
    );
    await pf.sendmail(
      'alice@example.org',
      ['bob@example.net'],
      message('pt-local', 'local submission\r\n'),
    );
    const got = await sink.waitFor(41, 30_000);
    for (const [i, b] of bodies.entries())
      assert.equal(byMessageId(got, `pt-${i}`).body().toString(), b);
    assert.equal(byMessageId(got, 'pt-local').body().toString(), 'local submission\r\n');
    assert.ok(
      milter.output().split('milter negotiated').length > 2,
      'Postfix talked to the milter',
    );
    assert.doesNotMatch(await pf.log(), /milter.*(error|timeout|fail)/i);
  });
});

describe('modifying milter behind Postfix', () => {
  let sink: SmtpSink;
  let milter: TestMilter;
  let pf: PostfixInstance;
  before(async () => {
    sink = await startSmtpSink();
    milter = await startTestMilter(testApplication());
    pf = await startPostfix({ relayPort: sink.port, milter: milter.address });
  });
  after(async () => {
    await pf?.stop();
    await milter?.close();
    await sink?.close();
  });

  test('headers added, inserted, changed and deleted; body replaced by 1 MB; recipients swapped', async () => {
    const actions =
      'add-header,insert-header,change-subject,delete-header,replace-body=1048576,' +
      'add-rcpt=<carol@example.net>,del-rcpt=<bob@example.net>,echo-macros';
    const r = await sendMail({
      port: pf.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      data: message(
        'mod-1',
        'original body\r\n',
        `X-Delete-Me: bye\r\nX-Test-Action: ${actions}\r\n`,
      ),
    });
    assert.equal(r.dataReply?.code, 250);
    const [got] = await sink.waitFor(1, 30_000);
    assert.ok(got);
    assert.deepEqual(got.rcptTo, ['carol@example.net']);
    assert.equal(got.header('subject'), 'changed by milter');
    assert.equal(got.header('x-delete-me'), undefined);
    assert.equal(got.header('x-test-added'), 'yes');
    // Index 0 is before Postfix's own Received header.
    assert.match(got.data.toString('latin1', 0, 200), /^X-Test-Inserted: first\r\nReceived: /);
    assert.ok(got.body().equals(numberedBody(1048576)), 'body replaced byte for byte');
    const macros = got.header('x-test-macros') ?? '';
    assert.match(macros, /^i=[0-9A-F]+ j=\S+ auth_authen= daemon_name=\S+ client=127.0.0.1$/);
  });

  test('a refused recipient gets 550 at RCPT; the others are delivered', async () => {
    const before = sink.messages.length;
    const r = await sendMail({
      port: pf.smtpPort,
      from: 'alice@example.org',
      to: ['reject-me@example.net', 'bob@example.net'],
      data: message('rcpt-1', 'hello\r\n'),
    });
    const rcptReplies = r.replies.filter((s) => s.command.startsWith('RCPT'));
    assert.deepEqual(
      rcptReplies.map((s) => s.code),
      [550, 250],
    );
    assert.match(rcptReplies[0]!.text, /5\.7\.1 recipient refused by test/);
    assert.deepEqual(r.accepted, ['bob@example.net']);
    const got = await sink.waitFor(before + 1, 30_000);
    assert.deepEqual(byMessageId(got, 'rcpt-1').rcptTo, ['bob@example.net']);
  });

  test('reject and tempfail at end of message reach the SMTP client', async () => {
    const rejected = await sendMail({
      port: pf.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      data: message('rej-1', 'x\r\n', 'X-Test-Action: reject\r\n'),
    });
    assert.equal(rejected.dataReply?.code, 550);
    assert.match(rejected.dataReply?.text ?? '', /5\.7\.1 rejected by test milter/);
    const deferred = await sendMail({
      port: pf.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      data: message('tmp-1', 'x\r\n', 'X-Test-Action: tempfail\r\n'),
    });
    assert.equal(deferred.dataReply?.code, 451);
  });

  test('local submission (non_smtpd_milters) is filtered too', async () => {
    const before = sink.messages.length;
    await pf.sendmail(
      'alice@example.org',
      ['bob@example.net'],
      message('local-1', 'hi\r\n', 'X-Test-Action: add-header\r\n'),
    );
    const got = await sink.waitFor(before + 1, 30_000);
    assert.equal(byMessageId(got, 'local-1').header('x-test-added'), 'yes');
  });
});

describe("Postfix's milter_default_action when the milter is down", () => {
  let sink: SmtpSink;
  const instances: PostfixInstance[] = [];
  before(async () => {
    sink = await startSmtpSink();
  });
  after(async () => {
    await Promise.all(instances.map((p) => p.stop()));
    await sink?.close();
  });

  for (const [action, code] of [
    ['tempfail', 451],
    ['accept', 250],
  ] as const) {
    test(`${action}: the client gets ${code}`, async () => {
      const deadPort = await freePort();
      const pf = await startPostfix({
        relayPort: sink.port,
        milter: `inet:127.0.0.1:${deadPort}`,
        milterDefaultAction: action,
      });
      instances.push(pf);
      const before = sink.messages.length;
      const r = await sendMail({
        port: pf.smtpPort,
        from: 'alice@example.org',
        to: ['bob@example.net'],
        data: message(`down-${action}`, 'x\r\n'),
      });
      // Postfix answers at MAIL FROM when it cannot reach the milter at all.
      const first =
        r.replies.find((x) => x.command.startsWith('MAIL') && x.code !== 250) ?? r.dataReply;
      assert.equal(first?.code, code, JSON.stringify(r.replies));
      if (action === 'accept') {
        const got = await sink.waitFor(before + 1, 30_000);
        byMessageId(got, 'down-accept');
      } else {
        assert.equal(
          sink.messages.length,
          before,
          'nothing delivered: the client keeps the message',
        );
      }
    });
  }
});
