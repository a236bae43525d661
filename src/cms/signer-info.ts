/**
 * SignedData and its SignerInfos read by position (DER), for verify.ts:
 * asn1js costs ~6 us per node and pkijs' SignerInfo schema matching as much
 * again, most of a 10 KB message's verification. SignerInfos are DER even
 * inside BER SignedData (`openssl cms -stream`, gpgsm): the signed
 * attributes must be, and signers write the rest the same way. A SignedData
 * that is not DER as a whole is still taken apart by asn1js (verify.ts),
 * each SignerInfo then read here from its own bytes.
 */

import { CmsError } from './asn1.js';
import {
  algorithmOf,
  bufferOf,
  type CertificateId,
  certificateIdOf,
  contentInfoOf,
  TAG,
} from './der-fields.js';
import { childrenOf, contentOf, encodingOf, oidText, readTlv, type Tlv } from './der-reader.js';
import { OID } from './oids.js';

/**
 * Signed attributes read per SignerInfo, and values per attribute: a signer
 * sends about six, each with one value (RFC 5652 5.3 makes the ones we read
 * single-valued). Past either bound that signer is refused (`refused`),
 * without reading further; the message's other signers still count.
 */
export const MAX_SIGNED_ATTRIBUTES = 64;
export const MAX_ATTRIBUTE_VALUES = 16;

export interface AttributeView {
  readonly type: string;
  /** DER of each value, in order. */
  readonly values: readonly Buffer[];
  /** DER of the whole Attribute (for copying it into our own SignerInfo). */
  readonly encoding: Buffer;
}

export interface SignerInfoView {
  readonly sid: CertificateId;
  readonly digestAlgorithm: string;
  readonly signatureAlgorithm: string;
  /** DER of the signature algorithm's parameters (RSASSA-PSS), when present. */
  readonly signatureParams: Buffer | undefined;
  readonly signature: Buffer;
  readonly signedAttrs:
    | {
        readonly attributes: readonly AttributeView[];
        /** What the signature covers: the attributes' DER with a TAG.SET OF tag (RFC 5652 5.4). */
        readonly signed: Buffer;
      }
    | undefined;
  /** Read, but not to be checked: a bound was passed (its signed attributes are then absent). */
  readonly refused?: CmsError;
}

/** The attributes; a CmsError past a bound; undefined when not DER of that shape. */
function attributesOf(der: Uint8Array, t: Tlv): AttributeView[] | CmsError | undefined {
  const attributes = childrenOf(der, t, MAX_SIGNED_ATTRIBUTES + 1);
  if (attributes.length > MAX_SIGNED_ATTRIBUTES)
    return new CmsError(
      'too-large',
      `the signer sent more than ${MAX_SIGNED_ATTRIBUTES} signed attributes`,
    );
  const out: AttributeView[] = [];
  for (const a of attributes) {
    if (a.tag !== TAG.SEQUENCE) return undefined;
    const [type, values, extra] = childrenOf(der, a);
    if (type?.tag !== TAG.OBJECT_IDENTIFIER || values?.tag !== TAG.SET || extra) return undefined;
    const oid = oidText(contentOf(der, type));
    const each = childrenOf(der, values, MAX_ATTRIBUTE_VALUES + 1);
    if (each.length > MAX_ATTRIBUTE_VALUES)
      return new CmsError(
        'too-large',
        `the signed attribute ${oid} has more than ${MAX_ATTRIBUTE_VALUES} values`,
      );
    out.push({
      type: oid,
      values: each.map((v) => bufferOf(der, encodingOf(der, v))),
      encoding: bufferOf(der, encodingOf(der, a)),
    });
  }
  return out;
}

/** One SignerInfo from its DER; undefined when it is not DER of that shape. */
export function readSignerInfo(der: Uint8Array): SignerInfoView | undefined {
  try {
    const si = readTlv(der, 0);
    if (si.tag !== TAG.SEQUENCE || si.end !== der.length) return undefined;
    const fields = childrenOf(der, si);
    const [version, sid, digestAlg] = fields;
    if (version?.tag !== TAG.INTEGER || !sid) return undefined;
    let i = 3;
    const attrs = fields[i]?.tag === 0xa0 ? fields[i++] : undefined;
    const signatureAlg = algorithmOf(der, fields[i++]);
    const signature = fields[i++];
    const digest = algorithmOf(der, digestAlg);
    if (!digest || !signatureAlg || signature?.tag !== TAG.OCTET_STRING) return undefined;
    // Only unsignedAttrs [1] may follow.
    if (fields.length > i + 1 || (fields[i] && fields[i]!.tag !== 0xa1)) return undefined;
    const id = certificateIdOf(der, sid);
    if (!id) return undefined;
    const view = {
      sid: id,
      digestAlgorithm: digest.oid,
      signatureAlgorithm: signatureAlg.oid,
      signatureParams: signatureAlg.params,
      signature: bufferOf(der, contentOf(der, signature)),
    };
    if (!attrs) return { ...view, signedAttrs: undefined };
    const attributes = attributesOf(der, attrs);
    if (!attributes) return undefined;
    if (attributes instanceof CmsError)
      return { ...view, signedAttrs: undefined, refused: attributes };
    const signed = Buffer.from(encodingOf(der, attrs));
    signed[0] = TAG.SET;
    return { ...view, signedAttrs: { attributes, signed } };
  } catch {
    return undefined;
  }
}

