/**
 * Where a certificate says its status and its issuer can be found: OCSP
 * responders and CA issuers from Authority Information Access, CRLs from CRL
 * Distribution Points. Only full-name URIs are used; a distribution point
 * with a reasons subset or a separate CRL issuer covers part of the status
 * only, so it is left out rather than trusted for everything.
 */

import * as pkijs from 'pkijs';
import type { CertificateInfo } from '../cms/certificate.js';

const AIA = '1.3.6.1.5.5.7.1.1';
const CRL_DP = '2.5.29.31';
const AD_OCSP = '1.3.6.1.5.5.7.48.1';
const AD_CA_ISSUERS = '1.3.6.1.5.5.7.48.2';
const URI = 6;

export interface CertificatePointers {
  readonly ocsp: readonly string[];
  readonly caIssuers: readonly string[];
  readonly crl: readonly string[];
  /**
   * For each CRL URL, every URI of the distribution point that names it: a
   * partitioned CRL names its point by one of them (RFC 5280 6.3.3 (b)(2)).
   */
  readonly crlPoints: ReadonlyMap<string, readonly string[]>;
}

const cache = new WeakMap<CertificateInfo, CertificatePointers>();

function uris(names: readonly pkijs.GeneralName[] | undefined): string[] {
  return (names ?? [])
    .filter((n) => n.type === URI && typeof n.value === 'string')
    .map((n) => n.value as string);
}

export function pointersOf(cert: CertificateInfo): CertificatePointers {
  const known = cache.get(cert);
  if (known) return known;
  const ocsp: string[] = [];
  const caIssuers: string[] = [];
  const crl: string[] = [];
  const crlPoints = new Map<string, string[]>();
  for (const ext of cert.pkijs.extensions ?? []) {
    if (ext.extnID === AIA && ext.parsedValue instanceof pkijs.InfoAccess) {
      for (const d of ext.parsedValue.accessDescriptions) {
        const names = uris([d.accessLocation]);
        if (d.accessMethod === AD_OCSP) ocsp.push(...names);
        else if (d.accessMethod === AD_CA_ISSUERS) caIssuers.push(...names);
      }
    } else if (ext.extnID === CRL_DP && ext.parsedValue instanceof pkijs.CRLDistributionPoints) {
      for (const dp of ext.parsedValue.distributionPoints) {
        if (dp.reasons || dp.cRLIssuer || !Array.isArray(dp.distributionPoint)) continue;
        const names = uris(dp.distributionPoint as pkijs.GeneralName[]);
        crl.push(...names);
        for (const url of names) crlPoints.set(url, [...(crlPoints.get(url) ?? []), ...names]);
      }
    }
  }
  const pointers = { ocsp, caIssuers, crl, crlPoints };
  cache.set(cert, pointers);
  return pointers;
}
