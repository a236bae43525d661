/** ContentInfo: the outer wrapper of every CMS object, read with explicit limits. */

import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { type Asn1Limits, CmsError, DEFAULT_ASN1_LIMITS, parseBer, toBuffer } from './asn1.js';

export interface ParsedContentInfo {
  readonly contentType: string;
  readonly content: asn1js.AsnType;
}

export function parseContentInfo(
  der: Uint8Array,
  limits: Asn1Limits = DEFAULT_ASN1_LIMITS,
): ParsedContentInfo {
  const asn = parseBer(der, 'CMS ContentInfo', limits);
  try {
    const ci = new pkijs.ContentInfo({ schema: asn });
    return { contentType: ci.contentType, content: ci.content as asn1js.AsnType };
  } catch (err) {
    throw new CmsError(
      'malformed',
      `CMS ContentInfo: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

/** The octets of an OCTET STRING, primitive or constructed (BER, e.g. OpenSSL -stream). */
export function octetStringContent(block: asn1js.AsnType): Buffer {
  const parts: Buffer[] = [];
  const walk = (b: asn1js.AsnType, depth: number): void => {
    if (depth > 32) throw new CmsError('malformed', 'OCTET STRING nested too deep');
    if (b.idBlock.isConstructed) {
      for (const child of (b as asn1js.Constructed).valueBlock.value) {
        if (child instanceof asn1js.EndOfContent) continue;
        walk(child, depth + 1);
      }
      return;
    }
    if (
      b instanceof asn1js.OctetString ||
      (b.idBlock.tagClass === 1 && b.idBlock.tagNumber === 4)
    ) {
      parts.push(toBuffer((b as asn1js.OctetString).valueBlock.valueHexView));
      return;
    }
    if (b.idBlock.tagClass === 3) {
      // An implicitly tagged primitive (e.g. [0] IMPLICIT OCTET STRING in EncryptedContentInfo).
      parts.push(toBuffer((b as asn1js.Primitive).valueBlock.valueHexView));
      return;
    }
    throw new CmsError('malformed', 'expected an OCTET STRING');
  };
  walk(block, 0);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
