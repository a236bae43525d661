/**
 * A strict, allocation-free DER reader: tag, length and content positions of
 * one TLV, and the TLVs inside a constructed one. For large DER objects whose
 * few fields we need (a CRL of 100 000 entries is 3-4 MB), where building an
 * asn1js tree of every node would cost seconds and hundreds of megabytes.
 * Definite lengths only (DER); every length is checked against its parent.
 */

import { CmsError } from './asn1.js';

export interface Tlv {
  /** The identifier octet (single-octet tags only: all we need in PKIX). */
  readonly tag: number;
  /** Offset of the identifier octet. */
  readonly start: number;
  /** Offset of the first content octet. */
  readonly contentStart: number;
  /** Offset just past the last content octet. */
  readonly end: number;
}

/** The TLV at `offset`, which must end by `limit`. */
export function readTlv(der: Uint8Array, offset: number, limit = der.length): Tlv {
  const fail = (what: string): never => {
    throw new CmsError('malformed', `DER ${what} at offset ${offset}`);
  };
  if (offset + 2 > limit) fail('truncated header');
  const tag = der[offset]!;
  if ((tag & 0x1f) === 0x1f) fail('multi-octet tag');
  const first = der[offset + 1]!;
  let length: number;
  let contentStart: number;
  if (first < 0x80) {
    length = first;
    contentStart = offset + 2;
  } else {
    const count = first & 0x7f;
    if (count === 0) fail('indefinite length');
    if (count > 4) fail('length too long');
    if (offset + 2 + count > limit) fail('truncated length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[offset + 2 + i]!;
    contentStart = offset + 2 + count;
  }
  const end = contentStart + length;
  if (end > limit) fail('length beyond its container');
  return { tag, start: offset, contentStart, end };
}

/**
 * The TLVs directly inside `parent`, in order; the first `max` only when
 * given (the rest are not read: a SET OF whose size the sender chose).
 */
export function childrenOf(der: Uint8Array, parent: Tlv, max = Infinity): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.contentStart; at < parent.end && out.length < max; ) {
    const child = readTlv(der, at, parent.end);
    out.push(child);
    at = child.end;
  }
  return out;
}

/** The whole encoding of a TLV (header and content), without copying. */
export function encodingOf(der: Uint8Array, tlv: Tlv): Uint8Array {
  return der.subarray(tlv.start, tlv.end);
}

/** The content octets of a TLV, without copying. */
export function contentOf(der: Uint8Array, tlv: Tlv): Uint8Array {
  return der.subarray(tlv.contentStart, tlv.end);
}

/** An OBJECT IDENTIFIER's content octets in dotted form. */
export function oidText(content: Uint8Array): string {
  if (content.length === 0) throw new CmsError('malformed', 'empty OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let value = 0;
  for (const byte of content) {
    value = value * 128 + (byte & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128)
      throw new CmsError('malformed', 'OBJECT IDENTIFIER arc too large');
    if ((byte & 0x80) === 0) {
      arcs.push(value);
      value = 0;
    }
  }
  if (content[content.length - 1]! & 0x80)
    throw new CmsError('malformed', 'truncated OBJECT IDENTIFIER');
  const first = arcs.shift()!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs].join('.');
}

/** UTCTime or GeneralizedTime (as X.509 restricts them: Zulu, seconds present). */
export function timeOf(der: Uint8Array, tlv: Tlv): Date {
  const text = Buffer.from(contentOf(der, tlv)).toString('latin1');
  const m =
    tlv.tag === 0x17
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
      : tlv.tag === 0x18
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(text)
        : null;
  if (!m) throw new CmsError('malformed', `time value ${JSON.stringify(text)}`);
  let year = Number(m[1]);
  if (tlv.tag === 0x17) year += year < 50 ? 2000 : 1900;
  return new Date(
    Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])),
  );
}
