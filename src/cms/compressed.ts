/**
 * CompressedData (RFC 3274), zlib only. Decompression is bounded by a ratio
 * to the compressed size and by an absolute cap, so a small "zip bomb" costs
 * nothing but a clear error.
 */

import { deflateSync, inflateSync } from 'node:zlib';
import * as asn1js from 'asn1js';
import {
  type Asn1Limits,
  algorithm,
  CmsError,
  DEFAULT_ASN1_LIMITS,
  derOf,
  explicit,
  integer,
  octets,
  oid,
  seq,
} from './asn1.js';
import { octetStringContent, parseContentInfo } from './content-info.js';
import { OID } from './oids.js';

export interface DecompressLimits {
  /** Largest output as a multiple of the compressed input. */
  readonly maxRatio: number;
  /** Largest output in bytes, whatever the ratio. */
  readonly maxBytes: number;
}

export const DEFAULT_DECOMPRESS_LIMITS: DecompressLimits = {
  maxRatio: 100,
  maxBytes: 64 * 1024 * 1024,
};

export function createCompressedData(content: Buffer, contentType: string = OID.data): Buffer {
  const body = seq(
    integer(0),
    algorithm(OID.zlibCompress),
    seq(oid(contentType), explicit(0, octets(deflateSync(content)))),
  );
  return derOf(seq(oid(OID.compressedData), explicit(0, body)));
}

export function decompressCompressedData(
  der: Uint8Array,
  limits: DecompressLimits = DEFAULT_DECOMPRESS_LIMITS,
  asn1Limits: Asn1Limits = DEFAULT_ASN1_LIMITS,
): { contentType: string; content: Buffer } {
  const ci = parseContentInfo(der, asn1Limits);
  if (ci.contentType !== OID.compressedData)
    throw new CmsError('unsupported', `content type ${ci.contentType} is not CompressedData`);
  const fields = ci.content instanceof asn1js.Sequence ? ci.content.valueBlock.value : [];
  const alg = fields[1] instanceof asn1js.Sequence ? fields[1].valueBlock.value[0] : undefined;
  const encap = fields[2] instanceof asn1js.Sequence ? fields[2].valueBlock.value : [];
  // eContent is [0] EXPLICIT OCTET STRING; anything else there is not CompressedData.
  const wrapped = encap[1];
  const eContent =
    wrapped?.idBlock.tagClass === 3 && wrapped.idBlock.tagNumber === 0
      ? (wrapped as asn1js.Constructed).valueBlock.value?.[0]
      : undefined;
  if (
    !(alg instanceof asn1js.ObjectIdentifier) ||
    !(encap[0] instanceof asn1js.ObjectIdentifier) ||
    !eContent
  ) {
    throw new CmsError('malformed', 'CompressedData structure');
  }
  if (alg.valueBlock.toString() !== OID.zlibCompress)
    throw new CmsError('unsupported', `compression ${alg.valueBlock.toString()}`);
  const compressed = octetStringContent(eContent);
  const maxOutputLength = Math.min(
    limits.maxBytes,
    Math.max(1024, compressed.length * limits.maxRatio),
  );
  try {
    return {
      contentType: encap[0].valueBlock.toString(),
      content: inflateSync(compressed, { maxOutputLength }),
    };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') {
      throw new CmsError('too-large', `compressed content expands beyond ${maxOutputLength} bytes`);
    }
    throw new CmsError('malformed', 'compressed content is not valid zlib data');
  }
}
