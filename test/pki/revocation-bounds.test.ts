/**
 * What revocation data may make the event loop do before its signature is
 * checked (it comes over plain HTTP: anyone on the path can answer): the
 * entries of a CRL indexed, the certificates of an OCSP response parsed.
 * Each at its limit and one past it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CmsError, derHeader } from '../../src/cms/asn1.js';
import { type CertificateInfo, loadCertificatesPem } from '../../src/cms/certificate.js';
import * as der from '../../src/cms/der.js';
import { childrenOf, contentOf, readTlv } from '../../src/cms/der-reader.js';
import { MAX_CRL_ENTRIES, parseCrl } from '../../src/pki/revocation/crl.js';
import {
  judgeOcspResponse,
  MAX_OCSP_CERTIFICATES,
  ocspRequest,
} from '../../src/pki/revocation/ocsp.js';
import { childrenAt, editChildren } from '../helpers/der-edit.js';
import { runToolOk } from '../helpers/openssl.js';
import { createTestCa } from '../helpers/pki.js';

/** An unsigned-looking CRL (the signature is not checked by parseCrl) of `n` entries. */
function crlOf(n: number): Buffer {
  const time = der.time(new Date('2026-01-01T00:00:00Z'));
  const entries: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const serial = Buffer.alloc(4);
    serial.writeUInt32BE(0x1000000 + i);
    entries.push(der.seq(der.intBytes(serial), time));
  }
  const list = Buffer.concat([
    derHeader(
      0x30,
      entries.reduce((a, e) => a + e.length, 0),
    ),
    ...entries,
  ]);
  const alg = der.algorithm('1.2.840.113549.1.1.11', der.nullValue());
  const tbs = der.seq(der.int(1), alg, der.seq(), time, time, list);
  return der.seq(tbs, alg, der.bitString(Buffer.alloc(256)));
}

describe('bounds: revocation data', () => {
  let dir: string;
  let response: Buffer;
  let cert: CertificateInfo;
  let caCert: CertificateInfo;
  let nonce: Buffer | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'domsec-revocation-bounds-'));
    const ca = await createTestCa(dir, 'Bounds CA');
    caCert = loadCertificatesPem(ca.certPem)[0]!;
    const leaf = await ca.issue({ commonName: 'leaf' });
    cert = loadCertificatesPem(leaf.certPem)[0]!;
    const request = ocspRequest(cert, caCert);
    nonce = request.nonce;
    await writeFile(join(dir, 'req.der'), request.der);
    // Signed by the CA itself, its certificate included.
    await runToolOk('openssl', [
      'ocsp',
      ...['-index', ca.indexPath, '-CA', ca.certPath],
      ...['-rsigner', ca.certPath, '-rkey', ca.keyPath],
      ...['-reqin', join(dir, 'req.der'), '-respout', join(dir, 'resp.der'), '-ndays', '1'],
    ]);
    response = await readFile(join(dir, 'resp.der'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test(`CRL entries: ${MAX_CRL_ENTRIES} indexed at most; one more refuses the CRL`, () => {
    assert.equal(MAX_CRL_ENTRIES, 1_000_000);
    assert.equal(parseCrl(crlOf(1000), 1000).size, 1000);
    assert.throws(
      () => parseCrl(crlOf(1001), 1000),
      (e) =>
        e instanceof CmsError && e.code === 'too-large' && /more than 1000 entries/.test(e.message),
    );
  });

  test(`OCSP: the first ${MAX_OCSP_CERTIFICATES} certificates of a response are parsed, the rest ignored`, () => {
    assert.equal(MAX_OCSP_CERTIFICATES, 8);
    /** The response with its certificates field replaced by `certs` (outside what is signed). */
    const withCertificates = (certs: Buffer[]): Buffer => {
      const outer = readTlv(response, 0);
      const [status, bytes] = childrenOf(response, outer);
      const [type, octets] = childrenOf(response, childrenOf(response, bytes!)[0]!);
      const basic = Buffer.from(contentOf(response, octets!));
      const fields = childrenAt(basic, []);
      const edited = editChildren(basic, [], () => [
        ...fields.slice(0, 3),
        der.context(0, der.seq(...certs)),
      ]);
      return der.seq(
        Buffer.from(response.subarray(status!.start, status!.end)),
        der.context(
          0,
          der.seq(Buffer.from(response.subarray(type!.start, type!.end)), der.octets(edited)),
        ),
      );
    };
    const judge = (r: Buffer) =>
      judgeOcspResponse(r, { cert, issuer: caCert, nonce, at: new Date(), skewMs: 300_000 });
    assert.equal(judge(response).status, 'good');
    // Something that is no certificate: parsed, it makes the response unusable.
    const junk = der.seq(der.int(1));
    const ca = caCert.der;
    assert.throws(() => judge(withCertificates([...new Array<Buffer>(7).fill(ca), junk])), {
      name: 'OcspError',
    });
    // Past the first eight it is not parsed.
    assert.equal(judge(withCertificates([...new Array<Buffer>(8).fill(ca), junk])).status, 'good');
    const many = [...new Array<Buffer>(8).fill(ca), ...new Array<Buffer>(1000).fill(junk)];
    assert.equal(judge(withCertificates(many)).status, 'good');
  });
});
