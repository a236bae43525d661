/**
 * The certificates inside a "certs-only" CMS SignedData (RFC 8551 3.6; the
 * value format of the LDAP attribute userSMIMECertificate, RFC 2798). The
 * blob comes from someone else's directory: parsed with tight limits, and a
 * certificate that does not parse is skipped, not fatal to its neighbours.
 */

import * as asn1js from 'asn1js';
import { type Asn1Limits, CmsError, encodedBytes } from '../cms/asn1.js';
import { type CertificateInfo, loadCertificate } from '../cms/certificate.js';
import { parseContentInfo } from '../cms/content-info.js';
import { OID } from '../cms/oids.js';

export interface ExtractedCertificates {
  readonly certificates: CertificateInfo[];
  /** Why each skipped element was skipped. */
  readonly skipped: string[];
}

/** Throws CmsError when the blob is not a SignedData at all. */
export function certificatesFromCertsOnly(
  der: Uint8Array,
  limits: Asn1Limits,
): ExtractedCertificates {
  const ci = parseContentInfo(der, limits);
  if (ci.contentType !== OID.signedData)
    throw new CmsError('unsupported', `content type ${ci.contentType} is not SignedData`);
  if (!(ci.content instanceof asn1js.Sequence))
    throw new CmsError('malformed', 'SignedData is not a SEQUENCE');
  // SignedData ::= SEQUENCE { version, digestAlgorithms, encapContentInfo,
  //   certificates [0] IMPLICIT CertificateSet OPTIONAL, crls [1] ..., signerInfos }
  const set = ci.content.valueBlock.value.find(
    (f) => f.idBlock.tagClass === 3 && f.idBlock.tagNumber === 0,
  );
  const certificates: CertificateInfo[] = [];
  const skipped: string[] = [];
  if (!(set instanceof asn1js.Constructed)) return { certificates, skipped };
  for (const choice of set.valueBlock.value) {
    // Only the plain Certificate choice; attribute and "other" certificates are of no use here.
    if (!(choice instanceof asn1js.Sequence)) {
      skipped.push('a CertificateChoices element that is not a plain certificate');
      continue;
    }
    try {
      certificates.push(loadCertificate(encodedBytes(choice)));
    } catch (err) {
      skipped.push(err instanceof Error ? err.message : String(err));
    }
  }
  return { certificates, skipped };
}
