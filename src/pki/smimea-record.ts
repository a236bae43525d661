/**
 * SMIMEA (RFC 8162): where a domain publishes the certificate of an address
 * in DNS, and what one record says. The wire layout is TLSA's (RFC 6698 2.1):
 * usage, selector, matching type, then the association data.
 */

import { createHash } from 'node:crypto';
import { domainToASCII } from 'node:url';

/** RFC 3183 / SSM naming: the address of a domain's encryption identity. */
export const DOMAIN_ENCRYPTION_LOCAL_PART = 'domain-confidentiality-authority';

export const SMIMEA_USAGE = { PKIX_TA: 0, PKIX_EE: 1, DANE_TA: 2, DANE_EE: 3 } as const;
export const SMIMEA_SELECTOR = { FULL_CERTIFICATE: 0, SUBJECT_PUBLIC_KEY_INFO: 1 } as const;
export const SMIMEA_MATCHING = { FULL: 0, SHA2_256: 1, SHA2_512: 2 } as const;

export interface SmimeaRecord {
  readonly usage: number;
  readonly selector: number;
  readonly matchingType: number;
  readonly data: Buffer;
}

/** The record, or undefined when the data is too short to be one. */
export function parseSmimeaRdata(rdata: Buffer): SmimeaRecord | undefined {
  if (rdata.length < 3) return undefined;
  return {
    usage: rdata[0]!,
    selector: rdata[1]!,
    matchingType: rdata[2]!,
    data: rdata.subarray(3),
  };
}

/**
 * RFC 8162 3 (by way of RFC 7929 3): SHA2-256 of the local part as UTF-8,
 * not case-folded or otherwise changed, truncated to its first 28 octets,
 * in hex, then `_smimecert` and the domain.
 */
export function smimeaOwnerName(localPart: string, domain: string): string {
  const hash = createHash('sha256').update(localPart, 'utf8').digest().subarray(0, 28);
  return `${hash.toString('hex')}._smimecert.${domain}`;
}

const MAX_NAME = 253;
const LDH_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * The domain as DNS labels (IDNs to A-labels), or undefined when it is not a
 * host name of at least two labels whose SMIMEA owner name fits in DNS.
 */
export function smimeaQueryDomain(domain: string): string | undefined {
  if (domain.length === 0 || domain.length > MAX_NAME) return undefined;
  const ascii = domainToASCII(domain);
  if (ascii === '' || ascii.length > MAX_NAME) return undefined;
  const labels = ascii.split('.');
  if (labels.length < 2 || !labels.every((l) => LDH_LABEL.test(l))) return undefined;
  if (/^[0-9]+$/.test(labels.at(-1)!)) return undefined; // an IPv4 address, not a domain
  if (smimeaOwnerName(DOMAIN_ENCRYPTION_LOCAL_PART, ascii).length > MAX_NAME) return undefined;
  return ascii;
}
