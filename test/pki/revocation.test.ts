// Revocation against real parts: `openssl ocsp` answering from an openssl CA's
// index, CRLs made by `openssl ca -gencrl` served over HTTP, and misbehaving
// servers (down, hanging, resetting, garbage, replaying) for the failure cases.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MemoryCache } from '../../src/cache/memory.js';
import { type CertificateInfo, loadCertificatesPem, pemBlocks } from '../../src/cms/certificate.js';
import { httpFetch } from '../../src/pki/http-fetch.js';
import { PathValidator, type RevocationPolicy } from '../../src/pki/path-validator.js';
import { RevocationChecker, type RevocationMethod } from '../../src/pki/revocation/checker.js';
import { CrlStore } from '../../src/pki/revocation/crl-store.js';
import { resettingServer } from '../helpers/fake-tcp.js';
import { type HttpFiles, startHttpFiles } from '../helpers/http-files.js';
import { type OcspResponder, startOcspResponder } from '../helpers/ocsp-responder.js';
import { createTestCa, type TestCa, type TestLeaf } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';

const cert = (pem: string): CertificateInfo => loadCertificatesPem(pem)[0]!;
const crlDer = (pem: string) => pemBlocks(pem, 'X509 CRL')[0]!;

interface Setup {
  root: TestCa;
  issuing: TestCa;
  leaves: Record<'good' | 'revoked' | 'unknown' | 'crlGood' | 'crlRevoked' | 'bare', TestLeaf>;
  responder: OcspResponder;
  http: HttpFiles;
  ocspUrl: string;
}

let s: Setup;
let dir: string;

function validator(
  methods: RevocationMethod[],
  policy: RevocationPolicy,
  observed: string[] = [],
  timeoutMs = 3000,
  skewMs?: number,
): PathValidator {
  const fetchCrl = (url: string) => httpFetch(url, { timeoutMs, maxBytes: 16 << 20 });
  const revocation = new RevocationChecker({
    methods,
    cache: new MemoryCache(),
    crls: new CrlStore({ fetch: fetchCrl, maxAgeMs: 3600_000 }),
    fetch: httpFetch,
    timeoutMs,
    maxTtlSeconds: 3600,
    negativeTtlSeconds: 60,
    ...(skewMs !== undefined ? { skewMs } : {}),
    observe: (method, result) => observed.push(`${method}:${result}`),
  });
  return new PathValidator({
    anchors: [cert(s.root.certPem)],
    intermediates: [cert(s.issuing.certPem)],
    revocation,
    policy,
  });
}

const check = (v: PathValidator, leaf: TestLeaf) => v.validate(cert(leaf.certPem), [], new Date());

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'domsec-revocation-'));
  const http = await startHttpFiles();
  const ocspPort = await freePort();
  const ocspUrl = `http://127.0.0.1:${ocspPort}/`;
  const root = await createTestCa(dir, 'Revocation Root');
  const issuing = await root.issueIntermediate('Revocation Issuing CA', 'rsa-2048', {
    crlUrl: http.url('/root.crl'),
  });
  const both = { ocspUrl, crlUrl: http.url('/issuing.crl') };
  const crlOnly = { crlUrl: http.url('/issuing.crl') };
  const leaf = (name: string, pointers: object) =>
    issuing.issue({ commonName: name, rfc822Names: [`${name}@partner.example`], ...pointers });
  const [good, revoked, unknown, crlGood, crlRevoked, bare, responderCert] = await Promise.all([
    leaf('good', both),
    leaf('revoked', both),
    leaf('unknown', both),
    leaf('crl-good', crlOnly),
    leaf('crl-revoked', crlOnly),
    leaf('bare', {}),
    issuing.issue({ commonName: 'OCSP responder', ocspSigning: true, purpose: 'signing' }),
  ]);
  await issuing.revoke(revoked.certPath, 'keyCompromise');
  await issuing.revoke(crlRevoked.certPath, 'superseded');
  http.set('/issuing.crl', crlDer((await issuing.crl()).pem));
  http.set('/root.crl', crlDer((await root.crl()).pem));
  // The responder must not know `unknown`: take it out of the index it reads.
  const index = await readFile(issuing.indexPath, 'utf8');
  const kept = index.split('\n').filter((l) => !l.includes(`\t${unknown.serialHex}\t`));
  await writeFile(issuing.indexPath, kept.join('\n'));
  const responder = await startOcspResponder({
    indexPath: issuing.indexPath,
    caCertPath: issuing.certPath,
    signerCertPath: responderCert.certPath,
    signerKeyPath: responderCert.keyPath,
    port: ocspPort,
    nextUpdateMinutes: 60,
  });
  s = {
    root,
    issuing,
    leaves: { good, revoked, unknown, crlGood, crlRevoked, bare },
    responder,
    http,
    ocspUrl,
  };
});

