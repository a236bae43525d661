/**
 * Inputs the fuzzers found that escaped as untyped errors (TypeError, a
 * pkijs schema error, an OpenSSL decode error), reduced to their point.
 * Each must now be a CmsError, or (for well-signed but odd attribute
 * values) simply verify; through transformInbound none may be 'internal'.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { CmsError } from '../../src/cms/asn1.js';
import { loadCertificate } from '../../src/cms/certificate.js';
import { decompressCompressedData } from '../../src/cms/compressed.js';
import { parseContentInfo } from '../../src/cms/content-info.js';
import { decryptEnvelope } from '../../src/cms/decrypt.js';
import * as der from '../../src/cms/der.js';
import { createEnvelope } from '../../src/cms/envelope.js';
import { OID } from '../../src/cms/oids.js';
import { attribute, createSignedData, type SigningIdentity } from '../../src/cms/sign.js';
import { verifySignedData } from '../../src/cms/verify.js';
import { type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { transformInbound } from '../../src/smime/inbound.js';
import { type BerNode, encodeTree, parseTree } from './ber-mutate.js';
import { pkcs7Message } from './cms-corpus.js';

const CONTENT = Buffer.from('Content-Type: text/plain\r\n\r\nhello\r\n');
const malformed = (e: unknown) => e instanceof CmsError && e.code === 'malformed';

let rsa: DomainPki;
let ec: DomainPki;
let signer: SigningIdentity;
before(async () => {
  [rsa, ec] = await Promise.all([
    generateDomainPki('example.org'),
    generateDomainPki('example.net', { algo: 'ec-p256' }),
  ]);
  signer = { certificate: rsa.signing.certificate, chain: [], privateKey: rsa.signing.privateKey };
});

/** The first node (pre-order) for which `pick` is true. */
function find(node: BerNode, pick: (n: BerNode) => boolean): BerNode | undefined {
  if (pick(node)) return node;
  for (const c of node.children ?? []) {
    const hit = find(c, pick);
    if (hit) return hit;
  }
  return undefined;
}

const isOid = (n: BerNode | undefined, dotted: string) =>
  n?.tag[0] === 0x06 &&
  der
    .oid(dotted)
    .subarray(2)
    .equals(n.content ?? Buffer.alloc(0));

