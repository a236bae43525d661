/**
 * asn1js builds an object for every node it parses, and a certificate has
 * dozens: parsing a signature's embedded certificates cost ~2 ms a message,
 * more than the RSA work. This takes the certificates out of a DER
 * SignedData with the position-based reader, so asn1js parses only the small
 * rest, and each certificate is loaded through loadCertificate (cached by
 * digest: the same partner's certificates are parsed once). BER input
 * (indefinite lengths, as `openssl cms -stream` writes) is left whole.
 */

import { derHeader } from './asn1.js';
import { childrenOf, readTlv, type Tlv } from './der-reader.js';

export interface SplitSignedData {
  /** The ContentInfo without the SignedData's certificates field. */
  readonly rest: Buffer;
  /** Each embedded certificate's exact DER (other certificate formats are dropped, as before). */
  readonly certificates: readonly Buffer[];
}

function bytesOf(der: Uint8Array, t: Tlv): Buffer {
  return Buffer.from(der.buffer, der.byteOffset + t.start, t.end - t.start);
}

function wrap(tag: number, parts: readonly Buffer[]): Buffer {
  const length = parts.reduce((n, p) => n + p.length, 0);
  return Buffer.concat([derHeader(tag, length), ...parts]);
}

/** Undefined when the input is not definite-length DER of this shape: parse it whole then. */
export function splitSignedData(der: Uint8Array): SplitSignedData | undefined {
  try {
    const ci = readTlv(der, 0);
    if (ci.tag !== 0x30 || ci.end !== der.length) return undefined;
    const [type, explicit] = childrenOf(der, ci);
    if (type?.tag !== 0x06 || explicit?.tag !== 0xa0) return undefined;
    const sd = childrenOf(der, explicit)[0];
    if (sd?.tag !== 0x30) return undefined;
    const fields = childrenOf(der, sd);
    const certs = fields.find((f) => f.tag === 0xa0);
    if (!certs) return undefined;
    const certificates = childrenOf(der, certs)
      .filter((c) => c.tag === 0x30)
      // Copied: a cached certificate must not keep a 25 MB message alive.
      .map((c) => Buffer.from(bytesOf(der, c)));
    const kept = fields.filter((f) => f !== certs).map((f) => bytesOf(der, f));
    const rest = wrap(0x30, [bytesOf(der, type), wrap(0xa0, [wrap(0x30, kept)])]);
    return { rest, certificates };
  } catch {
    return undefined;
  }
}
