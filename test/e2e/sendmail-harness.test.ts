/**
 * The private Sendmail of test/helpers/sendmail.ts, without a milter: it
 * starts in seconds although this machine's host name may be unqualified,
 * relays to the sink, leaves the machine's name files alone, and stop()
 * leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { type SendmailInstance, startSendmail } from '../helpers/sendmail.js';
import { sendMail } from '../helpers/smtp-client.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

const MESSAGE =
  'From: Alice <alice@origin.test>\r\nTo: Bob <bob@remote.test>\r\n' +
  'Subject: harness\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\n' +
  'Message-ID: <harness-1@origin.test>\r\n\r\nHello Bob.\r\n\r\nSecond paragraph.\r\n';

describe('Sendmail harness (no milter)', () => {
  let sink: SmtpSink;
  let sm: SendmailInstance;
  let startMs = 0;
  const etcHosts = readFileSync('/etc/hosts', 'latin1');

  before(async () => {
    sink = await startSmtpSink();
    const t0 = performance.now();
    sm = await startSendmail({ relayPort: sink.port, hostname: 'mta-h.test' });
    startMs = performance.now() - t0;
  });

  after(async () => {
    await sm?.stop();
    await sink?.close();
  });

  test('greets well within the 60 s Sendmail sleeps when its host name is unqualified', () => {
    // Generous for a loaded machine; the download on a cold cache is included.
    assert.ok(startMs < 30_000, `started in ${startMs.toFixed(0)} ms`);
  });

  test('relays a message to the sink byte for byte below its own Received line', async () => {
    const r = await sendMail({
      port: sm.smtpPort,
      from: 'alice@origin.test',
      to: ['bob@remote.test'],
      data: MESSAGE,
    });
    assert.equal(r.dataReply?.code, 250, JSON.stringify(r.replies));
    const [got] = await sink.waitFor(1, 30_000);
    assert.deepEqual([got!.mailFrom, got!.rcptTo], ['alice@origin.test', ['bob@remote.test']]);
    const text = got!.data.toString('latin1');
    assert.match(
      text,
      /^Received: from client\.test \(mta-h\.test \[127\.0\.0\.1\]\)\r\n\tby mta-h\.test /,
    );
    assert.ok(text.endsWith(MESSAGE), text);
  });

  test("the machine's /etc/hosts and host name are untouched (the private ones live in a namespace)", () => {
    assert.equal(readFileSync('/etc/hosts', 'latin1'), etcHosts);
    assert.notEqual(hostname(), 'mta-h.test');
  });

  test('stop() ends every process of the instance and removes its directory', async () => {
    const running = sm.processes();
    assert.ok(running.length >= 1, 'the daemon runs');
    await sm.stop();
    // Zombies waiting for PID 1 to reap them have left the namespace and do not count.
    assert.deepEqual(sm.processes(), []);
    assert.equal(existsSync(sm.dir), false);
  });
});
