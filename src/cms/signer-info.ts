/**
 * SignedData and its SignerInfos read by position (DER), for verify.ts:
 * asn1js costs ~6 us per node and pkijs' SignerInfo schema matching as much
 * again, most of a 10 KB message's verification. SignerInfos are DER even
 * inside BER SignedData (`openssl cms -stream`, gpgsm): the signed
 * attributes must be, and signers write the rest the same way. A SignedData
 * that is not DER as a whole is still taken apart by asn1js (verify.ts),
 * each SignerInfo then read here from its own bytes.
 */

import { childrenOf, contentOf, encodingOf, oidText, readTlv, type Tlv } from './der-reader.js';
import { OID } from './oids.js';

export interface AttributeView {
  readonly type: string;
  /** DER of each value, in order. */
  readonly values: readonly Buffer[];
  /** DER of the whole Attribute (for copying it into our own SignerInfo). */
  readonly encoding: Buffer;
}

export type SignerId =
  | { readonly issuer: Buffer; readonly serial: Buffer }
  | { readonly subjectKeyId: Buffer };

export interface SignerInfoView {
  readonly sid: SignerId;
  readonly digestAlgorithm: string;
  readonly signatureAlgorithm: string;
  /** DER of the signature algorithm's parameters (RSASSA-PSS), when present. */
  readonly signatureParams: Buffer | undefined;
  readonly signature: Buffer;
  readonly signedAttrs:
    | {
        readonly attributes: readonly AttributeView[];
        /** What the signature covers: the attributes' DER with a SET OF tag (RFC 5652 5.4). */
        readonly signed: Buffer;
      }
    | undefined;
}

const SEQUENCE = 0x30;
const SET = 0x31;
const INTEGER = 0x02;
const OCTET_STRING = 0x04;
const OBJECT_IDENTIFIER = 0x06;

function view(der: Uint8Array, bytes: Uint8Array): Buffer {
  return Buffer.from(der.buffer, bytes.byteOffset, bytes.byteLength);
}

function algorithmOf(der: Uint8Array, t: Tlv | undefined) {
  if (t?.tag !== SEQUENCE) return undefined;
  const [id, params, extra] = childrenOf(der, t);
  if (id?.tag !== OBJECT_IDENTIFIER || extra) return undefined;
  return {
    oid: oidText(contentOf(der, id)),
    params: params ? view(der, encodingOf(der, params)) : undefined,
  };
}

function attributesOf(der: Uint8Array, t: Tlv): AttributeView[] | undefined {
  const out: AttributeView[] = [];
  for (const a of childrenOf(der, t)) {
    if (a.tag !== SEQUENCE) return undefined;
    const [type, values, extra] = childrenOf(der, a);
    if (type?.tag !== OBJECT_IDENTIFIER || values?.tag !== SET || extra) return undefined;
    out.push({
      type: oidText(contentOf(der, type)),
      values: childrenOf(der, values).map((v) => view(der, encodingOf(der, v))),
      encoding: view(der, encodingOf(der, a)),
    });
  }
  return out;
}

