// Path validation over PKIs made by openssl: plain hierarchies, and the
// bridge PKI of Open Group SSM section 9, whose cross-certificates form
// cycles that a naive path builder never leaves.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CertificateInfo, loadCertificatesPem } from '../../src/cms/certificate.js';
import { findPaths } from '../../src/pki/path-builder.js';
import { PathValidator } from '../../src/pki/path-validator.js';
import { runToolOk } from '../helpers/openssl.js';
import { createTestCa, type TestCa, type TestLeaf } from '../helpers/pki.js';

const cert = (pem: string): CertificateInfo => loadCertificatesPem(pem)[0]!;
const certAt = async (path: string) => cert(await readFile(path, 'utf8'));
const cn = (c: CertificateInfo) => /CN=([^\n]*)/.exec(c.x509.subject)?.[1];
const now = () => new Date();

let dir: string;
let rootA: TestCa;
let issuingA: TestCa;
let leafA: TestLeaf;
let rootB: TestCa;
let bridge: TestCa;
let leafB: TestLeaf;
/** rootB by bridge, bridge by rootA, and the reverse directions (the cycles). */
let cross: Record<
  'rootBbyBridge' | 'bridgeByRootA' | 'rootAbyBridge' | 'bridgeByRootB',
  CertificateInfo
