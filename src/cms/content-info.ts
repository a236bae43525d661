/** ContentInfo: the outer wrapper of every CMS object, read with explicit limits. */

import * as asn1js from 'asn1js';
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
  // ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY }, read by position.
  const [type, wrapped] = asn instanceof asn1js.Sequence ? asn.valueBlock.value : [];
  // A primitive [0] has no children (valueBlock.value is absent): not a ContentInfo.
  const content =
    wrapped?.idBlock.tagClass === 3 && wrapped.idBlock.tagNumber === 0
      ? (wrapped as asn1js.Constructed).valueBlock.value?.[0]
      : undefined;
  if (!(type instanceof asn1js.ObjectIdentifier) || !content) {
    throw new CmsError('malformed', 'CMS ContentInfo structure');
  }
  return { contentType: type.valueBlock.toString(), content };
}

/**
 * The content type of a ContentInfo from its first bytes, without parsing the
 * rest (which can be 25 MB): SEQUENCE header, then the OBJECT IDENTIFIER.
 */
export function peekContentType(der: Uint8Array): string {
  let i = 0;
  if (der[i++] !== 0x30) throw new CmsError('malformed', 'CMS ContentInfo is not a SEQUENCE');
  const first = der[i++] ?? 0;
  if (first & 0x80) i += first & 0x7f; // long or indefinite (0x80) length form
  if (der[i] !== 0x06) throw new CmsError('malformed', 'CMS ContentInfo without a content type');
  const length = der[i + 1] ?? 0;
  if (length > 64 || i + 2 + length > der.length)
    throw new CmsError('malformed', 'CMS content type too long');
  const oid = parseBer(der.subarray(i, i + 2 + length), 'content type');
  return (oid as asn1js.ObjectIdentifier).valueBlock.toString();
}

/** The octets of an OCTET STRING, primitive or constructed (BER, e.g. OpenSSL -stream). */
export function octetStringContent(block: asn1js.AsnType): Buffer {
  const parts: Buffer[] = [];
  const walk = (b: asn1js.AsnType, depth: number): void => {
    if (depth > 32) throw new CmsError('malformed', 'OCTET STRING nested too deep');
    const { tagClass, tagNumber, isConstructed } = b.idBlock;
    if (isConstructed) {
      // Only a constructed OCTET STRING or an implicitly tagged one holds OCTET STRINGs: other
      // constructed types (an OID with the constructed bit) have no such children in asn1js.
      const children = (b as asn1js.Constructed).valueBlock.value;
      if (!(tagClass === 3 || (tagClass === 1 && tagNumber === 4)) || !Array.isArray(children))
        throw new CmsError('malformed', 'expected an OCTET STRING');
      for (const child of children) {
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
