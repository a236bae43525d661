// CRL parsing: real CRLs from `openssl ca -gencrl` (up to 100 000 entries),
// hand-built CRLs for the cases openssl will not make (delta, indirect,
// unknown critical extensions), and mutated bytes that must never crash.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { CmsError } from '../../src/cms/asn1.js';
import { loadCertificatesPem, pemBlocks } from '../../src/cms/certificate.js';
import * as der from '../../src/cms/der.js';
import { OID } from '../../src/cms/oids.js';
import { coverageProblem, parseCrl } from '../../src/pki/revocation/crl.js';
import { createTestCa, type TestCa } from '../helpers/pki.js';

let dir: string;
let ca: TestCa;
let small: Buffer;
let big: Buffer;
const BIG = 100_000;
const serialOf = (i: number) => (0x100000 + i).toString(16).toUpperCase();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'domsec-crl-'));
  ca = await createTestCa(dir, 'CRL CA');
  const leaf = await ca.issue({ commonName: 'revoked one' });
  await ca.revoke(leaf.certPath, 'cACompromise');
  small = pemBlocks((await ca.crl()).pem, 'X509 CRL')[0]!;
  // 100 000 revocations straight into openssl's index, then one -gencrl.
  const lines = Array.from(
    { length: BIG },
    (_, i) => `R\t301231235959Z\t260101000000Z,keyCompromise\t${serialOf(i)}\tunknown\t/CN=x${i}`,
  );
  const other = await createTestCa(dir, 'Big CRL CA');
  await writeFile(other.indexPath, `${lines.join('\n')}\n`);
  big = pemBlocks((await other.crl()).pem, 'X509 CRL')[0]!;
  bigCa = other;
});
let bigCa: TestCa;

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('CRLs from openssl', () => {
  it('reads issuer, dates, entries and reason; the signature verifies with the CA key only', () => {
    const crl = parseCrl(small);
    const caCert = loadCertificatesPem(ca.certPem)[0]!;
    assert.ok(crl.issuerDer.equals(caCert.subjectDer));
    assert.equal(crl.size, 1);
    assert.ok(crl.nextUpdate && crl.nextUpdate > crl.thisUpdate);
    assert.equal(crl.scope, 'all');
    assert.equal(crl.signedBy(caCert.publicKey), true);
    assert.equal(crl.signedBy(loadCertificatesPem(bigCa.certPem)[0]!.publicKey), false);
  });

  it(`indexes a ${BIG}-entry CRL: first, middle and last serials found, others not`, () => {
    const crl = parseCrl(big);
    assert.equal(crl.size, BIG);
    for (const i of [0, BIG / 2, BIG - 1]) {
      const hex = serialOf(i).toLowerCase().padStart(6, '0');
      const entry = crl.lookup(hex);
      assert.ok(entry, `serial ${hex}`);
      assert.equal(entry.reason, 'keyCompromise');
      assert.equal(entry.revokedAt.toISOString(), '2026-01-01T00:00:00.000Z');
    }
    assert.equal(crl.lookup('0fffff'), undefined);
    assert.equal(crl.signedBy(loadCertificatesPem(bigCa.certPem)[0]!.publicKey), true);
  });

  it('mutated and truncated CRLs give a CmsError, never anything else', () => {
    fc.assert(
      fc.property(
        fc.nat(small.length - 1),
        fc.integer({ min: 0, max: 255 }),
        fc.boolean(),
        (at, value, truncate) => {
          const bytes = truncate ? small.subarray(0, at) : Buffer.from(small);
          if (!truncate) bytes[at] = value;
          try {
            parseCrl(bytes);
          } catch (err) {
            assert.ok(err instanceof CmsError, String(err));
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

// Hand-built CRLs, signed with a throw-away key.
const key: { privateKey: KeyObject; publicKey: KeyObject } = generateKeyPairSync('ec', {
  namedCurve: 'P-256',
});
const issuerName = der.seq(
  der.set(der.seq(der.oid('2.5.4.3'), Buffer.from([0x0c, 0x03, 0x43, 0x52, 0x4c]))),
);
const extension = (id: string, critical: boolean, value: Buffer) =>
  der.seq(der.oid(id), ...(critical ? [Buffer.from([0x01, 0x01, 0xff])] : []), der.octets(value));

function buildCrl(opts: { entryExts?: Buffer[]; crlExts?: Buffer[] }): Buffer {
  const entry = der.seq(
    der.intBytes(Buffer.from([0x2a])),
    der.time(new Date('2026-02-01T00:00:00Z')),
    ...(opts.entryExts ? [der.seq(...opts.entryExts)] : []),
  );
  const tbs = der.seq(
    der.int(1),
    der.algorithm(OID.ecdsaWithSha256),
    issuerName,
    der.time(new Date(Date.now() - 3600_000)),
    der.time(new Date(Date.now() + 3600_000)),
    der.seq(entry),
    ...(opts.crlExts ? [der.context(0, der.seq(...opts.crlExts))] : []),
  );
  const signature = sign('sha256', tbs, key.privateKey);
  return der.seq(tbs, der.algorithm(OID.ecdsaWithSha256), der.bitString(signature));
}

describe('CRL features we refuse rather than half-trust', () => {
  it('a plain hand-built CRL parses and verifies (the builder is right)', () => {
    const crl = parseCrl(buildCrl({}));
    assert.equal(crl.size, 1);
    assert.ok(crl.lookup('2a'));
    assert.equal(crl.signedBy(key.publicKey), true);
  });

  it('delta CRLs', () => {
    const delta = extension('2.5.29.27', true, der.int(5));
    assert.throws(() => parseCrl(buildCrl({ crlExts: [delta] })), /delta CRL/);
  });

  it('unknown critical CRL extension', () => {
    const odd = extension('1.2.3.4', true, der.nullValue());
    assert.throws(() => parseCrl(buildCrl({ crlExts: [odd] })), /critical CRL extension 1.2.3.4/);
  });

  it('unknown non-critical extensions are ignored', () => {
    const odd = extension('1.2.3.4', false, der.nullValue());
    assert.equal(parseCrl(buildCrl({ crlExts: [odd] })).size, 1);
  });

  it('indirect CRL entries (certificateIssuer)', () => {
    const ci = extension('2.5.29.29', true, der.seq());
    assert.throws(() => parseCrl(buildCrl({ entryExts: [ci] })), /indirect CRL entry/);
  });

  it('issuing distribution point: user-only scope read, reason subsets refused', () => {
    const userOnly = extension(
      '2.5.29.28',
      true,
      der.seq(der.contextPrimitive(1, Buffer.from([0xff]))),
    );
    assert.equal(parseCrl(buildCrl({ crlExts: [userOnly] })).scope, 'user');
    const someReasons = extension(
      '2.5.29.28',
      true,
      der.seq(der.contextPrimitive(3, Buffer.from([0x07, 0x80]))),
    );
    assert.throws(() => parseCrl(buildCrl({ crlExts: [someReasons] })), /some revocation reasons/);
  });

  it('trailing bytes after the CRL', () => {
    assert.throws(() => parseCrl(Buffer.concat([buildCrl({}), Buffer.from([0])])), CmsError);
  });
});

describe('issuing distribution point: which certificates a CRL answers for (RFC 5280 6.3.3 (b)(2))', () => {
  const TRUE = Buffer.from([0xff]);
  const uri = (u: string) => der.contextPrimitive(6, Buffer.from(u, 'latin1'));
  const idp = (...fields: Buffer[]) => extension('2.5.29.28', true, der.seq(...fields));
  const fullName = (...uris: string[]) => der.context(0, der.context(0, ...uris.map(uri)));
  const withIdp = (...fields: Buffer[]) => parseCrl(buildCrl({ crlExts: [idp(...fields)] }));

  it('reads the URIs of the full name; a point named otherwise has none to match', () => {
    const crl = withIdp(fullName('http://crl.example/p1.crl', 'ldap://dir.example/cn=p1'));
    assert.deepEqual(crl.distributionPoint, [
      'http://crl.example/p1.crl',
      'ldap://dir.example/cn=p1',
    ]);
    assert.equal(crl.scope, 'all');
    // nameRelativeToCRLIssuer [1]: an RDN, never one of our URL pointers.
    const rdn = der.set(der.seq(der.oid('2.5.4.3'), Buffer.from([0x0c, 0x02, 0x70, 0x31])));
    const relative = withIdp(der.context(0, Buffer.concat([Buffer.from([0xa1]), rdn.subarray(1)])));
    assert.deepEqual(relative.distributionPoint, []);
    assert.match(
      coverageProblem(relative, ['http://crl.example/p1.crl'], false) ?? '',
      /another partition: it is for a point named without a URI/,
    );
  });

  it("the CRL counts for any name of the certificate's point; scheme and host in any case", () => {
    const crl = withIdp(fullName('HTTP://CRL.Example/p1.crl'));
    assert.equal(coverageProblem(crl, ['http://crl.example/p1.crl'], false), undefined);
    assert.equal(
      coverageProblem(crl, ['ldap://dir.example/cn=p1', 'http://crl.example/p1.crl'], false),
      undefined,
    );
    assert.match(
      coverageProblem(crl, ['http://crl.example/P1.crl'], false) ?? '',
      /CRL of another partition: it is for HTTP:\/\/CRL\.Example\/p1\.crl, not for http:\/\/crl\.example\/P1\.crl/,
    );
    assert.match(
      coverageProblem(crl, ['http://crl.example/p2.crl'], false) ?? '',
      /another partition/,
    );
  });

  it('a CRL naming no point answers for every point', () => {
    const crl = withIdp(der.contextPrimitive(1, TRUE));
    assert.equal(crl.distributionPoint, undefined);
    assert.equal(coverageProblem(crl, ['http://crl.example/any.crl'], false), undefined);
    assert.match(
      coverageProblem(crl, ['http://crl.example/any.crl'], true) ?? '',
      /only end-entity/,
    );
  });

  it('CA-only and attribute-only CRLs do not answer for an end entity', () => {
    const caOnly = withIdp(fullName('http://crl.example/ca.crl'), der.contextPrimitive(2, TRUE));
    assert.equal(caOnly.scope, 'ca');
    assert.match(
      coverageProblem(caOnly, ['http://crl.example/ca.crl'], false) ?? '',
      /only CA certificates/,
    );
    assert.equal(coverageProblem(caOnly, ['http://crl.example/ca.crl'], true), undefined);
    const attributes = withIdp(der.contextPrimitive(5, TRUE));
    assert.equal(attributes.scope, 'attribute');
    assert.match(
      coverageProblem(attributes, ['http://x/a.crl'], false) ?? '',
      /only attribute certificates/,
    );
    assert.match(
      coverageProblem(attributes, ['http://x/a.crl'], true) ?? '',
      /only attribute certificates/,
    );
  });

  it('malformed issuing distribution points are refused (FALSE written out is only the default)', () => {
    assert.equal(
      withIdp(der.contextPrimitive(1, Buffer.from([0])), der.contextPrimitive(4, Buffer.from([0])))
        .scope,
      'all',
    );
    assert.throws(() => withIdp(der.contextPrimitive(4, TRUE)), /indirect CRL/);
    for (const fields of [
      [der.contextPrimitive(1, TRUE), der.contextPrimitive(2, TRUE)], // user and CA only
      [der.contextPrimitive(2, Buffer.alloc(0))], // a BOOLEAN without content
      [der.contextPrimitive(1, Buffer.from([0xff, 0xff]))],
      [der.contextPrimitive(7, TRUE)], // no such field
      [der.context(0, der.context(0, uri('http://a/')), der.context(0, uri('http://b/')))],
    ])
      assert.throws(() => withIdp(...fields), CmsError);
    const trailing = extension('2.5.29.28', true, Buffer.concat([der.seq(), Buffer.from([5, 0])]));
    assert.throws(() => parseCrl(buildCrl({ crlExts: [trailing] })), CmsError);
  });
});
