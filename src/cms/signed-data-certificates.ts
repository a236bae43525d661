/**
 * Which of a SignedData's certificates are parsed. The certificate set is
 * not signed: anyone on the path may add to it, so what is added must neither
 * cost much nor push out the certificates that matter. Every certificate's
 * issuer, serial and subject are read by position (cheap); the ones named by
 * a SignerInfo come first, then the issuers of those (so junk cannot displace
 * a chain), then the rest in order, up to a bound. A certificate that does
 * not parse is skipped, not fatal: adding one must not turn a valid
 * signature into an error.
 */

import { CmsError } from './asn1.js';
import { type CertificateInfo, loadCertificate } from './certificate.js';
import { bufferOf, type CertificateId, TAG } from './der-fields.js';
import { childrenOf, contentOf, encodingOf, readTlv } from './der-reader.js';

export interface CertificateSetLimits {
  /** Certificates parsed from one SignedData, all purposes together. */
  readonly maxCertificates: number;
  /** Certificates tried as one signer's (matching its identifier). */
  readonly maxCandidates: number;
}

export const DEFAULT_CERTIFICATE_SET_LIMITS: CertificateSetLimits = {
  maxCertificates: 32,
  maxCandidates: 4,
};

interface Names {
  readonly issuer: Buffer;
  readonly serial: Buffer;
  readonly subject: Buffer;
}

/** tbsCertificate's issuer, serial and subject by position; undefined if not of that shape. */
function namesOf(der: Buffer): Names | undefined {
  try {
    const cert = readTlv(der, 0);
    const [tbs] = cert.tag === TAG.SEQUENCE ? childrenOf(der, cert) : [];
    if (tbs?.tag !== TAG.SEQUENCE) return undefined;
    const fields = childrenOf(der, tbs);
    const at = fields[0]?.tag === 0xa0 ? 1 : 0;
    const [serial, , issuer, , subject] = fields.slice(at);
    if (serial?.tag !== TAG.INTEGER || issuer?.tag !== TAG.SEQUENCE) return undefined;
    if (subject?.tag !== TAG.SEQUENCE) return undefined;
    return {
      issuer: bufferOf(der, encodingOf(der, issuer)),
      serial: bufferOf(der, contentOf(der, serial)),
      subject: bufferOf(der, encodingOf(der, subject)),
    };
  } catch {
    return undefined;
  }
}

export interface CertificateSet {
  /** Parsed certificates: signers' candidates first, then their issuers, then the rest. */
  readonly certificates: readonly CertificateInfo[];
  /** What was left out and why, for the report. */
  readonly notes: readonly string[];
}

export function selectCertificates(
  ders: readonly Buffer[],
  signerIds: readonly (CertificateId | undefined)[],
  limits: CertificateSetLimits = DEFAULT_CERTIFICATE_SET_LIMITS,
): CertificateSet {
  const names = ders.map(namesOf);
  const order: number[] = [];
  const chosen = new Set<number>();
  const take = (i: number): void => {
    if (!chosen.has(i) && chosen.size < limits.maxCertificates) {
      chosen.add(i);
      order.push(i);
    }
  };
  for (const sid of signerIds) {
    if (!sid || !('serial' in sid)) continue;
    ders
      .map((_, i) => i)
      .filter((i) => names[i]?.serial.equals(sid.serial) && names[i]!.issuer.equals(sid.issuer))
      .slice(0, limits.maxCandidates)
      .forEach(take);
  }
  // Issuers of what is chosen, breadth first: the chains of the signers.
  for (let k = 0; k < order.length; k++) {
    const issuer = names[order[k]!]?.issuer;
    if (!issuer) continue;
    for (let i = 0; i < ders.length; i++) if (names[i]?.subject.equals(issuer)) take(i);
  }
  for (let i = 0; i < ders.length; i++) take(i);
  const notes: string[] = [];
  if (ders.length > order.length)
    notes.push(
      `${ders.length - order.length} of ${ders.length} certificates in the message not read (at most ${limits.maxCertificates})`,
    );
  const certificates: CertificateInfo[] = [];
  let broken = 0;
  for (const i of order) {
    try {
      certificates.push(loadCertificate(ders[i]!));
    } catch (err) {
      if (!(err instanceof CmsError)) throw err;
      broken++;
    }
  }
  if (broken > 0) notes.push(`${broken} malformed certificate(s) in the message ignored`);
  return { certificates, notes };
}
