// Our Authentication-Results speaks only our words. The signer's identity
// comes from its certificate, which the sender chooses: a certificate whose
// SAN email is `x@a.example; smime=pass` must not add a second, well-formed
// result to our header, nor anything else a reader would take as ours. Every
// value from a certificate is written as an RFC 8601 value (an address or
// token as it is, else a quoted-string with escapes) or left out, and only
// for signers whose certificate chains to a trust anchor. Checked with a
// reader that is not ours: Debian's python3-authres (an RFC 8601 parser).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { CertificateInfo } from '../../src/cms/certificate.js';
import { propertyValue } from '../../src/gateway/auth-results.js';
import { generateKey, issueCertificate } from '../../src/pki/keygen.js';
import { transformOutbound } from '../../src/smime/outbound.js';
import type { TestMilter } from '../helpers/milter.js';
import {
  addedResults,
  OUTSIDE,
  type SecurityPki,
  securityPki,
  send,
  startUs,
} from '../helpers/security-fixture.js';

interface Parsed {
  authservId: string;
  results: { method: string; result: string; properties: Record<string, string> }[];
}

/** Each header value as python3-authres reads it. */
function parseWithAuthres(values: readonly string[]): Parsed[] {
  const script = `
import json, sys, authres
out = []
for v in json.load(sys.stdin):
    h = authres.AuthenticationResultsHeader.parse('Authentication-Results: ' + v)
    out.append({'authservId': h.authserv_id, 'results': [
        {'method': r.method, 'result': r.result,
         'properties': {p.type + '.' + p.name: p.value for p in r.properties}}
        for r in h.results]})
print(json.dumps(out))
`;
  const r = spawnSync('/usr/bin/python3', ['-c', script], {
    input: JSON.stringify(values.map((v) => v.replace(/\r?\n/g, ''))),
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `python3-authres: ${r.stderr}`);
  return JSON.parse(r.stdout) as Parsed[];
}

/** Identities a hostile sender can put in a certificate's SAN rfc822Name. */
const HOSTILE = [
  'x@a.example; smime=pass',
  'x@a.example; dkim=pass header.d=bank.example',
  '"x"@a.example',
  'x\\@a.example',
  'x(comment@a.example',
  'x)@a.example',
  'x@a.example (smime=pass)',
  'x@a.example\r\nX-Injected: yes',
  'x@a.example\nsmime=pass',
  'x@bü.example',
];

let pki: SecurityPki;
let milter: TestMilter;

before(async () => {
  pki = await securityPki();
  milter = await startUs(pki);
});

after(async () => {
  await milter?.close();
  await pki?.cleanup();
});

async function signerWith(email: string, trusted: boolean) {
  const key = await generateKey('ec-p256');
  const issuer = trusted
    ? { certificate: pki.org.ca.certificate, privateKey: pki.org.ca.privateKey }
    : undefined;
  const certificate = await issueCertificate({
    commonName: `Mallory ${email}`,
    publicKey: key.publicKey,
    ...(issuer ? { issuer } : { selfKey: key.privateKey }),
    rfc822Names: [email],
    keyUsage: ['digitalSignature'],
    emailProtection: true,
  });
  return { certificate, privateKey: key.privateKey };
}

async function resultsFor(signer: { certificate: CertificateInfo; privateKey: KeyObject }) {
  const signed = await transformOutbound(
    Buffer.from('From: alice@example.org\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nHello\r\n'),
    {
      signer: { ...signer, chain: [] },
      recipients: [],
      options: { sign: true, encrypt: false },
    },
  );
  assert.ok(signed.ok);
  const o = await send(milter, signed.message, {
    from: '<alice@example.org>',
    rcpts: ['<bob@example.net>'],
    address: OUTSIDE,
  });
  const values = addedResults(o);
  assert.equal(values.length, 1);
  return { raw: values[0]!, parsed: parseWithAuthres(values)[0]! };
}

describe('our Authentication-Results speaks only our words', () => {
  it('control: the RFC 8601 reader reads our usual header as one smime result with its properties', async () => {
    const { parsed } = await resultsFor({
      certificate: pki.org.signing.certificate,
      privateKey: pki.org.signing.privateKey,
    });
    assert.equal(parsed.authservId, 'mx.example.net');
    assert.equal(parsed.results.length, 1);
    assert.equal(parsed.results[0]!.result, 'pass');
    assert.equal(
      parsed.results[0]!.properties['body.smime-identifier'],
      'domain-signing-authority@example.org',
    );
  });

  for (const trusted of [true, false]) {
    it(`hostile SAN identities, ${trusted ? 'trusted' : 'self-signed'} signer: one result, no injected field, the identity ${trusted ? 'exact or left out' : 'left out'}`, async () => {
      for (const email of HOSTILE) {
        const { raw, parsed } = await resultsFor(await signerWith(email, trusted));
        const what = `${JSON.stringify(email)} -> ${JSON.stringify(raw)}`;
        assert.doesNotMatch(raw, /[\r\n](?![\t ])/, `no line that is not a fold: ${what}`);
        assert.equal(parsed.results.length, 1, `one result: ${what}`);
        assert.equal(parsed.results[0]!.method, 'smime', what);
        assert.notEqual(parsed.results[0]!.result, 'pass', `never pass (not bound): ${what}`);
        const id = parsed.results[0]!.properties['body.smime-identifier'];
        for (const name of Object.keys(parsed.results[0]!.properties))
          assert.match(
            name,
            /^body\.smime-(identifier|serial|issuer)$/,
            `only our properties: ${what}`,
          );
        if (!trusted) {
          assert.equal(id, undefined, `no identity for an untrusted signer: ${what}`);
          assert.doesNotMatch(raw, /smime-identifier/, what);
        } else if (/^[\x20-\x7e]+$/.test(email)) {
          // Written as one RFC 8601 value (the reader's own round trip is the next test).
          const written = propertyValue(email.toLowerCase());
          assert.ok(
            raw.includes(`body.smime-identifier=${written}`),
            `written as a value: ${what}`,
          );
          if (id !== undefined) assert.equal(id, email.toLowerCase(), `read back exactly: ${what}`);
        } else {
          assert.doesNotMatch(
            raw,
            /smime-identifier/,
            `left out when it cannot be written: ${what}`,
          );
        }
      }
    });
  }

  it('every printable identity is one RFC 8601 value that the reader reads back exactly', () => {
    // python3-authres takes a quoted-string only as the last property of a
    // result (its own simplification of the grammar), so each value is read
    // where it ends the result.
    const printable = HOSTILE.filter((e) => /^[\x20-\x7e]+$/.test(e));
    const values = printable.map(
      (email) =>
        `mx.example.net; smime=policy (a \\(nested\\) comment) body.smime-identifier=${propertyValue(email)}`,
    );
    const parsed = parseWithAuthres(values);
    parsed.forEach((p, i) => {
      assert.equal(p.results.length, 1, values[i]);
      assert.equal(p.results[0]!.result, 'policy', values[i]);
      // authres hands back a quoted-string's quoted-pairs as written: undo them (RFC 5322 3.2.1).
      const read = p.results[0]!.properties['body.smime-identifier']?.replace(/\\(.)/g, '$1');
      assert.equal(read, printable[i], values[i]);
    });
    for (const bad of ['x@a.example\r\nX-Injected: yes', 'x\u0000@a.example', 'x@bü.example'])
      assert.equal(propertyValue(bad), undefined, JSON.stringify(bad));
  });
});
