/**
 * Whether a signer certificate speaks for an author (RFC 8550 3, RFC 8551
 * 3.1, RFC 3183 3.1.2). Names are matched by OpenSSL (X509Certificate
 * checkEmail / checkHost) on the certificate's own structures:
 *
 * - an originator certificate binds the author whose address it names as an
 *   rfc822Name (local part exact, domain case-insensitive);
 * - a domain certificate binds every author in domain D when it names
 *   `domain-signing-authority@D` as an rfc822Name or D as a dNSName, exactly:
 *   no wildcards, and no subdomains (sub.D needs a certificate naming sub.D).
 *
 * Either way the certificate must be one for e-mail: when it has an
 * extendedKeyUsage, that includes emailProtection (RFC 8550 4.4.4), so a TLS
 * server certificate for D does not sign D's mail.
 */

import type { CertificateInfo } from '../cms/certificate.js';
import { OID } from '../cms/oids.js';
import type { Author } from './authors.js';

/** The RFC 3183 naming convention of a domain signing certificate. */
export const DOMAIN_SIGNING_LOCAL_PART = 'domain-signing-authority';

const ANY_EXTENDED_KEY_USAGE = '2.5.29.37.0';

export type Binding = 'address' | 'domain';

export function issuedForEmail(cert: CertificateInfo): boolean {
  const eku = cert.x509.keyUsage;
  return !eku || eku.includes(OID.emailProtection) || eku.includes(ANY_EXTENDED_KEY_USAGE);
}

/** How `cert` speaks for `author`, or undefined when it does not. */
export function bindingTo(cert: CertificateInfo, author: Author): Binding | undefined {
  if (!issuedForEmail(cert)) return undefined;
  const x = cert.x509;
  if (x.checkEmail(author.address, { subject: 'never' })) return 'address';
  if (x.checkEmail(`${DOMAIN_SIGNING_LOCAL_PART}@${author.domain}`, { subject: 'never' }))
    return 'domain';
  if (x.checkHost(author.domain, { subject: 'never', wildcards: false })) return 'domain';
  return undefined;
}
