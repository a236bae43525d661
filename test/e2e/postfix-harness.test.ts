import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep, setImmediate as tick } from 'node:timers/promises';
import {
  type PostfixInstance,
  postfixAvailable,
  postfixProcesses,
  startPostfix,
} from '../helpers/postfix.js';
import { sendMail, sendMany } from '../helpers/smtp-client.js';
import { type SinkMessage, type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

function message(seq: string, body: string, extra = ''): { head: string; body: string } {
  const head =
    'From: Alice <alice@origin.test>\r\n' +
    'To: Bob <bob@remote.test>\r\n' +
    `Subject: harness message ${seq}\r\n` +
    'Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n' +
    `Message-ID: <${seq}@origin.test>\r\n` +
    `X-Seq: ${seq}\r\n` +
    extra;
  return { head, body };
}

function bySeq(messages: SinkMessage[], seq: string): SinkMessage {
  const found = messages.find((m) => m.header('x-seq') === seq);
  assert.ok(found, `message ${seq} not received`);
  return found;
}

/** Postfix only prepends its Received header: the original bytes must be the suffix. */
function assertRelayedIntact(got: SinkMessage, head: string, body: string): void {
  const original = Buffer.from(`${head}\r\n${body}`, 'utf8');
  assert.ok(got.body().equals(Buffer.from(body, 'utf8')), 'body changed in transit');
  assert.ok(got.data.subarray(got.data.length - original.length).equals(original), 'bytes changed');
  assert.match(got.data.subarray(0, got.data.length - original.length).toString(), /^Received: /);
}

describe('Postfix harness (no milter)', () => {
  let sink: SmtpSink;
  let pf: PostfixInstance;

  before(async () => {
    assert.ok(postfixAvailable(), 'Postfix is not installed or we are not root: run .ci/run');
    sink = await startSmtpSink();
    const t0 = performance.now();
    pf = await startPostfix({ relayPort: sink.port });
    console.log(`postfix start: ${(performance.now() - t0).toFixed(0)} ms`);
  });

  after(async () => {
    await pf?.stop();
    await sink?.close();
  });

  test('relays 20 SMTP sessions and one sendmail message byte for byte', async () => {
    const sent = Array.from({ length: 20 }, (_, i) =>
      message(`smtp-${i}`, `Hello number ${i}.\r\n\r\nSecond paragraph.\r\n`),
    );
    const results = await sendMany(
      pf.smtpPort,
      sent.map((m, i) => ({
        from: 'alice@origin.test',
        to: [`bob${i}@remote.test`],
        data: m.head + '\r\n' + m.body,
      })),
      5,
    );
    for (const r of results) assert.equal(r.dataReply?.code, 250, JSON.stringify(r.replies));
    const viaSendmail = message('sendmail-0', 'Submitted through sendmail.\r\n');
    await pf.sendmail(
      'alice@origin.test',
      ['carol@remote.test'],
      viaSendmail.head + '\r\n' + viaSendmail.body,
    );

    const got = await sink.waitFor(21, 30_000);
    assert.equal(got.length, 21);
    sent.forEach((m, i) => {
      const msg = bySeq(got, `smtp-${i}`);
      assert.equal(msg.mailFrom, 'alice@origin.test');
      assert.deepEqual(msg.rcptTo, [`bob${i}@remote.test`]);
      assertRelayedIntact(msg, m.head, m.body);
    });
    const sm = bySeq(got, 'sendmail-0');
    assert.deepEqual(sm.rcptTo, ['carol@remote.test']);
    assertRelayedIntact(sm, viaSendmail.head, viaSendmail.body);
    // The sink may see a message a moment before qmgr removes the queue file.
    for (let i = 0; i < 100 && (await pf.queueIds()).length > 0; i++) await sleep(20);
    assert.deepEqual(await pf.queueIds(), []);
  });

  test('8-bit bodies, leading dots and a 3 MB message arrive intact', async () => {
    const eight = message(
      '8bit',
      'Grüße aus Köln, naïve café — € 日本語\r\n',
      'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n',
    );
    const dots = message('dots', '.leading dot\r\n..two dots\r\n.\r\nend\r\n');
    const big = message('big', `${'x'.repeat(998)}\r\n.${'y'.repeat(997)}\r\n`.repeat(1536));
    const before = sink.messages.length;
    for (const m of [eight, dots, big]) {
      const r = await sendMail({
        port: pf.smtpPort,
        from: 'alice@origin.test',
        to: ['dave@remote.test'],
        data: m.head + '\r\n' + m.body,
      });
      assert.equal(r.dataReply?.code, 250, JSON.stringify(r.replies));
    }
    await pf.sendmail(
      'alice@origin.test',
      ['erin@remote.test'],
      dots.head.replace('X-Seq: dots', 'X-Seq: dots-sendmail') + '\r\n' + dots.body,
    );
    const got = await sink.waitFor(before + 4, 30_000);
    assertRelayedIntact(bySeq(got, '8bit'), eight.head, eight.body);
    assertRelayedIntact(bySeq(got, 'dots'), dots.head, dots.body);
    assert.ok(bySeq(got, 'dots-sendmail').body().equals(Buffer.from(dots.body)));
    assertRelayedIntact(bySeq(got, 'big'), big.head, big.body);
  });

  test('stop leaves no Postfix process for the config dir', async () => {
    const { configDir } = pf;
    assert.ok(postfixProcesses(configDir).length >= 2, 'master and its daemons should be running');
    const t0 = performance.now();
    await pf.stop();
    console.log(`postfix stop: ${(performance.now() - t0).toFixed(0)} ms`);
    assert.deepEqual(postfixProcesses(configDir), []);
    assert.equal(existsSync(configDir), false);
  });
});

describe('SMTP sink alone', () => {
  test('pipelined session written byte by byte', async () => {
    const sink = await startSmtpSink({
      rejectRcpt: (addr) => (addr.startsWith('nobody@') ? '550 5.1.1 no such user' : undefined),
    });
    try {
      // Commands, message and terminator all in one stream, as a pipelining
      // client that ignores the 354 would send them.
      const script =
        'EHLO byte.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<nobody@y.test>\r\n' +
        'RCPT TO:<b@y.test>\r\nDATA\r\nSubject: bytes\r\n\r\n' +
        '..dot\r\n...\r\nplain\r\n..\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n';
      const socket = connect({ port: sink.port, host: '127.0.0.1' });
      socket.setNoDelay(true);
      let replies = '';
      socket.on('data', (d: Buffer) => {
        replies += d.toString('latin1');
      });
      const closed = new Promise((resolve) => socket.on('close', resolve));
      await new Promise((resolve) => socket.once('connect', resolve));
      for (const byte of Buffer.from(script, 'latin1')) {
        socket.write(Buffer.of(byte));
        await tick();
      }
      await closed;
      const [msg] = await sink.waitFor(1, 2000);
      assert.ok(msg);
      assert.equal(msg.helo, 'byte.test');
      assert.equal(msg.mailFrom, 'a@x.test');
      assert.deepEqual(msg.rcptTo, ['b@y.test']);
      // Unstuffed: each stuffed leading dot loses exactly one dot.
      assert.equal(
        msg.data.toString('latin1'),
        'Subject: bytes\r\n\r\n.dot\r\n..\r\nplain\r\n.\r\n',
      );
      assert.equal(msg.header('subject'), 'bytes');
      const codes = replies
        .split('\r\n')
        .filter((l) => /^\d{3} /.test(l))
        .map((l) => l.slice(0, 3));
      assert.deepEqual(codes, [
        '220',
        '250',
        '250',
        '550',
        '250',
        '354',
        '250',
        '250',
        '250',
        '221',
      ]);
    } finally {
      await sink.close();
    }
  });

  test('client round trip: empty recipients, rejects and a 5 MB message', async () => {
    const sink = await startSmtpSink({ rejectRcpt: () => '550 5.7.1 refused' });
    try {
      const refused = await sendMail({
        port: sink.port,
        from: 'a@x.test',
        to: ['b@y.test'],
        data: 'x\r\n',
      });
      assert.deepEqual(refused.accepted, []);
      assert.equal(refused.dataReply, undefined);
      assert.deepEqual(
        refused.replies.map((r) => r.code),
        [220, 250, 250, 550, 221],
      );
    } finally {
      await sink.close();
    }
    const sink2 = await startSmtpSink();
    try {
      const data = `Subject: big\n\n${'.line of text that is fairly long, to look like mail\n'.repeat(100_000)}`;
      const r = await sendMail({ port: sink2.port, from: '', to: ['b@y.test'], data });
      assert.equal(r.dataReply?.code, 250);
      const [msg] = await sink2.waitFor(1);
      assert.equal(msg?.mailFrom, '');
      assert.equal(msg?.data.toString('utf8'), data.replaceAll('\n', '\r\n'));
    } finally {
      await sink2.close();
    }
  });
});
