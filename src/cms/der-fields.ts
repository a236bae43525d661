/**
 * CMS fields read by position (see der-reader.ts), shared by the
 * EnvelopedData and SignedData readers: the tags they check, algorithm
 * identifiers, and the ways a certificate is named.
 */

import { childrenOf, contentOf, encodingOf, oidText, readTlv, type Tlv } from './der-reader.js';

export const TAG = {
  INTEGER: 0x02,
  OCTET_STRING: 0x04,
  OBJECT_IDENTIFIER: 0x06,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** A certificate named by issuer and serial (serial as INTEGER content octets) or by key identifier. */
export type CertificateId =
  | { readonly issuer: Buffer; readonly serial: Buffer }
  | { readonly subjectKeyId: Buffer };

/** `bytes` (a subarray of `der`) as a Buffer over the same memory. */
export function bufferOf(der: Uint8Array, bytes: Uint8Array): Buffer {
  return Buffer.from(der.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A DER ContentInfo filling all of `der`: its content type and the SEQUENCE
 * inside [0] EXPLICIT; undefined for any other shape. Throws on encodings
 * the reader refuses (the callers catch).
 */
export function contentInfoOf(der: Uint8Array): { contentType: string; body: Tlv } | undefined {
  const ci = readTlv(der, 0);
  if (ci.tag !== TAG.SEQUENCE || ci.end !== der.length) return undefined;
  const [type, explicit, rest] = childrenOf(der, ci);
  if (type?.tag !== TAG.OBJECT_IDENTIFIER || explicit?.tag !== 0xa0 || rest) return undefined;
  const [body, more] = childrenOf(der, explicit);
  if (body?.tag !== TAG.SEQUENCE || more) return undefined;
  return { contentType: oidText(contentOf(der, type)), body };
}

/** AlgorithmIdentifier: the OID and the parameters' DER (absent when none); undefined if malformed. */
export function algorithmOf(der: Uint8Array, t: Tlv | undefined) {
  if (t?.tag !== TAG.SEQUENCE) return undefined;
  const [id, params, extra] = childrenOf(der, t);
  if (id?.tag !== TAG.OBJECT_IDENTIFIER || extra) return undefined;
  return {
    oid: oidText(contentOf(der, id)),
    params: params ? bufferOf(der, encodingOf(der, params)) : undefined,
  };
}

/** IssuerAndSerialNumber, or [0] SubjectKeyIdentifier; undefined for anything else. */
export function certificateIdOf(der: Uint8Array, t: Tlv): CertificateId | undefined {
  if (t.tag === TAG.SEQUENCE) {
    const [issuer, serial, more] = childrenOf(der, t);
    if (issuer?.tag !== TAG.SEQUENCE || serial?.tag !== TAG.INTEGER || more) return undefined;
    return {
      issuer: bufferOf(der, encodingOf(der, issuer)),
      serial: bufferOf(der, contentOf(der, serial)),
    };
  }
  if (t.tag === 0x80) return { subjectKeyId: bufferOf(der, contentOf(der, t)) };
  return undefined;
}
