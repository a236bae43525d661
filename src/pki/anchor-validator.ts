/**
 * The simplest honest validator: a path from the signer up to one of our
 * trust anchors, each link's signature checked, each certificate valid at the
 * time asked, every issuer a CA. No revocation (the full validator of src/pki
 * adds CRL/OCSP and policy); used where nothing more is configured.
 */

import type { CertificateInfo } from '../cms/certificate.js';
import type { CertificateValidator, ChainVerdict } from '../cms/verify.js';

const MAX_PATH = 8;

function sameCertificate(a: CertificateInfo, b: CertificateInfo): boolean {
  return (
    a.der.equals(b.der) || (a.subjectDer.equals(b.subjectDer) && a.publicKey.equals(b.publicKey))
  );
}

function validityProblem(c: CertificateInfo, at: Date): string | undefined {
  if (at < c.notBefore)
    return `certificate ${c.x509.subject.replace(/\n/g, ', ')} is not valid before ${c.notBefore.toISOString()}`;
  if (at > c.notAfter)
    return `certificate ${c.x509.subject.replace(/\n/g, ', ')} expired on ${c.notAfter.toISOString()}`;
  return undefined;
}

function issuedBy(child: CertificateInfo, parent: CertificateInfo): boolean {
  return (
    child.issuerDer.equals(parent.subjectDer) &&
    parent.x509.ca &&
    child.x509.verify(parent.publicKey)
  );
}

export class AnchorValidator implements CertificateValidator {
  constructor(private readonly anchors: readonly CertificateInfo[]) {}

  async validate(
    leaf: CertificateInfo,
    pool: readonly CertificateInfo[],
    at: Date,
  ): Promise<ChainVerdict> {
    const path: CertificateInfo[] = [leaf];
    let current = leaf;
    for (let depth = 0; depth < MAX_PATH; depth++) {
      const problem = validityProblem(current, at);
      if (problem) return { trusted: false, reason: problem, path };
      if (this.anchors.some((a) => sameCertificate(a, current))) return { trusted: true, path };
      const anchor = this.anchors.find((a) => issuedBy(current, a));
      if (anchor) {
        path.push(anchor);
        const anchorProblem = validityProblem(anchor, at);
        return anchorProblem
          ? { trusted: false, reason: anchorProblem, path }
          : { trusted: true, path };
      }
      const next = pool.find((c) => !path.includes(c) && issuedBy(current, c));
      if (!next)
        return { trusted: false, reason: 'no path to a trusted certificate authority', path };
      path.push(next);
      current = next;
    }
    return { trusted: false, reason: `certificate path longer than ${MAX_PATH}`, path };
  }
}
