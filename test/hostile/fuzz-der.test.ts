/**
 * The position-based DER readers of revocation against 10^5 hostile inputs
 * per target (full run): structure-aware mutations of CRLs made by
 * `openssl ca -gencrl` and of OCSP responses made by `openssl ocsp` (signed
 * by the CA and by a delegated responder). parseCrl throws only CmsError,
 * judgeOcspResponse only OcspError; what a signature covers cannot change
 * without the signature failing, so a mutated response that is accepted
 * still says what the responder said.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CmsError } from '../../src/cms/asn1.js';
import { type CertificateInfo, loadCertificatesPem, pemBlocks } from '../../src/cms/certificate.js';
import { parseCrl } from '../../src/pki/revocation/crl.js';
import {
  judgeOcspResponse,
  OcspError,
  type OcspRequest,
  ocspRequest,
} from '../../src/pki/revocation/ocsp.js';
import { runToolOk } from '../helpers/openssl.js';
import { createTestCa, type TestCa } from '../helpers/pki.js';
import { berMutatedFrom } from './ber-mutate.js';
import { fuzz, fuzzRuns } from './fuzz-budget.js';

interface OcspSeed {
  readonly der: Buffer;
  readonly cert: CertificateInfo;
  readonly request: OcspRequest;
  readonly status: 'good' | 'revoked';
}

let dir: string;
let ca: TestCa;
let caCert: CertificateInfo;
const crls: Buffer[] = [];
const ocsp: OcspSeed[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'domsec-fuzz-der-'));
  ca = await createTestCa(dir, 'Fuzz CA');
  caCert = loadCertificatesPem(ca.certPem)[0]!;
  const [good, revoked, responder] = await Promise.all([
    ca.issue({ commonName: 'good' }),
    ca.issue({ commonName: 'revoked' }),
    ca.issue({ commonName: 'responder', ocspSigning: true }),
  ]);
  crls.push(pemBlocks((await ca.crl()).pem, 'X509 CRL')[0]!);
  await ca.revoke(revoked.certPath, 'keyCompromise');
  crls.push(pemBlocks((await ca.crl()).pem, 'X509 CRL')[0]!);
  for (const [leaf, status] of [
    [good, 'good'],
    [revoked, 'revoked'],
  ] as const) {
    const cert = loadCertificatesPem(leaf.certPem)[0]!;
    for (const [signerCert, signerKey] of [
      [ca.certPath, ca.keyPath],
      [responder.certPath, responder.keyPath],
    ]) {
      const request = ocspRequest(cert, caCert);
      const reqPath = join(dir, 'req.der');
      const respPath = join(dir, 'resp.der');
      await writeFile(reqPath, request.der);
      await runToolOk('openssl', [
        'ocsp',
        '-index',
        ca.indexPath,
        '-CA',
        ca.certPath,
        '-rsigner',
        signerCert!,
        '-rkey',
        signerKey!,
        '-reqin',
        reqPath,
        '-respout',
        respPath,
        '-ndays',
        '1',
      ]);
      ocsp.push({ der: await readFile(respPath), cert, request, status });
    }
  }
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('fuzz: CRL and OCSP readers (10^5 inputs per target in the full run)', () => {
  test('the seeds are what they claim (else the fuzzing proves little)', () => {
    assert.equal(parseCrl(crls[1]!).size, 1);
    for (const s of ocsp) {
      const answer = judgeOcspResponse(s.der, {
        cert: s.cert,
        issuer: caCert,
        nonce: s.request.nonce,
        at: new Date(),
        skewMs: 300_000,
      });
      assert.equal(answer.status, s.status);
    }
  });

  test('parseCrl: only CmsError; a CRL the CA signed is one of the CA’s CRLs', (t) => {
    const seeds = crls.map((crl) => ({ crl, parsed: parseCrl(crl) }));
    let signed = 0;
    fuzz(t, 'der/crl', fuzzRuns(100_000, 500), [berMutatedFrom(crls)], ({ der }) => {
      let crl: ReturnType<typeof parseCrl>;
      try {
        crl = parseCrl(der);
      } catch (e) {
        assert.ok(e instanceof CmsError, `escaped: ${e instanceof Error ? e.stack : String(e)}`);
        return;
      }
      assert.ok(crl.size >= 0);
      try {
        crl.lookup('00');
      } catch (e) {
        assert.ok(e instanceof CmsError, `lookup escaped: ${String(e)}`);
      }
      let byCa = false;
      try {
        byCa = crl.signedBy(caCert.publicKey);
      } catch (e) {
        // An algorithm we do not know is an error by design, not a "no".
        assert.ok(
          e instanceof CmsError && e.code === 'unsupported',
          `signedBy escaped: ${String(e)}`,
        );
      }
      if (byCa) {
        signed++;
        assert.ok(
          seeds.some(
            (s) =>
              s.parsed.size === crl.size &&
              s.parsed.thisUpdate.getTime() === crl.thisUpdate.getTime(),
          ),
          'a CRL with a valid signature says what the CA said',
        );
      }
    });
    assert.ok(signed > 0, 'some mutations keep the signed part intact');
  });

  test('judgeOcspResponse: only OcspError; an accepted answer is the responder’s answer', (t) => {
    let accepted = 0;
    fuzz(
      t,
      'der/ocsp',
      fuzzRuns(100_000, 500),
      [berMutatedFrom(ocsp.map((s) => s.der))],
      ({ seed, der }) => {
        const s = ocsp[seed]!;
        try {
          const answer = judgeOcspResponse(der, {
            cert: s.cert,
            issuer: caCert,
            nonce: s.request.nonce,
            at: new Date(),
            skewMs: 300_000,
          });
          accepted++;
          assert.equal(
            answer.status,
            s.status,
            'an accepted answer is the one the responder signed',
          );
        } catch (e) {
          assert.ok(e instanceof OcspError, `escaped: ${e instanceof Error ? e.stack : String(e)}`);
        }
      },
    );
    assert.ok(accepted > 0, 'some mutations keep the signed part intact');
  });
});