after(async () => {
  await s?.responder.stop();
  await s?.http.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('OCSP against openssl ocsp', () => {
  it('good: trusted, the answer named in the notes', async () => {
    const observed: string[] = [];
    const v = await check(validator(['ocsp', 'crl'], 'hard-fail', observed), s.leaves.good);
    assert.equal(v.trusted, true, v.reason);
    assert.ok(
      v.notes?.some((n) => /CN=good.*not revoked \(ocsp\)/.test(n)),
      String(v.notes),
    );
    assert.ok(observed.includes('ocsp:good'));
  });

  it('revoked: not trusted, with date and reason', async () => {
    const v = await check(validator(['ocsp', 'crl'], 'soft-fail'), s.leaves.revoked);
    assert.equal(v.trusted, false);
    assert.match(v.reason ?? '', /CN=revoked.*revoked on \d{4}-.*\(keyCompromise\) per OCSP/);
    assert.equal(v.temporary, undefined);
  });

  it('unknown is not revoked: the CRL decides next', async () => {
    const v = await check(validator(['ocsp', 'crl'], 'hard-fail'), s.leaves.unknown);
    assert.equal(v.trusted, true, v.reason);
    assert.ok(
      v.notes?.some((n) => /CN=unknown.*not revoked \(crl\)/.test(n)),
      String(v.notes),
    );
  });

  it('unknown with OCSP alone: hard-fail refuses (not temporarily), soft-fail accepts', async () => {
    const hard = await check(validator(['ocsp'], 'hard-fail'), s.leaves.unknown);
    assert.equal(hard.trusted, false);
    assert.match(hard.reason ?? '', /status unknown/);
    assert.equal(hard.temporary, undefined);
    const soft = await check(validator(['ocsp'], 'soft-fail'), s.leaves.unknown);
    assert.equal(soft.trusted, true);
    assert.ok(soft.notes?.some((n) => /status unknown/.test(n)));
  });

  it('answers are cached: a second check asks nobody', async () => {
    const observed: string[] = [];
    const v = validator(['ocsp', 'crl'], 'hard-fail', observed);
    await check(v, s.leaves.good);
    await check(v, s.leaves.good);
    // The leaf by OCSP, the issuing CA by the root's CRL; then both from the cache.
    assert.deepEqual(observed, ['ocsp:good', 'crl:good', 'cache:good', 'cache:good']);
  });
});

describe('CRL over HTTP', () => {
  it('good and revoked from the issuing CA CRL; the intermediate from the root CRL', async () => {
    const v = validator(['crl'], 'hard-fail');
    const good = await check(v, s.leaves.crlGood);
    assert.equal(good.trusted, true, good.reason);
    assert.equal(good.notes?.length, 2, 'leaf and intermediate both checked');
    assert.ok(
      good.notes?.every((n) => /not revoked \(crl\)/.test(n)),
      String(good.notes),
    );
    const revoked = await check(v, s.leaves.crlRevoked);
    assert.equal(revoked.trusted, false);
    assert.match(revoked.reason ?? '', /revoked on .*\(superseded\) per CRL/);
  });

  it('a CRL signed by another CA is not used', async () => {
    const other = await createTestCa(dir, 'Revocation Root'); // same name, other key
    s.http.set('/root.crl', crlDer((await other.crl()).pem));
    try {
      const v = await check(validator(['crl'], 'hard-fail'), s.leaves.crlGood);
      assert.equal(v.trusted, false);
      assert.match(v.reason ?? '', /Revocation Issuing CA.*CRL signature does not verify/);
      assert.equal(v.temporary, true);
    } finally {
      s.http.set('/root.crl', crlDer((await s.root.crl()).pem));
    }
  });
});

describe('CRL servers that fail', () => {
  const crlLeaf = async (name: string, url: string) =>
    s.issuing.issue({ commonName: name, crlUrl: url });

  it('garbage instead of a CRL: unavailable, and said why', async () => {
    s.http.set('/garbage.crl', Buffer.from('0\x82\x10\x00not a CRL at all'));
    const leaf = await crlLeaf('crl-garbage', s.http.url('/garbage.crl'));
    const v = await check(validator(['crl'], 'hard-fail'), leaf);
    assert.equal(v.trusted, false);
    assert.equal(v.temporary, true);
    assert.match(v.reason ?? '', /unavailable: crl .*garbage\.crl: not a usable CRL/);
  });

  it('404: unavailable', async () => {
    const leaf = await crlLeaf('crl-missing', s.http.url('/missing.crl'));
    const v = await check(validator(['crl'], 'hard-fail'), leaf);
    assert.match(v.reason ?? '', /HTTP 404/);
  });

  it('server down: unavailable; soft-fail trusts and says so', async () => {
    const leaf = await crlLeaf('crl-down', `http://127.0.0.1:${await freePort()}/x.crl`);
    const hard = await check(validator(['crl'], 'hard-fail'), leaf);
    assert.match(hard.reason ?? '', /ECONNREFUSED/);
    const soft = await check(validator(['crl'], 'soft-fail'), leaf);
    assert.equal(soft.trusted, true);
    assert.ok(soft.notes?.some((n) => /unavailable/.test(n)));
  });

  it('a stale CRL (nextUpdate passed) is not used', async () => {
    // openssl ca -gencrl with -crlsec 1: stale a second later.
    const stale = await s.issuing.crl({ seconds: 1 });
    await new Promise((r) => setTimeout(r, 1500));
    s.http.set('/stale.crl', crlDer(stale.pem));
    const leaf = await crlLeaf('crl-stale', s.http.url('/stale.crl'));
    const v = await check(validator(['crl'], 'hard-fail', [], 3000, 0), leaf);
    assert.equal(v.trusted, false);
    assert.match(v.reason ?? '', /CRL is stale/);
  });
});

describe('responders that fail', () => {
  it('certificates naming no responder: hard-fail refuses, soft-fail accepts', async () => {
    const hard = await check(validator(['ocsp', 'crl'], 'hard-fail'), s.leaves.bare);
    assert.equal(hard.trusted, false);
    assert.match(hard.reason ?? '', /CN=bare.*names no OCSP responder or CRL distribution point/);
    const soft = await check(validator(['ocsp', 'crl'], 'soft-fail'), s.leaves.bare);
    assert.equal(soft.trusted, true);
  });

  it('hanging OCSP responder: unavailable within the timeout, temporary under hard-fail', async () => {
    const hang = s.http.url('/hang');
    s.http.set('/hang', 'hang');
    const hanging = await s.issuing.issue({ commonName: 'hang', ocspUrl: hang });
    const started = Date.now();
    const v = await check(validator(['ocsp'], 'hard-fail', [], 500), hanging);
    const elapsed = Date.now() - started;
    assert.equal(v.trusted, false);
    assert.equal(v.temporary, true);
    assert.match(v.reason ?? '', /unavailable: ocsp .*no answer within 500 ms/);
    assert.ok(elapsed < 2500, `took ${elapsed} ms`);
  });

  it('responder down (nothing listening): unavailable; soft-fail still trusts', async () => {
    const port = await freePort();
    const down = await s.issuing.issue({
      commonName: 'down',
      ocspUrl: `http://127.0.0.1:${port}/`,
    });
    const hard = await check(validator(['ocsp'], 'hard-fail'), down);
    assert.equal(hard.trusted, false);
    assert.match(hard.reason ?? '', /ECONNREFUSED/);
    const soft = await check(validator(['ocsp'], 'soft-fail'), down);
    assert.equal(soft.trusted, true);
    assert.ok(soft.notes?.some((n) => /unavailable/.test(n)));
  });

  it('garbage answers are refused, never trusted', async () => {
    s.http.set('/garbage', Buffer.from('this is not DER at all'));
    const leaf = await s.issuing.issue({ commonName: 'garbage', ocspUrl: s.http.url('/garbage') });
    const v = await check(validator(['ocsp'], 'hard-fail'), leaf);
    assert.equal(v.trusted, false);
    assert.match(v.reason ?? '', /unavailable: ocsp .*response is not/);
  });

  it('a replayed response (another nonce) is refused', async () => {
    // Ask the real responder once for `good`, then replay its answer to every request.
    let recorded: Buffer | undefined;
    s.http.set('/replay', (body) => recorded ?? body);
    const leaf = s.leaves.good;
    const fresh = await httpFetch(s.ocspUrl, {
      method: 'POST',
      body: (await import('../../src/pki/revocation/ocsp.js')).ocspRequest(
        cert(leaf.certPem),
        cert(s.issuing.certPem),
      ).der,
      contentType: 'application/ocsp-request',
      timeoutMs: 3000,
      maxBytes: 1 << 20,
    });
    recorded = fresh;
    const replaying = await s.issuing.issue({ commonName: 'good', ocspUrl: s.http.url('/replay') });
    const v = await check(validator(['ocsp'], 'hard-fail'), replaying);
    assert.equal(v.trusted, false);
    // The replay is for another serial, and carries another nonce: either way refused.
    assert.match(v.reason ?? '', /nonce does not match|does not name the certificate/);
  });

  it('a response signed by a certificate without id-kp-OCSPSigning is refused', async () => {
    const port = await freePort();
    const impostor = await s.issuing.issue({ commonName: 'impostor', purpose: 'signing' });
    const bad = await startOcspResponder({
      indexPath: s.issuing.indexPath,
      caCertPath: s.issuing.certPath,
      signerCertPath: impostor.certPath,
      signerKeyPath: impostor.keyPath,
      port,
    });
    try {
      const leaf = await s.issuing.issue({
        commonName: 'victim',
        ocspUrl: `http://127.0.0.1:${port}/`,
      });
      const v = await check(validator(['ocsp'], 'hard-fail'), leaf);
      assert.equal(v.trusted, false);
      assert.match(v.reason ?? '', /lacks id-kp-OCSPSigning/);
    } finally {
      await bad.stop();
    }
  });

  it('a responder that resets the connection: unavailable at once, temporary under hard-fail', async () => {
    const reset = await resettingServer();
    try {
      const leaf = await s.issuing.issue({
        commonName: 'reset',
        ocspUrl: `http://127.0.0.1:${reset.port}/`,
      });
      const started = Date.now();
      const hard = await check(validator(['ocsp'], 'hard-fail', [], 3000), leaf);
      assert.equal(hard.trusted, false);
      assert.equal(hard.temporary, true);
      assert.match(hard.reason ?? '', /unavailable: ocsp .*ECONNRESET/);
      assert.ok(Date.now() - started < 2000, 'not after the timeout');
      assert.ok(reset.accepted >= 1);
      const soft = await check(validator(['ocsp'], 'soft-fail'), leaf);
      assert.equal(soft.trusted, true);
      assert.match(soft.caveat ?? '', /revocation status unavailable: .*ECONNRESET/);
    } finally {
      await reset.close();
    }
  });

  it('a CRL server that resets the connection: unavailable, never trusted under hard-fail', async () => {
    const reset = await resettingServer();
    try {
      const leaf = await s.issuing.issue({
        commonName: 'crl-reset',
        crlUrl: `http://127.0.0.1:${reset.port}/x.crl`,
      });
      const v = await check(validator(['crl'], 'hard-fail'), leaf);
      assert.equal(v.trusted, false);
      assert.equal(v.temporary, true);
      assert.match(v.reason ?? '', /ECONNRESET/);
    } finally {
      await reset.close();
    }
  });

  it('a hanging TCP peer that never speaks HTTP: bounded by the timeout', async () => {
    const server = net.createServer(() => {});
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const leaf = await s.issuing.issue({
        commonName: 'silent',
        crlUrl: `http://127.0.0.1:${port}/x.crl`,
      });
      const started = Date.now();
      const v = await check(validator(['crl'], 'hard-fail', [], 400), leaf);
      assert.equal(v.temporary, true);
      assert.ok(Date.now() - started < 2000);
    } finally {
      server.close();
    }
  });
});
