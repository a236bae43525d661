// Vouching (RFC 3183 3.1.2): our domain signature says "this message
// originated in our domain, and we checked its originator". An inside user
// (a trusted-network client: loopback, under `serve`'s default
// DOMSEC_TRUSTED_NETWORKS) who may have our domain sign their mail tries to
// have it sign what it cannot vouch for: someone else's From or Sender, an
// unreadable From, a subdomain, an originator signature that was altered or
// comes from a certificate nobody trusts. Through a real Postfix with
// `domsec-milter serve`: we are example.org, the recipient bob@example.net
// is at the sink; the SMTP reply at the end of DATA and what arrives are
// asserted, signatures checked by `openssl cms -verify` (not our code).
// Three gateways: defaults; DOMSEC_ON_FOREIGN_AUTHOR=accept;
// DOMSEC_ON_BAD_ORIGINATOR_SIGNATURE=accept (each also checked not to
// apply to the other kind).
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CertificateInfo } from '../../src/cms/certificate.js';
import {
  certificatePem,
  type DomainPki,
  generateDomainPki,
  generateKey,
  issueCertificate,
  type KeyUsageName,
  keyPem,
} from '../../src/pki/keygen.js';
import { writeDomainPki } from '../../src/pki/keygen-files.js';
import { type ServingMilter, startServe } from '../helpers/cli.js';
import { delivered } from '../helpers/gateway-fixture.js';
import { cmsSign, runTool, withTempDir } from '../helpers/openssl.js';
import { type PostfixInstance, startPostfix } from '../helpers/postfix.js';
import { type SendMailResult, sendMail } from '../helpers/smtp-client.js';
import { type SinkMessage, type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

const BODY = 'Hello Bob,\r\nplease pay invoice 4471 to the usual account.\r\n';
const FOREIGN =
  /^550 5\.7\.1 foreign-author: the author \(From or Sender\) is not in the domain we sign for$/;
const UNREADABLE = /^550 5\.7\.1 foreign-author: the author cannot be read /;
const DOES_NOT_VERIFY =
  /^550 5\.7\.1 bad-originator-signature: the existing signature does not verify$/;
const NOT_TRUSTED =
  /^550 5\.7\.1 bad-originator-signature: the existing signature's certificate is not trusted$/;

/** A message from the given author header fields, Message-ID `<id@example.org>`. */
function message(id: string, authors: string, body = `Content-Type: text/plain\r\n\r\n${BODY}`) {
  return Buffer.from(
    `${authors}To: Bob <bob@example.net>\r\nSubject: vouching ${id}\r\nMessage-ID: <${id}@example.org>\r\nMIME-Version: 1.0\r\n${body}`,
  );
}

interface Originator {
  readonly certificate: CertificateInfo;
  readonly certPath: string;
  readonly keyPath: string;
}

const pemBody = (pem: string): string => pem.replace(/-----[A-Z ]+-----|\s/g, '');

/** openssl's view of a signed message: verified against `caFile`, the signer certificates, the content. */
function opensslVerify(
  data: Buffer,
  caFile: string,
): Promise<{ ok: boolean; signers: string[]; content: Buffer; stderr: string }> {
  return withTempDir(async (dir) => {
    const inPath = join(dir, 'in.eml');
    const outPath = join(dir, 'out');
    const signersPath = join(dir, 'signers.pem');
    await writeFile(inPath, data);
    const r = await runTool('openssl', [
      'cms',
      '-verify',
      '-in',
      inPath,
      '-inform',
      'SMIME',
      '-CAfile',
      caFile,
      '-signer',
      signersPath,
      '-out',
      outPath,
    ]);
    const read = (p: string) => readFile(p).catch(() => Buffer.alloc(0));
    const signers = (await read(signersPath)).toString().match(/-----BEGIN CERTIFICATE-----[^-]+/g);
    return {
      ok: r.code === 0,
      signers: (signers ?? []).map(pemBody),
      content: await read(outPath),
      stderr: r.stderr,
    };
  });
}

/** The body and every header field as sent: Postfix adds only its own trace fields. */
function assertAsSent(got: SinkMessage, sent: Buffer): void {
  const split = (b: Buffer) => b.indexOf('\r\n\r\n');
  assert.ok(got.body().equals(sent.subarray(split(sent) + 4)), 'body delivered as it came');
  const head = got.data.toString('latin1', 0, split(got.data) + 2);
  for (const field of sent.toString('latin1', 0, split(sent)).split(/\r\n(?![ \t])/))
    assert.ok(head.includes(`${field}\r\n`), `header kept as sent: ${field}\n${head}`);
}

describe('outbound vouching through real Postfix: our domain signs only what it can vouch for', () => {
  let dir: string;
  let org: DomainPki;
  let sink: SmtpSink;
  /** Our domain CA, for openssl to verify our signature. */
  let ourCa: string;
  /** The CA of example.org's users, the one DOMSEC_TRUST_ANCHORS names. */
  let usersCa: string;
  /** alice@example.org's personal certificate from the users CA. */
  let alice: Originator;
  /** A self-signed certificate for alice@example.org: anyone can make one. */
  let selfSigned: Originator;
  type Gateway = { milter: ServingMilter; postfix: PostfixInstance };
  let defaults: Gateway;
  let foreignAccept: Gateway;
  let badSignatureAccept: Gateway;
  /** Message ids refused with a 550: none may reach the sink. */
  const refused: string[] = [];

  before(async () => {
    [dir, sink, org] = await Promise.all([
      mkdtemp(join(tmpdir(), 'domsec-vouching-')),
      startSmtpSink(),
      generateDomainPki('example.org'),
    ]);
    const [caKey, aliceKey, selfKey] = await Promise.all([
      generateKey('rsa-2048'),
      generateKey('rsa-2048'),
      generateKey('rsa-2048'),
    ]);
    const usersCaCert = await issueCertificate({
      commonName: 'example.org users CA',
      organization: 'example.org',
      publicKey: caKey.publicKey,
      selfKey: caKey.privateKey,
      ca: true,
      keyUsage: ['keyCertSign', 'cRLSign'],
    });
    const personal = {
      commonName: 'Alice',
      organization: 'example.org',
      rfc822Names: ['alice@example.org'],
      keyUsage: ['digitalSignature', 'nonRepudiation'] satisfies KeyUsageName[],
      emailProtection: true,
    };
    const [aliceCert, selfCert] = await Promise.all([
      issueCertificate({
        ...personal,
        publicKey: aliceKey.publicKey,
        issuer: { certificate: usersCaCert, privateKey: caKey.privateKey },
      }),
      issueCertificate({
        ...personal,
        publicKey: selfKey.publicKey,
        selfKey: selfKey.privateKey,
      }),
    ]);
    const written = await writeDomainPki(join(dir, 'keys'), 'example.org', org);
    ourCa = written.caCertificate;
    usersCa = join(dir, 'users-ca.pem');
    const originator = async (
      name: string,
      certificate: CertificateInfo,
      key: { privateKey: KeyObject },
    ): Promise<Originator> => {
      const certPath = join(dir, `${name}.crt.pem`);
      const keyPath = join(dir, `${name}.key.pem`);
      await writeFile(certPath, certificatePem(certificate));
      await writeFile(keyPath, keyPem(key.privateKey), { mode: 0o600 });
      return { certificate, certPath, keyPath };
    };
    [alice, selfSigned] = await Promise.all([
      originator('alice', aliceCert, aliceKey),
      originator('self-signed', selfCert, selfKey),
      writeFile(usersCa, certificatePem(usersCaCert)),
    ]);
    const env = {
      DOMSEC_LOCAL_DOMAINS: 'example.org',
      DOMSEC_KEYS_DIR: join(dir, 'keys'),
      DOMSEC_TRUST_ANCHORS: usersCa,
      DOMSEC_AUTHSERV_ID: 'mx.example.org',
    };
    const gateway = async (extra: Record<string, string>): Promise<Gateway> => {
      const milter = await startServe({ ...env, ...extra });
      return {
        milter,
        postfix: await startPostfix({ relayPort: sink.port, milter: milter.address }),
      };
    };
    [defaults, foreignAccept, badSignatureAccept] = await Promise.all([
      gateway({}),
      gateway({ DOMSEC_ON_FOREIGN_AUTHOR: 'accept' }),
      gateway({ DOMSEC_ON_BAD_ORIGINATOR_SIGNATURE: 'accept' }),
    ]);
  });

  after(async () => {
    const all = [defaults, foreignAccept, badSignatureAccept];
    await Promise.all(all.map((g) => g?.postfix.stop()));
    await Promise.all(all.map((g) => g?.milter.stop()));
    await sink?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** alice@example.org (inside) submits `data` to bob@example.net. */
  async function submit(g: Gateway, data: Buffer): Promise<SendMailResult> {
    return sendMail({
      port: g.postfix.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      data,
    });
  }

  const reply = (r: SendMailResult): string =>
    r.dataReply ? `${r.dataReply.code} ${r.dataReply.text}` : JSON.stringify(r.replies);

  async function assertRefused(g: Gateway, id: string, data: Buffer, expected: RegExp) {
    refused.push(id);
    const r = await submit(g, data);
    assert.match(reply(r), expected);
  }

  /** Delivered as a multipart/signed whose one signer is our domain certificate; its content. */
  async function assertSignedByUs(got: SinkMessage): Promise<Buffer> {
    assert.match(got.header('content-type') ?? '', /^multipart\/signed;/);
    const v = await opensslVerify(got.data, ourCa);
    assert.ok(v.ok, v.stderr);
    assert.deepEqual(
      v.signers,
      [pemBody(certificatePem(org.signing.certificate))],
      'our signer only',
    );
    return v.content;
  }

  /** An originator's multipart/signed (made by openssl, as a mail client would) as a whole message. */
  async function signedBy(who: Originator, id: string, alter = false): Promise<Buffer> {
    const smime = await cmsSign(
      Buffer.from(`Content-Type: text/plain; charset=us-ascii\r\n\r\n${BODY}`),
      who,
      { crlfEol: true },
    );
    // openssl -crlfeol ends its MIME lines with CRLF, not the base64 ones: all CRLF, as on the wire.
    let text = smime.toString('latin1').replace(/\r?\n/g, '\r\n');
    // openssl's output starts with MIME-Version: the author fields go first.
    text = text.replace(/^MIME-Version: 1\.0\r\n/, '');
    if (alter) {
      assert.ok(text.includes('invoice 4471'));
      text = text.replace('invoice 4471', 'invoice 9999');
    }
    return Buffer.from(
      `From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: vouching ${id}\r\nMessage-ID: <${id}@example.org>\r\nMIME-Version: 1.0\r\n${text}`,
      'latin1',
    );
  }

  it('control: From alice@example.org is signed by us', async () => {
    const r = await submit(defaults, message('control', 'From: Alice <alice@example.org>\r\n'));
    assert.equal(r.dataReply?.code, 250, reply(r));
    const content = await assertSignedByUs(await delivered(sink, 'control'));
    assert.ok(content.toString().endsWith(BODY), content.toString());
  });

  it('From ceo@bank.example (envelope alice@example.org): refused, foreign-author', async () => {
    const id = 'foreign-from';
    await assertRefused(defaults, id, message(id, 'From: CEO <ceo@bank.example>\r\n'), FOREIGN);
  });

  it('From alice@example.org with Sender x@bank.example: refused', async () => {
    const id = 'foreign-sender';
    const authors = 'From: Alice <alice@example.org>\r\nSender: x@bank.example\r\n';
    await assertRefused(defaults, id, message(id, authors), FOREIGN);
  });

  it('two From mailboxes, one foreign: refused (in either order)', async () => {
    for (const [id, from] of [
      ['two-from-1', 'alice@example.org, ceo@bank.example'],
      ['two-from-2', 'CEO <ceo@bank.example>, Alice <alice@example.org>'],
      ['two-from-group', 'Board: alice@example.org, ceo@bank.example;'],
    ] as const)
      await assertRefused(defaults, id, message(id, `From: ${from}\r\n`), FOREIGN);
  });

  it('a From that does not parse, or two From fields: refused', async () => {
    for (const [id, authors] of [
      ['from-unparsable', 'From: alice@example.org <ceo@bank.example>\r\n'],
      ['from-two-fields', 'From: alice@example.org\r\nFrom: ceo@bank.example\r\n'],
    ] as const)
      await assertRefused(defaults, id, message(id, authors), UNREADABLE);
  });

  it('a subdomain author a@mail.example.org: refused (a subdomain is not the domain)', async () => {
    const id = 'subdomain';
    await assertRefused(defaults, id, message(id, 'From: a@mail.example.org\r\n'), FOREIGN);
  });

  it('DOMSEC_ON_FOREIGN_AUTHOR=accept: the foreign author is delivered as sent, without our signature', async () => {
    const data = message('foreign-accepted', 'From: CEO <ceo@bank.example>\r\n');
    const r = await submit(foreignAccept, data);
    assert.equal(r.dataReply?.code, 250, reply(r));
    const got = await delivered(sink, 'foreign-accepted');
    assert.match(got.header('content-type') ?? '', /^text\/plain/);
    assertAsSent(got, data);
  });

  it('DOMSEC_ON_FOREIGN_AUTHOR=accept does not accept a bad originator signature', async () => {
    const id = 'foreign-accept-bad-signature';
    await assertRefused(foreignAccept, id, await signedBy(alice, id, true), DOES_NOT_VERIFY);
  });

  it('signed by a trusted originator: our domain signature encapsulates theirs', async () => {
    const id = 'originator-valid';
    const sent = await signedBy(alice, id);
    const r = await submit(defaults, sent);
    assert.equal(r.dataReply?.code, 250, reply(r));
    const inner = await assertSignedByUs(await delivered(sink, id));
    // Inside ours, the originator's multipart/signed, still verifying as alice's.
    assert.match(inner.toString('latin1'), /^Content-Type: multipart\/signed;/i);
    const v = await opensslVerify(inner, usersCa);
    assert.ok(v.ok, v.stderr);
    assert.deepEqual(v.signers, [pemBody(certificatePem(alice.certificate))]);
    assert.ok(v.content.toString().endsWith(BODY), v.content.toString());
  });

  it('signed by a trusted originator, the signed content altered: refused, bad-originator-signature', async () => {
    const id = 'originator-altered';
    await assertRefused(defaults, id, await signedBy(alice, id, true), DOES_NOT_VERIFY);
  });

  it('signed by a self-signed certificate for alice@example.org: refused, not trusted', async () => {
    const id = 'originator-self-signed';
    await assertRefused(defaults, id, await signedBy(selfSigned, id), NOT_TRUSTED);
  });

  it('DOMSEC_ON_BAD_ORIGINATOR_SIGNATURE=accept: the altered message is delivered as sent, without our signature', async () => {
    const id = 'originator-altered-accepted';
    const sent = await signedBy(alice, id, true);
    const r = await submit(badSignatureAccept, sent);
    assert.equal(r.dataReply?.code, 250, reply(r));
    const got = await delivered(sink, id);
    assertAsSent(got, sent);
    // Its only signer is alice, and that signature still fails.
    const v = await opensslVerify(got.data, usersCa);
    assert.ok(!v.ok, 'the altered signature does not verify');
  });

  it('DOMSEC_ON_BAD_ORIGINATOR_SIGNATURE=accept does not accept a foreign author', async () => {
    const id = 'bad-signature-accept-foreign';
    await assertRefused(badSignatureAccept, id, message(id, 'From: ceo@bank.example\r\n'), FOREIGN);
  });

  it('nothing refused reached the sink', async () => {
    const gateways = [defaults, foreignAccept, badSignatureAccept];
    // Once every queue is empty, every message Postfix accepted has gone to the sink.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const queues = await Promise.all(gateways.map((g) => g.postfix.queueEntries()));
      if (queues.every((q) => q.length === 0)) break;
      assert.ok(Date.now() < deadline, `queues not empty: ${JSON.stringify(queues)}`);
      await sleep(100);
    }
    const ids = sink.messages.map((m) => m.header('message-id'));
    for (const id of refused) assert.ok(!ids.includes(`<${id}@example.org>`), `${id} delivered`);
    assert.equal(refused.length, 12, 'every refusal case ran');
  });
});
