// Decryption oracle through real Postfix: the client address and the
// non-SMTP (sendmail command) path are what Postfix tells the milter, so the
// claim "inside mail is never decrypted" is checked where the MTA decides it.
// example.net's `domsec-milter serve` runs twice: with the default trusted
// networks (127.0.0.0/8: the test client on loopback is inside) and with
// 192.0.2.0/24 (the same client is outside: the control).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { certificatePem } from '../../src/pki/keygen.js';
import { writeDomainPki } from '../../src/pki/keygen-files.js';
import { type ServingMilter, startServe } from '../helpers/cli.js';
import { delivered } from '../helpers/gateway-fixture.js';
import { type PostfixInstance, startPostfix } from '../helpers/postfix.js';
import {
  AUTHSERV_ID,
  encodings,
  plainMessage,
  protectedByOrg,
  SECRET,
  type SecurityPki,
  securityPki,
} from '../helpers/security-fixture.js';
import { sendMail } from '../helpers/smtp-client.js';
import type { SinkMessage, SmtpSink } from '../helpers/smtp-sink.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';

describe('decryption oracle through real Postfix', () => {
  let pki: SecurityPki;
  let dir: string;
  let sink: SmtpSink;
  /** Loopback clients are inside (default DOMSEC_TRUSTED_NETWORKS). */
  let inside: { milter: ServingMilter; postfix: PostfixInstance };
  /** Loopback clients are outside. */
  let outside: { milter: ServingMilter; postfix: PostfixInstance };

  before(async () => {
    [pki, dir, sink] = await Promise.all([
      securityPki(),
      mkdtemp(join(tmpdir(), 'domsec-oracle-pf-')),
      startSmtpSink(),
    ]);
    await writeDomainPki(join(dir, 'net'), 'example.net', pki.net);
    await writeFile(join(dir, 'org-ca.pem'), certificatePem(pki.org.ca.certificate));
    const env = {
      DOMSEC_LOCAL_DOMAINS: 'example.net',
      DOMSEC_KEYS_DIR: join(dir, 'net'),
      DOMSEC_TRUST_ANCHORS: join(dir, 'org-ca.pem'),
      DOMSEC_AUTHSERV_ID: AUTHSERV_ID,
    };
    const [m1, m2] = await Promise.all([
      startServe(env),
      startServe({ ...env, DOMSEC_TRUSTED_NETWORKS: '192.0.2.0/24' }),
    ]);
    const [p1, p2] = await Promise.all([
      startPostfix({ relayPort: sink.port, milter: m1.address }),
      startPostfix({ relayPort: sink.port, milter: m2.address }),
    ]);
    inside = { milter: m1, postfix: p1 };
    outside = { milter: m2, postfix: p2 };
  });

  after(async () => {
    await Promise.all([inside?.postfix.stop(), outside?.postfix.stop()]);
    await Promise.all([inside?.milter.stop(), outside?.milter.stop()]);
    await sink?.close();
    await pki?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Messages the milter logged as passed untouched. */
  const passed = (m: ServingMilter): number =>
    m
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"message"') && l.includes('"direction":"pass"')).length;

  const capture = (id: string): Promise<Buffer> => protectedByOrg(pki, plainMessage(id));

  /** The body arrived byte for byte as sent, with no result of ours and no plaintext. */
  function assertAsSent(got: SinkMessage, sent: Buffer): void {
    const sentBody = sent.subarray(sent.indexOf('\r\n\r\n') + 4);
    assert.ok(got.body().equals(sentBody), 'body delivered as it came');
    // Every header field as sent, folding included (Postfix only adds its own trace fields).
    const head = got.data.toString('latin1', 0, got.data.indexOf('\r\n\r\n') + 2);
    for (const field of sent.toString('latin1', 0, sent.indexOf('\r\n\r\n')).split(/\r\n(?![ \t])/))
      assert.ok(head.includes(`${field}\r\n`), `header kept as sent: ${field}`);
    const text = got.data.toString('latin1');
    for (const form of encodings(SECRET)) assert.ok(!text.includes(form), 'no plaintext');
    assert.ok(
      !(got.headers().get('authentication-results') ?? []).some((r) => r.startsWith(AUTHSERV_ID)),
    );
  }

  it('control: from outside (SMTP) to bob@example.net, the capture is decrypted', async () => {
    const r = await sendMail({
      port: outside.postfix.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      data: await capture('pf-control'),
    });
    assert.equal(r.dataReply?.code, 250, JSON.stringify(r.replies));
    const got = await delivered(sink, 'pf-control');
    assert.ok(got.body().toString().includes(SECRET), 'decrypted for our recipient');
    assert.match(got.header('authentication-results') ?? '', /^mx\.example\.net;\s+smime=pass/);
  });

  it('from outside (SMTP) to a remote recipient through us (relay): delivered as it came', async () => {
    const data = await capture('pf-relay');
    const r = await sendMail({
      port: outside.postfix.smtpPort,
      from: 'alice@example.org',
      to: ['eve@example.com'],
      data,
    });
    assert.equal(r.dataReply?.code, 250, JSON.stringify(r.replies));
    assertAsSent(await delivered(sink, 'pf-relay'), data);
  });

  it('from a trusted client (SMTP) to an internal mailbox: delivered as it came', async () => {
    const data = await capture('pf-inside-smtp');
    const r = await sendMail({
      port: inside.postfix.smtpPort,
      from: 'alice@example.org',
      to: ['mallory@example.net'],
      data,
    });
    assert.equal(r.dataReply?.code, 250, JSON.stringify(r.replies));
    assertAsSent(await delivered(sink, 'pf-inside-smtp'), data);
  });

  it('submitted with the sendmail command (non_smtpd_milters) to an internal mailbox: delivered as it came', async () => {
    const data = await capture('pf-inside-sendmail');
    const before = passed(inside.milter);
    await inside.postfix.sendmail('mallory@example.net', ['mallory@example.net'], data);
    assertAsSent(await delivered(sink, 'pf-inside-sendmail'), data);
    assert.equal(passed(inside.milter), before + 1, 'the milter saw it and let it pass');
  });
});
