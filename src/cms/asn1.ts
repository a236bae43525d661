/**
 * ASN.1 on asn1js: parsing untrusted BER with explicit limits, and small
 * builders for the DER we write. asn1js's default limits (16 MiB content,
 * 10 000 nodes) reject even pkijs's own output above ~10 MB, so every parse
 * states its own.
 */

import * as asn1js from 'asn1js';

export type CmsErrorCode =
  | 'malformed'
  | 'unsupported'
  | 'too-large'
  | 'no-recipient'
  | 'decrypt-failed'
  | 'bad-signature'
  | 'digest-mismatch'
  | 'no-signer-certificate'
  | 'key-mismatch';

/** A CMS object could not be read or processed; `code` says what kind of failure. */
export class CmsError extends Error {
  override readonly name = 'CmsError';
  constructor(
    readonly code: CmsErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface Asn1Limits {
  readonly maxNodes: number;
  readonly maxContentLength: number;
  readonly maxDepth: number;
}

/**
 * maxNodes bounds memory and time more than size does: asn1js spends about
 * 1 KB of heap and 8 us per element, so 2 000 000 NULLs (4 MB of input) took
 * 1.9 GB and 17 s. Real objects need far fewer: `openssl cms -stream` output
 * of 25 MB is 15 000 elements (64 MiB: ~40 000; 1000-byte chunks: ~67 000).
 */
export const DEFAULT_ASN1_LIMITS: Asn1Limits = {
  maxNodes: 200_000,
  maxContentLength: 256 * 1024 * 1024,
  maxDepth: 64,
};

/** Parses exactly one BER element; trailing bytes or any decoding error is 'malformed'. */
export function parseBer(
  bytes: Uint8Array,
  what: string,
  limits: Asn1Limits = DEFAULT_ASN1_LIMITS,
): asn1js.AsnType {
  if (bytes.length > limits.maxContentLength) {
    throw new CmsError(
      'too-large',
      `${what}: ${bytes.length} bytes exceed the limit of ${limits.maxContentLength}`,
    );
  }
  let parsed: ReturnType<typeof asn1js.fromBER>;
  try {
    parsed = asn1js.fromBER(bytes, { ...limits, copyInput: false });
  } catch (err) {
    throw new CmsError('malformed', `${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (parsed.offset === -1 || parsed.result.error) {
    throw new CmsError('malformed', `${what}: ${parsed.result.error || 'not valid BER'}`);
  }
  if (parsed.offset !== bytes.length) {
    throw new CmsError(
      'malformed',
      `${what}: ${bytes.length - parsed.offset} unexpected bytes after the end`,
    );
  }
  return parsed.result;
}

export function toBuffer(data: ArrayBuffer | ArrayBufferView): Buffer {
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** The exact bytes an element was decoded from. */
export function encodedBytes(block: asn1js.AsnType): Buffer {
  return toBuffer(block.valueBeforeDecodeView);
}

export function derOf(block: asn1js.AsnType | { toSchema(): asn1js.AsnType }): Buffer {
  const b = 'toSchema' in block ? block.toSchema() : block;
  return Buffer.from(b.toBER(false));
}

// ---- builders -------------------------------------------------------------

export const oid = (value: string) => new asn1js.ObjectIdentifier({ value });
export const seq = (...value: asn1js.AsnType[]) => new asn1js.Sequence({ value });
export const octets = (data: Uint8Array) => new asn1js.OctetString({ valueHex: data });
export const integer = (value: number) => new asn1js.Integer({ value });
export const nullValue = () => new asn1js.Null();

/** `[n] EXPLICIT` around one element. */
export function explicit(tagNumber: number, ...value: asn1js.AsnType[]): asn1js.Constructed {
  return new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber }, value });
}

export function algorithm(id: string, params?: asn1js.AsnType): asn1js.Sequence {
  return params === undefined ? seq(oid(id)) : seq(oid(id), params);
}

// ---- list assembly for large contents -------------------------------------

/** The DER identifier and length octets of an element whose content is `length` bytes. */
export function derHeader(tag: number, length: number): Buffer {
  if (length < 0x80) return Buffer.from([tag, length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
}

/**
 * A DER element as a list of buffers: the header, then the content parts
 * untouched. Large contents (ciphertext of a 25 MB message) are thus copied
 * once, by the final Buffer.concat, instead of once per nesting level.
 */
export function tlvList(tag: number, parts: readonly Buffer[]): Buffer[] {
  let length = 0;
  for (const p of parts) length += p.length;
  return [derHeader(tag, length), ...parts];
}
