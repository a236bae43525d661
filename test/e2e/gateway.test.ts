/**
 * Two domains on one machine, each with its own Postfix and domsec-milter:
 * example.org's outbound side signs and encrypts, example.net's inbound side
 * decrypts and verifies. Checked with openssl and at the sinks.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { certificatePem, generateDomainPki } from '../../src/pki/keygen.js';
import { writeDomainPki } from '../../src/pki/keygen-files.js';
import { type ServingMilter, startServe } from '../helpers/cli.js';
import { cmsDecrypt, cmsVerify } from '../helpers/openssl.js';
import { type PostfixInstance, startPostfix } from '../helpers/postfix.js';
import { sendMail } from '../helpers/smtp-client.js';
import { type SinkMessage, type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

const BODY = 'Hello Bob,\r\nthe figures are attached.\r\n';

function message(id: string, to = 'Bob <bob@example.net>', extra = ''): string {
  return `From: Alice <alice@example.org>\r\nTo: ${to}\r\nSubject: figures ${id}\r\nMessage-ID: <${id}@example.org>\r\n${extra}\r\n${BODY}`;
}

function byId(messages: SinkMessage[], id: string): SinkMessage {
  const m = messages.find((x) => x.header('message-id') === `<${id}@example.org>`);
  assert.ok(m, `message ${id} not delivered`);
  return m;
}

describe('the gateway between two domains through real Postfix instances', () => {
  let dir: string;
  let sinkA: SmtpSink;
  let sinkB: SmtpSink;
  let milterA: ServingMilter;
  let milterB: ServingMilter;
  let postfixA: PostfixInstance;
  let postfixB: PostfixInstance;
  let keys: { netEncryptCert: string; netEncryptKey: string; orgCa: string };
  let orgEncryption: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'domsec-gw-'));
    const [org, net] = await Promise.all([
      generateDomainPki('example.org'),
      generateDomainPki('example.net'),
    ]);
    await writeDomainPki(join(dir, 'org'), 'example.org', org);
    orgEncryption = org.encryption.certificate.fingerprint;
    await writeDomainPki(join(dir, 'net'), 'example.net', net);
    await mkdir(join(dir, 'partners'));
    await writeFile(
      join(dir, 'partners/example.net.pem'),
      certificatePem(net.encryption.certificate),
    );
    keys = {
      netEncryptCert: join(dir, 'net/example.net.encrypt.crt.pem'),
      netEncryptKey: join(dir, 'net/example.net.encrypt.key.pem'),
      orgCa: join(dir, 'org/ca/example.org.ca.crt.pem'),
    };
    [sinkA, sinkB] = await Promise.all([startSmtpSink(), startSmtpSink()]);
    milterA = await startServe({
      DOMSEC_LOCAL_DOMAINS: 'example.org',
      DOMSEC_KEYS_DIR: join(dir, 'org'),
      DOMSEC_PARTNER_CERTS: join(dir, 'partners'),
      DOMSEC_ENCRYPT_REQUIRED_DOMAINS: 'example.com',
      DOMSEC_AUTHSERV_ID: 'mx.example.org',
    });
    milterB = await startServe({
      DOMSEC_LOCAL_DOMAINS: 'example.net',
      DOMSEC_KEYS_DIR: join(dir, 'net'),
      DOMSEC_TRUST_ANCHORS: keys.orgCa,
      // Postfix B's test clients connect from 127.0.0.1: they must count as outside.
      DOMSEC_TRUSTED_NETWORKS: '192.0.2.0/24',
      DOMSEC_AUTHSERV_ID: 'mx.example.net',
    });
    postfixA = await startPostfix({ relayPort: sinkA.port, milter: milterA.address });
    postfixB = await startPostfix({ relayPort: sinkB.port, milter: milterB.address });
  });

  after(async () => {
    await Promise.all([postfixA?.stop(), postfixB?.stop()]);
    await Promise.all([milterA?.stop(), milterB?.stop()]);
    await Promise.all([sinkA?.close(), sinkB?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  test('alice@example.org -> bob@example.net leaves signed and encrypted, arrives decrypted with smime=pass', async () => {
    const sent = await sendMail({
      port: postfixA.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      data: message('e2e-1'),
    });
    assert.equal(sent.dataReply?.code, 250, JSON.stringify(sent.replies));
    const out = byId(await sinkA.waitFor(1, 30_000), 'e2e-1');
    assert.match(
      out.header('content-type') ?? '',
      /^application\/pkcs7-mime; smime-type=enveloped-data/,
    );
    assert.equal(out.data.indexOf(Buffer.from('figures are attached')), -1, 'nothing in clear');
    // The other S/MIME side: openssl decrypts with example.net's key and verifies example.org's domain signature.
    const decrypted = await cmsDecrypt(out.data, {
      certPath: keys.netEncryptCert,
      keyPath: keys.netEncryptKey,
    });
    assert.ok(decrypted.ok, decrypted.stderr);
    const verified = await cmsVerify(decrypted.content, { caFile: keys.orgCa });
    assert.ok(verified.ok, verified.stderr);
    assert.ok(verified.content.toString().endsWith(BODY));

    // Into example.net, with a spoofed result claiming to be mx.example.net.
    const spoofed = Buffer.concat([
      Buffer.from('Authentication-Results: mx.example.net; smime=pass\r\n'),
      out.data,
    ]);
    const inbound = await sendMail({
      port: postfixB.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      data: spoofed,
    });
    assert.equal(inbound.dataReply?.code, 250);
    const got = byId(await sinkB.waitFor(1, 30_000), 'e2e-1');
    assert.ok(got.body().toString().endsWith(BODY), got.body().toString());
    assert.equal(got.header('subject'), 'figures e2e-1');
    const results = got.headers().get('authentication-results') ?? [];
    assert.equal(results.length, 1, `one result, the spoofed one removed: ${results.join(' | ')}`);
    // Our signature carried example.org's encryption certificate: example.net kept it for mail back.
    const harvested = milterB
      .output()
      .split('\n')
      .filter((l) => l.includes('partner certificate harvested'))
      .map((l) => JSON.parse(l) as { domain: string; certificate: string });
    assert.deepEqual(
      harvested.map((h) => [h.domain, h.certificate]),
      [['example.org', orgEncryption]],
    );
    assert.match(
      results[0]!,
      /^mx\.example\.net;\s+smime=pass\s+body\.smime-identifier=domain-signing-authority@example\.org\s+body\.smime-serial=[0-9A-F]+\s+body\.smime-issuer="CN=example\.org domain CA, O=example\.org"$/,
    );
  });

  test('a tampered signed message arrives with smime=fail', async () => {
    // example.com has no certificate but requires none here: signed only, then altered in transit.
    const sent = await sendMail({
      port: postfixA.smtpPort,
      from: 'alice@example.org',
      to: ['dave@example.info'],
      data: message('e2e-2', 'Dave <dave@example.info>'),
    });
    assert.equal(sent.dataReply?.code, 250);
    const signed = byId(await sinkA.waitFor(2, 30_000), 'e2e-2');
    assert.match(signed.header('content-type') ?? '', /^multipart\/signed/);
    const tampered = Buffer.from(
      signed.data.toString('latin1').replace('figures are attached', 'figures are ATTACHED'),
      'latin1',
    );
    const r = await sendMail({
      port: postfixB.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      data: tampered,
    });
    assert.equal(r.dataReply?.code, 250);
    const got = byId(await sinkB.waitFor(2, 30_000), 'e2e-2');
    assert.match(
      got.header('authentication-results') ?? '',
      /^mx\.example\.net;\s+smime=fail\s+\(the content does not match the signed message digest\)/,
    );
  });

  test('encryption required without a certificate: 550 for that recipient only, the others delivered', async () => {
    const before = sinkA.messages.length;
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
    const got = byId(await sinkA.waitFor(before + 1, 30_000), 'e2e-3');
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