>;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'domsec-paths-'));
  [rootA, rootB, bridge] = await Promise.all([
    createTestCa(dir, 'Root A'),
    createTestCa(dir, 'Root B'),
    createTestCa(dir, 'Bridge CA'),
  ]);
  issuingA = await rootA.issueIntermediate('Issuing A');
  [leafA, leafB] = await Promise.all([
    issuingA.issue({ commonName: 'leaf A', rfc822Names: ['a@a.example'] }),
    rootB.issue({ commonName: 'leaf B', rfc822Names: ['b@b.example'] }),
  ]);
  const [rootBbyBridge, bridgeByRootA, rootAbyBridge, bridgeByRootB] = await Promise.all([
    bridge.crossCertify(rootB),
    rootA.crossCertify(bridge),
    bridge.crossCertify(rootA),
    rootB.crossCertify(bridge),
  ]);
  cross = {
    rootBbyBridge: await certAt(rootBbyBridge),
    bridgeByRootA: await certAt(bridgeByRootA),
    rootAbyBridge: await certAt(rootAbyBridge),
    bridgeByRootB: await certAt(bridgeByRootB),
  };
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('hierarchies', () => {
  it('leaf, intermediate from the message, trusted root', async () => {
    const v = new PathValidator({ anchors: [cert(rootA.certPem)] });
    const r = await v.validate(cert(leafA.certPem), [cert(issuingA.certPem)], now());
    assert.equal(r.trusted, true, r.reason);
    assert.deepEqual(r.path?.map(cn), ['leaf A', 'Issuing A', 'Root A']);
  });

  it('the intermediate from our own pool when the message lacks it', async () => {
    const v = new PathValidator({
      anchors: [cert(rootA.certPem)],
      intermediates: [cert(issuingA.certPem)],
    });
    assert.equal((await v.validate(cert(leafA.certPem), [], now())).trusted, true);
  });

  it('missing intermediate: no path, said so', async () => {
    const v = new PathValidator({ anchors: [cert(rootA.certPem)] });
    const r = await v.validate(cert(leafA.certPem), [], now());
    assert.equal(r.trusted, false);
    assert.match(r.reason ?? '', /no path to a trusted certificate authority/);
  });

  it('an untrusted root is not a path, even when the message carries it', async () => {
    const v = new PathValidator({ anchors: [cert(rootA.certPem)] });
    const r = await v.validate(cert(leafB.certPem), [cert(rootB.certPem)], now());
    assert.equal(r.trusted, false);
  });

  it('expired leaf: the reason names it', async () => {
    const old = await issuingA.issue({
      commonName: 'old leaf',
      notBefore: new Date(Date.now() - 20 * 86_400_000),
      notAfter: new Date(Date.now() - 10 * 86_400_000),
    });
    const v = new PathValidator({ anchors: [cert(rootA.certPem)] });
    const r = await v.validate(cert(old.certPem), [cert(issuingA.certPem)], now());
    assert.equal(r.trusted, false);
    assert.match(r.reason ?? '', /CN=old leaf, O=domsec test: expired on/);
  });

  it('a leaf certificate used as an issuer is refused (not a CA)', async () => {
    // Sign a certificate with leaf A's key: the signature verifies, but leaf A is no CA.
    const sub = join(dir, 'under-leaf');
    await runToolOk('openssl', [
      'req',
      '-new',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${sub}.key`,
      '-subj',
      '/CN=under leaf',
      '-out',
      `${sub}.csr`,
    ]);
    await runToolOk('openssl', [
      'x509',
      '-req',
      '-in',
      `${sub}.csr`,
      '-CA',
      leafA.certPath,
      '-CAkey',
      leafA.keyPath,
      '-set_serial',
      '7',
      '-days',
      '30',
      '-out',
      `${sub}.pem`,
    ]);
    const v = new PathValidator({ anchors: [cert(rootA.certPem)] });
    const r = await v.validate(
      await certAt(`${sub}.pem`),
      [cert(leafA.certPem), cert(issuingA.certPem)],
      now(),
    );
    assert.equal(r.trusted, false);
    assert.match(r.reason ?? '', /not a CA/);
  });
});

describe('bridge CA (SSM section 9)', () => {
  it('leaf B reaches root A through the bridge, despite the cycles in the pool', async () => {
    const v = new PathValidator({
      anchors: [cert(rootA.certPem)],
      intermediates: Object.values(cross),
    });
    const r = await v.validate(cert(leafB.certPem), [cert(rootB.certPem)], now());
    assert.equal(r.trusted, true, r.reason);
    assert.deepEqual(r.path?.map(cn), ['leaf B', 'Root B', 'Bridge CA', 'Root A']);
    assert.equal(r.path?.[1]?.fingerprint, cross.rootBbyBridge.fingerprint);
    assert.equal(r.path?.[2]?.fingerprint, cross.bridgeByRootA.fingerprint);
  });

  it('and the other way round: root B trusted, leaf A reaches it', async () => {
    const v = new PathValidator({
      anchors: [cert(rootB.certPem)],
      intermediates: [...Object.values(cross), cert(issuingA.certPem)],
    });
    const r = await v.validate(cert(leafA.certPem), [], now());
    assert.equal(r.trusted, true, r.reason);
    assert.deepEqual(r.path?.map(cn), ['leaf A', 'Issuing A', 'Root A', 'Bridge CA', 'Root B']);
  });

  it('an expired cross-certificate breaks the path, and the reason says which', async () => {
    const expired = await certAt(
      await rootA.crossCertify(bridge, new Date(Date.now() - 86_400_000)),
    );
    const v = new PathValidator({
      anchors: [cert(rootA.certPem)],
      intermediates: [cross.rootBbyBridge, expired, cross.rootAbyBridge, cross.bridgeByRootB],
    });
    const r = await v.validate(cert(leafB.certPem), [], now());
    assert.equal(r.trusted, false);
    assert.match(r.reason ?? '', /CN=Bridge CA, O=domsec test: expired on/);
  });

  it('without the cross-certificates there is no path', async () => {
    const v = new PathValidator({ anchors: [cert(rootA.certPem)] });
    assert.equal((await v.validate(cert(leafB.certPem), [], now())).trusted, false);
  });
});

describe('path search bounds', () => {
  it('a pool of many look-alike issuers is searched within its limits', async () => {
    // 40 CAs all named "Issuing A" with other keys: every one a candidate by name, none signs.
    const fakes = await Promise.all(
      Array.from({ length: 4 }, () => createTestCa(dir, 'Issuing A')),
    );
    const pool = [...fakes.map((f) => cert(f.certPem)), cert(issuingA.certPem)];
    const many = Array.from({ length: 10 }, () => pool).flat();
    const search = findPaths(cert(leafA.certPem), many, [cert(rootA.certPem)], {
      maxDepth: 8,
      maxLinks: 1,
    });
    assert.equal(search.paths.length, 0);
    assert.match(search.notes.join(), /stopped after 1 links/);
    const unbounded = findPaths(cert(leafA.certPem), many, [cert(rootA.certPem)]);
    assert.equal(unbounded.paths.length, 1);
  });
});
