// Spoofed Authentication-Results through real Postfix: Postfix hands the
// milter header values with its own folding and applies our deletions by
// index among fields of the same name, so the mix of forgeries (folded,
// commented, quoted, in any case) and results of other hosts is checked at
// the sink, as a recipient's mail client would read it.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeDomainPki } from '../../src/pki/keygen-files.js';
import { type ServingMilter, startServe } from '../helpers/cli.js';
import { delivered } from '../helpers/gateway-fixture.js';
import { type PostfixInstance, startPostfix } from '../helpers/postfix.js';
import {
  AUTHSERV_ID,
  protectedByOrg,
  type SecurityPki,
  securityPki,
} from '../helpers/security-fixture.js';
import { sendMail } from '../helpers/smtp-client.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

const FORGED = [
  `Authentication-Results: ${AUTHSERV_ID}; smime=pass`,
  'Authentication-Results: MX.Example.NET;\r\n\tsmime=pass',
  `Authentication-Results:\r\n ${AUTHSERV_ID}\r\n ; smime=pass`,
  `Authentication-Results: (a (b) c) ${AUTHSERV_ID}; smime=pass`,
  `Authentication-Results: (a; b) ${AUTHSERV_ID}; smime=pass`,
  `Authentication-Results: "${AUTHSERV_ID}"; smime=pass`,
];
const KEPT = [
  'Authentication-Results: relay.example.com; spf=pass smtp.mailfrom=example.org',
  `Authentication-Results: ${AUTHSERV_ID}.evil.example; smime=pass`,
  `Authentication-Results: (${AUTHSERV_ID}) mx.example.com; dkim=pass`,
];

describe('spoofed Authentication-Results through real Postfix', () => {
  let pki: SecurityPki;
  let dir: string;
  let sink: SmtpSink;
  let milter: ServingMilter;
  let postfix: PostfixInstance;

  before(async () => {
    [pki, dir, sink] = await Promise.all([
      securityPki(),
      mkdtemp(join(tmpdir(), 'domsec-ar-pf-')),
      startSmtpSink(),
    ]);
    await writeDomainPki(join(dir, 'net'), 'example.net', pki.net);
    milter = await startServe({
      DOMSEC_LOCAL_DOMAINS: 'example.net',
      DOMSEC_KEYS_DIR: join(dir, 'net'),
      DOMSEC_TRUST_ANCHORS: join(pki.dir, 'anchors.pem'),
      // The test client on loopback must count as outside.
      DOMSEC_TRUSTED_NETWORKS: '192.0.2.0/24',
      DOMSEC_AUTHSERV_ID: AUTHSERV_ID,
    });
    postfix = await startPostfix({ relayPort: sink.port, milter: milter.address });
  });

  after(async () => {
    await postfix?.stop();
    await milter?.stop();
    await sink?.close();
    await pki?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('every forgery removed, the results of other hosts kept in order, ours on top (smime=pass)', async () => {
    const inner = Buffer.from(
      'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: results\r\nMessage-ID: <ar-pf@example.org>\r\n\r\nHello Bob\r\n',
    );
    const signed = await protectedByOrg(pki, inner);
    // Forgeries and other results interleaved, as relays on the way might have added them.
    const fields = FORGED.flatMap((f, i) => (KEPT[i] ? [f, KEPT[i]] : [f]));
    const data = Buffer.concat([Buffer.from(fields.map((f) => `${f}\r\n`).join('')), signed]);
    const r = await sendMail({
      port: postfix.smtpPort,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      data,
    });
    assert.equal(r.dataReply?.code, 250, JSON.stringify(r.replies));
    const got = await delivered(sink, 'ar-pf');
    const results = got.headers().get('authentication-results') ?? [];
    const flat = (s: string) => s.replace(/\s+/g, ' ').trim();
    assert.equal(results.length, 1 + KEPT.length, results.join('\n'));
    assert.match(results[0]!, /^mx\.example\.net;\s+smime=pass\s/);
    assert.deepEqual(
      results.slice(1).map(flat),
      KEPT.map((k) => flat(k.slice(k.indexOf(':') + 1))),
    );
    assert.ok(got.body().toString().includes('Hello Bob'));
  });
});
