// Partitioned CRLs (RFC 5280 5.2.5, 6.3.3 (b)(2)) from `openssl ca -gencrl`
// with an issuingDistributionPoint, served over plain HTTP. A CRL is signed
// by the CA but not bound to a URL: whoever sits on the path can serve another
// partition's CRL (validly signed, without our revocation) at our point. Such
// a CRL must not say "good"; nor may a CRL for CA certificates only.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MemoryCache } from '../../src/cache/memory.js';
import { type CertificateInfo, loadCertificatesPem, pemBlocks } from '../../src/cms/certificate.js';
import { httpFetch } from '../../src/pki/http-fetch.js';
import { PathValidator, type RevocationPolicy } from '../../src/pki/path-validator.js';
import { RevocationChecker } from '../../src/pki/revocation/checker.js';
import { parseCrl } from '../../src/pki/revocation/crl.js';
import { CrlStore } from '../../src/pki/revocation/crl-store.js';
import { type HttpFiles, startHttpFiles } from '../helpers/http-files.js';
import { runToolOk } from '../helpers/openssl.js';
import { createTestCa, type TestCa, type TestLeaf } from '../helpers/pki.js';

const cert = (pem: string): CertificateInfo => loadCertificatesPem(pem)[0]!;
const crlDer = (pem: string) => pemBlocks(pem, 'X509 CRL')[0]!;

let dir: string;
let http: HttpFiles;
let ca: TestCa;
const crls: Record<'part1' | 'part2' | 'part3' | 'caOnly', Buffer> = {} as never;
let leaves: Record<'p1Revoked' | 'p2Good' | 'caOnlyRevoked' | 'twoPoints', TestLeaf>;

/** `openssl ca -gencrl` with the given crl_extensions section of `extra`. */
async function gencrl(extra: string, section: string): Promise<Buffer> {
  const config = join(ca.dir, `gencrl-${section}.cnf`);
  await writeFile(config, `${await readFile(join(ca.dir, 'ca.cnf'), 'utf8')}\n${extra}`);
  const out = join(ca.dir, `crl-${section}.pem`);
  await runToolOk('openssl', [
    'ca',
    '-batch',
    '-config',
    config,
    '-gencrl',
    '-crlexts',
    section,
    '-out',
    out,
  ]);
  return crlDer(await readFile(out, 'utf8'));
}

function validator(policy: RevocationPolicy, observed: string[] = []): PathValidator {
  const fetch = (url: string) => httpFetch(url, { timeoutMs: 3000, maxBytes: 16 << 20 });
  return new PathValidator({
    anchors: [cert(ca.certPem)],
    revocation: new RevocationChecker({
      methods: ['crl'],
      cache: new MemoryCache(),
      crls: new CrlStore({ fetch, maxAgeMs: 3600_000 }),
      fetch: httpFetch,
      timeoutMs: 3000,
      maxTtlSeconds: 3600,
      negativeTtlSeconds: 60,
      observe: (method, result) => observed.push(`${method}:${result}`),
    }),
    policy,
  });
}

const check = (v: PathValidator, leaf: TestLeaf) => v.validate(cert(leaf.certPem), [], new Date());

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'domsec-crl-partition-'));
  http = await startHttpFiles();
  ca = await createTestCa(dir, 'Partitioned CA');
  const url = (name: string) => http.url(`/${name}.crl`);
  const leaf = (name: string, crlUrl: string) =>
    ca.issue({ commonName: name, rfc822Names: [`${name}@partner.example`], crlUrl });
  leaves = {
    p1Revoked: await leaf('p1-revoked', url('part1')),
    p2Good: await leaf('p2-good', url('part2')),
    caOnlyRevoked: await leaf('ca-only-revoked', url('ca-only')),
    // Two distribution points (openssl writes one per URI): part1, then part3.
    twoPoints: await leaf('two-points', `${url('part1')}, URI:${url('part3')}`),
  };
  const sections = [
    ...(['part1', 'part2', 'part3'] as const).flatMap((p) => [
      `[crl_${p}]`,
      `issuingDistributionPoint = critical, @idp_${p}`,
      `[idp_${p}]`,
      `fullname = URI:${url(p)}`,
    ]),
    '[crl_caOnly]',
    'issuingDistributionPoint = critical, @idp_caOnly',
    '[idp_caOnly]',
    `fullname = URI:${url('ca-only')}`,
    'onlyCA = TRUE',
    '',
  ].join('\n');
  // part2 and the CA-only CRL are made before anything is revoked: they list nothing.
  crls.part2 = await gencrl(sections, 'crl_part2');
  crls.caOnly = await gencrl(sections, 'crl_caOnly');
  for (const l of [leaves.p1Revoked, leaves.caOnlyRevoked, leaves.twoPoints])
    await ca.revoke(l.certPath, 'keyCompromise');
  crls.part1 = await gencrl(sections, 'crl_part1');
  crls.part3 = await gencrl(sections, 'crl_part3');
  http.set('/part2.crl', crls.part2);
  http.set('/ca-only.crl', crls.caOnly);
  http.set('/part3.crl', crls.part3);
});