/** One SignerInfo from its DER; undefined when it is not DER of that shape. */
export function readSignerInfo(der: Uint8Array): SignerInfoView | undefined {
  try {
    const si = readTlv(der, 0);
    if (si.tag !== SEQUENCE || si.end !== der.length) return undefined;
    const fields = childrenOf(der, si);
    const [version, sid, digestAlg] = fields;
    if (version?.tag !== INTEGER || !sid) return undefined;
    let i = 3;
    const attrs = fields[i]?.tag === 0xa0 ? fields[i++] : undefined;
    const signatureAlg = algorithmOf(der, fields[i++]);
    const signature = fields[i++];
    const digest = algorithmOf(der, digestAlg);
    if (!digest || !signatureAlg || signature?.tag !== OCTET_STRING) return undefined;
    // Only unsignedAttrs [1] may follow.
    if (fields.length > i + 1 || (fields[i] && fields[i]!.tag !== 0xa1)) return undefined;
    let id: SignerId;
    if (sid.tag === SEQUENCE) {
      const [issuer, serial, more] = childrenOf(der, sid);
      if (issuer?.tag !== SEQUENCE || serial?.tag !== INTEGER || more) return undefined;
      id = {
        issuer: view(der, encodingOf(der, issuer)),
        serial: view(der, contentOf(der, serial)),
      };
    } else if (sid.tag === 0x80) {
      id = { subjectKeyId: view(der, contentOf(der, sid)) };
    } else {
      return undefined;
    }
    let signedAttrs: SignerInfoView['signedAttrs'];
    if (attrs) {
      const attributes = attributesOf(der, attrs);
      if (!attributes) return undefined;
      const signed = Buffer.from(encodingOf(der, attrs));
      signed[0] = SET;
      signedAttrs = { attributes, signed };
    }
    return {
      sid: id,
      digestAlgorithm: digest.oid,
      signatureAlgorithm: signatureAlg.oid,
      signatureParams: signatureAlg.params,
      signature: view(der, contentOf(der, signature)),
      signedAttrs,
    };
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
    const ci = readTlv(der, 0);
    if (ci.tag !== SEQUENCE || ci.end !== der.length) return undefined;
    const [type, explicit, rest] = childrenOf(der, ci);
    if (type?.tag !== OBJECT_IDENTIFIER || explicit?.tag !== 0xa0 || rest) return undefined;
    if (oidText(contentOf(der, type)) !== OID.signedData) return undefined;
    const [sd, more] = childrenOf(der, explicit);
    if (sd?.tag !== SEQUENCE || more) return undefined;
    const fields = childrenOf(der, sd);
    const [version, digestAlgs, encap] = fields;
    const signerInfos = fields.at(-1);
    if (
      version?.tag !== INTEGER ||
      digestAlgs?.tag !== SET ||
      encap?.tag !== SEQUENCE ||
      signerInfos?.tag !== SET ||
      fields.length < 4
    )
      return undefined;
    // Between encapContentInfo and signerInfos: certificates [0], crls [1], nothing else.
    const middle = fields.slice(3, -1);
    if (middle.some((f) => f.tag !== 0xa0 && f.tag !== 0xa1)) return undefined;
    const [eType, wrapped, eMore] = childrenOf(der, encap);
    if (eType?.tag !== OBJECT_IDENTIFIER || eMore) return undefined;
    let eContent: Buffer | undefined;
    if (wrapped) {
      // [0] EXPLICIT OCTET STRING, primitive: a constructed one is read by asn1js.
      const [octets, extra] = wrapped.tag === 0xa0 ? childrenOf(der, wrapped) : [];
      if (octets?.tag !== OCTET_STRING || extra) return undefined;
      eContent = view(der, contentOf(der, octets));
    }
    const certs = middle.find((f) => f.tag === 0xa0);
    return {
      eContentType: oidText(contentOf(der, eType)),
      eContent,
      certificates: certs
        ? childrenOf(der, certs)
            .filter((c) => c.tag === SEQUENCE)
            // Copied: a cached certificate must not keep a 25 MB message alive.
            .map((c) => Buffer.from(encodingOf(der, c)))
        : [],
      signerInfos: childrenOf(der, signerInfos).map((s) => view(der, encodingOf(der, s))),
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
  if (t?.tag !== OBJECT_IDENTIFIER) return undefined;
  try {
    return oidText(contentOf(value!, t));
  } catch {
    return undefined;
  }
}

export function octetsValue(value: Buffer | undefined): Buffer | undefined {
  const t = single(value);
  return t?.tag === OCTET_STRING ? view(value!, contentOf(value!, t)) : undefined;
}

/** SMIMECapabilities ::= SEQUENCE OF SEQUENCE { capabilityID OID, parameters ANY OPTIONAL } */
export function capabilityIdsValue(value: Buffer | undefined): string[] {
  const t = single(value);
  if (t?.tag !== SEQUENCE) return [];
  try {
    return childrenOf(value!, t).flatMap((c) => {
      if (c.tag !== SEQUENCE) return [];
      const id = childrenOf(value!, c)[0];
      return id?.tag === OBJECT_IDENTIFIER ? [oidText(contentOf(value!, id))] : [];
    });
  } catch {
    return [];
  }
}