describe('fuzz findings, fixed', () => {
  test('a certificate whose public key OpenSSL cannot decode is a CmsError; a SignedData carrying it skips it, with a note', async () => {
    const bad = Buffer.from(rsa.signing.certificate.der);
    const at = bad.indexOf(Buffer.from('0282010100', 'hex'));
    bad[at] = 0x04; // the modulus INTEGER becomes an OCTET STRING: X509Certificate parses, .publicKey throws
    assert.throws(() => loadCertificate(bad), malformed);
    const signed = await createSignedData(CONTENT, signer, { detached: false });
    const withBadCert = Buffer.from(signed);
    withBadCert[withBadCert.indexOf(Buffer.from('0282010100', 'hex'))] = 0x04;
    // The certificate set is unsigned: a broken certificate added to it must
    // not turn the message into an error, only leave its signer unverified.
    const v = await verifySignedData(withBadCert);
    assert.deepEqual(v.notes, ['1 malformed certificate(s) in the message ignored']);
    assert.equal(v.signers[0]?.failure?.code, 'no-signer-certificate');
    const r = await transformInbound(pkcs7Message(withBadCert, 'signed-data'), { keys: [] });
    assert.equal(r.ok, true);
  });

  test('a ContentInfo whose [0] is primitive is malformed', () => {
    const ci = der.seq(der.oid(OID.signedData), Buffer.from([0x80, 0x00]));
    assert.throws(() => parseContentInfo(ci), malformed);
  });

  test('CompressedData whose eContent is not [0] is malformed (found: an OID there)', () => {
    const found = Buffer.from(
      '303d060b2a864886f70d0109100109a02e302c020100300d060b2a864886f70d0109100308301806092a864886f70d010701060b2a864886f70d0109100109',
      'hex',
    );
    assert.throws(() => decompressCompressedData(found), malformed);
  });

  test('SignedData whose eContent [0] is primitive is malformed', async () => {
    const tree = parseTree(await createSignedData(CONTENT, signer, { detached: false }))!;
    const eContent = find(tree, (n) => n.tag[0] === 0xa0 && n.children?.[0]?.tag[0] === 0x04)!;
    eContent.tag = Buffer.from([0x80]);
    eContent.content = Buffer.from('x');
    delete eContent.children;
    await assert.rejects(verifySignedData(encodeTree(tree)), malformed);
  });

  test('signed attributes of the wrong type are ignored, the signature still verifies', async () => {
    const signed = await createSignedData(CONTENT, signer, {
      detached: false,
      signatureTypes: [],
      // Sorted before the real ones (shorter): these are the values read.
      extraSignedAttributes: [
        attribute(OID.signatureType, der.nullValue()),
        attribute(OID.signingTime, der.int(5)),
        attribute(OID.smimeCapabilities, der.seq(der.seq(), der.int(1))),
      ],
    });
    const v = await verifySignedData(signed);
    const s = v.signers[0]!;
    assert.equal(s.valid, true, JSON.stringify(s.failure));
    assert.deepEqual(s.signatureTypes, []);
    assert.equal(s.signingTime, undefined);
    assert.deepEqual(s.capabilities, []);
  });

  test('unreadable RSASSA-PSS parameters fail that signer, typed', async () => {
    const tree = parseTree(
      await createSignedData(CONTENT, signer, { detached: false, rsaPss: true }),
    )!;
    const alg = find(
      tree,
      (n) => n.tag[0] === 0x30 && isOid(n.children?.[0], OID.rsassaPss) && n.children!.length === 2,
    )!;
    alg.children![1] = parseTree(der.seq(der.context(0, der.int(7))))!;
    const v = await verifySignedData(encodeTree(tree));
    assert.equal(v.signers[0]!.valid, false);
    assert.equal(v.signers[0]!.failure?.code, 'malformed');
  });

  test('a SignerIdentifier that is a constructed [0] fails that signer, typed', async () => {
    const tree = parseTree(await createSignedData(CONTENT, signer, { detached: false }))!;
    const signerInfos = find(
      tree,
      (n) =>
        n.tag[0] === 0x31 &&
        n.children?.[0]?.children?.[0]?.tag[0] === 0x02 &&
        n.children[0].children.length >= 5,
    )!;
    signerInfos.children![0]!.children![1] = parseTree(
      der.context(0, der.octets(Buffer.alloc(20))),
    )!;
    const v = await verifySignedData(encodeTree(tree));
    assert.equal(v.signers[0]!.valid, false);
    assert.equal(v.signers[0]!.failure?.code, 'malformed');
  });

  test('eContent as a constructed string type (here NumericString) is malformed, not walked', () => {
    // Found by the full run: [0] { 0x32 (constructed NumericString) { SEQUENCE { OCTET STRING } } }.
    const found = Buffer.from(
      '30818a060b2a864886f70d0109100109a07b3079020100300d060b2a864886f70d01091003083065' +
        '06092a864886f70d010701a05832803080044e789c73cecf2b49cd2bd10da92c48b5522849ad28d1' +
        '2fc849ccccb35648ce482c2a4e2db12d2dd64d2c4ececce4e5e2e50ac9485548c9cf4dcccc5328ce' +
        '4ccf2b5628c9c82cd6e3e50200777317f500000000',
      'hex',
    );
    assert.throws(() => decompressCompressedData(found), malformed);
  });

  test('key agreement whose key wrap algorithm is unreadable is malformed', () => {
    const env = createEnvelope(CONTENT, [{ certificate: ec.encryption.certificate }]);
    const tree = parseTree(env)!;
    // keyEncryptionAlgorithm ::= { dhSinglePass-stdDH-sha256kdf, AlgorithmIdentifier of the wrap }
    const kea = find(
      tree,
      (n) => n.tag[0] === 0x30 && isOid(n.children?.[0], OID.dhSinglePassStdDhSha256Kdf),
    )!;
    kea.children![1] = parseTree(der.seq(der.int(1)))!;
    const key = { certificate: ec.encryption.certificate, privateKey: ec.encryption.privateKey };
    assert.throws(() => decryptEnvelope(encodeTree(tree), [key]), malformed);
  });
});