export interface SignedDataView {
  readonly eContentType: string;
  /** The encapsulated content (a primitive OCTET STRING's octets), when present. */
  readonly eContent: Buffer | undefined;
  /** Each embedded certificate's DER (other certificate formats are dropped). */
  readonly certificates: readonly Buffer[];
  /** Each SignerInfo's DER. */
  readonly signerInfos: readonly Buffer[];
}

/** A DER ContentInfo(SignedData) by position; undefined for anything else (BER, other types). */
export function readSignedData(der: Uint8Array): SignedDataView | undefined {
  try {
    const ci = contentInfoOf(der);
    if (ci?.contentType !== OID.signedData) return undefined;
    const fields = childrenOf(der, ci.body);
    const [version, digestAlgs, encap] = fields;
    const signerInfos = fields.at(-1);
    if (
      version?.tag !== TAG.INTEGER ||
      digestAlgs?.tag !== TAG.SET ||
      encap?.tag !== TAG.SEQUENCE ||
      signerInfos?.tag !== TAG.SET ||
      fields.length < 4
    )
      return undefined;
    // Between encapContentInfo and signerInfos: certificates [0], crls [1], nothing else.
    const middle = fields.slice(3, -1);
    if (middle.some((f) => f.tag !== 0xa0 && f.tag !== 0xa1)) return undefined;
    const [eType, wrapped, eMore] = childrenOf(der, encap);
    if (eType?.tag !== TAG.OBJECT_IDENTIFIER || eMore) return undefined;
    let eContent: Buffer | undefined;
    if (wrapped) {
      // [0] EXPLICIT OCTET STRING, primitive: a constructed one is read by asn1js.
      const [octets, extra] = wrapped.tag === 0xa0 ? childrenOf(der, wrapped) : [];
      if (octets?.tag !== TAG.OCTET_STRING || extra) return undefined;
      eContent = bufferOf(der, contentOf(der, octets));
    }
    const certs = middle.find((f) => f.tag === 0xa0);
    return {
      eContentType: oidText(contentOf(der, eType)),
      eContent,
      certificates: certs
        ? childrenOf(der, certs)
            .filter((c) => c.tag === TAG.SEQUENCE)
            // Copied: a cached certificate must not keep a 25 MB message alive.
            .map((c) => Buffer.from(encodingOf(der, c)))
        : [],
      signerInfos: childrenOf(der, signerInfos).map((s) => bufferOf(der, encodingOf(der, s))),
    };
  } catch {
    return undefined;
  }
}

// ---- attribute values: read only when they have the expected type ----------

function single(value: Buffer | undefined): Tlv | undefined {
  if (!value) return undefined;
  try {
    const t = readTlv(value, 0);
    return t.end === value.length ? t : undefined;
  } catch {
    return undefined;
  }
}

export function oidValue(value: Buffer | undefined): string | undefined {
  const t = single(value);
  if (t?.tag !== TAG.OBJECT_IDENTIFIER) return undefined;
  try {
    return oidText(contentOf(value!, t));
  } catch {
    return undefined;
  }
}

export function octetsValue(value: Buffer | undefined): Buffer | undefined {
  const t = single(value);
  return t?.tag === TAG.OCTET_STRING ? bufferOf(value!, contentOf(value!, t)) : undefined;
}

/** SMIMECapabilities ::= TAG.SEQUENCE OF TAG.SEQUENCE { capabilityID OID, parameters ANY OPTIONAL } */
export function capabilityIdsValue(value: Buffer | undefined): string[] {
  const t = single(value);
  if (t?.tag !== TAG.SEQUENCE) return [];
  try {
    return childrenOf(value!, t).flatMap((c) => {
      if (c.tag !== TAG.SEQUENCE) return [];
      const id = childrenOf(value!, c)[0];
      return id?.tag === TAG.OBJECT_IDENTIFIER ? [oidText(contentOf(value!, id))] : [];
    });
  } catch {
    return [];
  }
}