after(async () => {
  await http?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('partitioned CRLs (issuingDistributionPoint)', () => {
  it('openssl writes the point into the CRL, and we read it', () => {
    assert.deepEqual(parseCrl(crls.part1).distributionPoint, [http.url('/part1.crl')]);
    assert.deepEqual(parseCrl(crls.caOnly).distributionPoint, [http.url('/ca-only.crl')]);
    assert.equal(parseCrl(crls.caOnly).scope, 'ca');
  });

  it("another partition's CRL served at our point hides no revocation: status unknown, never good", async () => {
    // The right CRL at part1: revoked.
    http.set('/part1.crl', crls.part1);
    const right = await check(validator('hard-fail'), leaves.p1Revoked);
    assert.equal(right.trusted, false);
    assert.equal(right.revoked, true, right.reason);
    // part2's CRL, validly signed by the same CA, counts at part2...
    const own = await check(validator('hard-fail'), leaves.p2Good);
    assert.equal(own.trusted, true, own.reason);
    assert.ok(
      own.notes?.some((n) => /not revoked \(crl\)/.test(n)),
      String(own.notes),
    );
    // ...but not when it is served at part1.
    http.set('/part1.crl', crls.part2);
    const observed: string[] = [];
    const hard = await check(validator('hard-fail', observed), leaves.p1Revoked);
    assert.equal(hard.trusted, false);
    assert.equal(hard.revoked, undefined);
    assert.equal(hard.temporary, undefined, 'unknown, not unavailable');
    assert.match(
      hard.reason ?? '',
      /CN=p1-revoked.*revocation status unknown: crl http:\S+\/part1\.crl: CRL of another partition: it is for http:\S+\/part2\.crl/,
    );
    assert.deepEqual(observed, ['crl:unknown']);
    const soft = await check(validator('soft-fail'), leaves.p1Revoked);
    assert.equal(soft.trusted, true, 'soft-fail applies as to any unknown status');
    assert.match(soft.caveat ?? '', /status unknown: .*CRL of another partition/);
    assert.ok(!soft.notes?.some((n) => /not revoked/.test(n)), String(soft.notes));
  });

  it('a certificate with a second distribution point gets its answer there', async () => {
    http.set('/part1.crl', crls.part2); // the first point serves the wrong partition
    const observed: string[] = [];
    const v = await check(validator('soft-fail', observed), leaves.twoPoints);
    assert.equal(v.trusted, false);
    assert.equal(v.revoked, true);
    assert.match(v.reason ?? '', /CN=two-points.*revoked on .*\(keyCompromise\) per CRL/);
    assert.deepEqual(observed, ['crl:unknown', 'crl:revoked']);
  });

  it('a CRL for CA certificates only does not answer for an end-entity certificate: unknown', async () => {
    const hard = await check(validator('hard-fail'), leaves.caOnlyRevoked);
    assert.equal(hard.trusted, false);
    assert.equal(hard.temporary, undefined, 'unknown, not unavailable');
    assert.match(
      hard.reason ?? '',
      /revocation status unknown: crl \S+\/ca-only\.crl: CRL covers only CA certificates/,
    );
    const soft = await check(validator('soft-fail'), leaves.caOnlyRevoked);
    assert.equal(soft.trusted, true);
    assert.match(soft.caveat ?? '', /status unknown: .*only CA certificates/);
  });
});
