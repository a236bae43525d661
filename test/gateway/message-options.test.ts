// Message format options end to end through two in-process gateways
// (example.org outbound -> example.net inbound), applying each milter's
// edits the way the MTA does: header protection, opaque signatures, kept
// signatures.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { headerValue, splitMessage } from '../../src/mime/index.js';
import { certificatePem, type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { applyEdits, runMessage, startGatewayMilter } from '../helpers/gateway-app.js';
import type { TestMilter } from '../helpers/milter.js';

const MESSAGE = Buffer.from(
  'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: Merger plans\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThe merger closes on Friday.\r\n',
);

const header = (m: Buffer, name: string) => {
  const f = splitMessage(m).headers.filter((h) => h.name.toLowerCase() === name);
  return f.map((h) => headerValue(h).trim());
};

let dir: string;
let org: DomainPki;
let net: DomainPki;
const milters: TestMilter[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'domsec-options-'));
  [org, net] = await Promise.all([
    generateDomainPki('example.org'),
    generateDomainPki('example.net'),
  ]);
  await mkdir(join(dir, 'partners'));
  await writeFile(join(dir, 'partners', 'net.pem'), certificatePem(net.encryption.certificate));
  await writeFile(join(dir, 'org-ca.pem'), certificatePem(org.ca.certificate));
});

after(async () => {
  for (const m of milters) await m.close();
  await rm(dir, { recursive: true, force: true });
});

async function outbound(env: Record<string, string>, message = MESSAGE): Promise<Buffer> {
  const m = await startGatewayMilter('example.org', org, env);
  milters.push(m);
  const o = await runMessage(m, message, {
    from: '<alice@example.org>',
    rcpts: ['<bob@example.net>'],
    address: '127.0.0.1',
  });
  assert.equal(o.decision?.type, 'accept');
  return applyEdits(message, o.edits);
}

async function inbound(env: Record<string, string>, message: Buffer): Promise<Buffer> {
  const m = await startGatewayMilter('example.net', net, {
    DOMSEC_TRUSTED_NETWORKS: '192.0.2.0/24',
    DOMSEC_TRUST_ANCHORS: join(dir, 'org-ca.pem'),
    DOMSEC_AUTHSERV_ID: 'mx.example.net',
    ...env,
  });
  milters.push(m);
  const o = await runMessage(m, message, {
    from: '<alice@example.org>',
    rcpts: ['<bob@example.net>'],
    address: '198.51.100.7',
  });
  assert.equal(o.decision?.type, 'accept');
  return applyEdits(message, o.edits);
}

describe('message format options', () => {
  it('header protection: Subject hidden in transit, restored on arrival', async () => {
    const sent = await outbound({
      DOMSEC_PARTNER_CERTS: join(dir, 'partners'),
      DOMSEC_HEADER_PROTECTION: 'yes',
    });
    assert.deepEqual(header(sent, 'subject'), ['[...]']);
    assert.equal(sent.indexOf('Merger plans'), -1, 'the subject travels encrypted');
    assert.equal(sent.indexOf('merger closes'), -1);
    const arrived = await inbound({}, sent);
    assert.deepEqual(header(arrived, 'subject'), ['Merger plans']);
    assert.match(header(arrived, 'authentication-results')[0] ?? '', /smime=pass/);
    assert.ok(splitMessage(arrived).body.toString().includes('The merger closes on Friday.'));
  });

  it('without header protection the Subject stays visible', async () => {
    const sent = await outbound({ DOMSEC_PARTNER_CERTS: join(dir, 'partners') });
    assert.deepEqual(header(sent, 'subject'), ['Merger plans']);
  });

  it('opaque signatures: application/pkcs7-mime signed-data', async () => {
    const sent = await outbound({ DOMSEC_SIGNATURE_FORMAT: 'opaque' });
    assert.match(
      header(sent, 'content-type')[0] ?? '',
      /^application\/pkcs7-mime; smime-type=signed-data/,
    );
    const arrived = await inbound({}, sent);
    assert.match(header(arrived, 'authentication-results')[0] ?? '', /smime=pass/);
    assert.match(header(arrived, 'content-type')[0] ?? '', /^text\/plain/);
  });

  it('kept signatures: verified, and still multipart/signed for the client', async () => {
    const sent = await outbound({});
    assert.match(header(sent, 'content-type')[0] ?? '', /^multipart\/signed/);
    const kept = await inbound({ DOMSEC_KEEP_SIGNATURES: 'yes' }, sent);
    assert.match(header(kept, 'content-type')[0] ?? '', /^multipart\/signed/);
    assert.match(header(kept, 'authentication-results')[0] ?? '', /smime=pass/);
    const stripped = await inbound({}, sent);
    assert.match(header(stripped, 'content-type')[0] ?? '', /^text\/plain/);
  });
});
