/**
 * The MIME wrapping of CMS objects (RFC 8551 3.3-3.5): application/pkcs7-mime
 * entities, multipart/signed, and the split between the headers that belong
 * to the protected entity (Content-*) and those that stay outside.
 */

import {
  base64LinesLength,
  generateBoundary,
  type HeaderField,
  makeHeader,
  serializeHeaders,
  writeBase64Lines,
} from '../mime/index.js';
import { concatSliced, nextTurn, type Parts, SLICE_BYTES } from '../util/slices.js';

export type SmimeType =
  | 'signed-data'
  | 'enveloped-data'
  | 'authEnveloped-data'
  | 'compressed-data'
  | 'certs-only';

const CRLF = Buffer.from('\r\n');

export function isContentHeader(f: HeaderField): boolean {
  return f.name.toLowerCase().startsWith('content-');
}

/** Splits message headers into the entity's own (Content-*) and the rest; MIME-Version is dropped. */
export function partitionHeaders(headers: readonly HeaderField[]): {
  entity: HeaderField[];
  outer: HeaderField[];
} {
  const entity: HeaderField[] = [];
  const outer: HeaderField[] = [];
  for (const f of headers) {
    if (isContentHeader(f)) entity.push(f);
    else if (f.name.toLowerCase() !== 'mime-version') outer.push(f);
  }
  return { entity, outer };
}

/** A whole entity: its headers, a blank line, the body. */
export function entity(headers: readonly HeaderField[], body: Buffer): Buffer {
  return Buffer.concat(entityParts(headers, body));
}

/** The same as parts, each starting a line: the body is not copied. */
export function entityParts(headers: readonly HeaderField[], body: Buffer): Buffer[] {
  return [serializeHeaders([...headers]), CRLF, body];
}

const pkcs7HeadersByType = new Map<SmimeType, HeaderField[]>();

/** The entity headers of a pkcs7-mime object; built once per smime-type (folding is not free). */
function pkcs7MimeHeaders(smimeType: SmimeType): readonly HeaderField[] {
  let fields = pkcs7HeadersByType.get(smimeType);
  if (!fields) {
    fields = [
      makeHeader(
        'Content-Type',
        `application/pkcs7-mime; smime-type=${smimeType}; name="smime.p7m"`,
      ),
      makeHeader('Content-Transfer-Encoding', 'base64'),
      makeHeader('Content-Disposition', 'attachment; filename="smime.p7m"'),
    ];
    pkcs7HeadersByType.set(smimeType, fields);
  }
  return fields;
}

/** `application/pkcs7-mime; smime-type=...` with the DER in base64. */
export function pkcs7MimeEntity(der: Parts, smimeType: SmimeType): Promise<Buffer> {
  return encodeBase64LinesAfterSliced(
    Buffer.concat([serializeHeaders(pkcs7MimeHeaders(smimeType)), CRLF]),
    der,
  );
}

/** The header block (blank line included) of a whole message whose entity is a pkcs7-mime object. */
export function pkcs7MimeHead(outer: readonly HeaderField[], smimeType: SmimeType): Buffer {
  const head = serializeHeaders([
    ...outer,
    makeHeader('MIME-Version', '1.0'),
    ...pkcs7MimeHeaders(smimeType),
  ]);
  return Buffer.concat([head, CRLF]);
}

const LINE_OCTETS = 57; // input octets per 76-character base64 line

/**
 * Writes `prefix` and the base64 lines of the concatenation of `parts` into
 * `out`, yielding (as a generator) after about every SLICE_BYTES of input so
 * an async caller can let other work run. Returns the length written.
 */
function* base64LinesInto(
  out: Buffer,
  prefix: Buffer,
  list: readonly Buffer[],
): Generator<void, number> {
  let pos = prefix.copy(out, 0);
  let sinceYield = 0;
  // Whole lines are encoded straight from each part; a line spanning two parts goes through `carry`.
  let carry: Buffer | undefined;
  for (const p of list) {
    let off = 0;
    if (carry) {
      off = Math.min(LINE_OCTETS - carry.length, p.length);
      carry = Buffer.concat([carry, p.subarray(0, off)]);
      if (carry.length < LINE_OCTETS) continue;
      pos = writeBase64Lines(out, pos, carry);
      carry = undefined;
    }
    const whole = off + Math.floor((p.length - off) / LINE_OCTETS) * LINE_OCTETS;
    for (let i = off; i < whole; i += SLICE_LINES_OCTETS) {
      const end = Math.min(whole, i + SLICE_LINES_OCTETS);
      pos = writeBase64Lines(out, pos, p.subarray(i, end));
      sinceYield += end - i;
      if (sinceYield >= SLICE_BYTES) {
        sinceYield = 0;
        yield;
      }
    }
    if (whole < p.length) carry = Buffer.from(p.subarray(whole));
  }
  if (carry) pos = writeBase64Lines(out, pos, carry);
  return pos;
}

/** Whole lines per step of base64LinesInto: a yield point never splits a line. */
const SLICE_LINES_OCTETS = LINE_OCTETS * 1024;

function base64Output(prefix: Buffer, list: readonly Buffer[]): Buffer {
  let total = 0;
  for (const p of list) total += p.length;
  return Buffer.allocUnsafe(prefix.length + base64LinesLength(total));
}

/** `prefix` followed by the base64 lines (CRLF) of the concatenation of `parts`, in one allocation. */
export function encodeBase64LinesAfter(prefix: Buffer, parts: Parts): Buffer {
  const list = Buffer.isBuffer(parts) ? [parts] : parts;
  const out = base64Output(prefix, list);
  const steps = base64LinesInto(out, prefix, list);
  let r = steps.next();
  while (!r.done) r = steps.next();
  return r.value === out.length ? out : out.subarray(0, r.value);
}

/** encodeBase64LinesAfter with a turn of the event loop after about every SLICE_BYTES of input. */
export async function encodeBase64LinesAfterSliced(prefix: Buffer, parts: Parts): Promise<Buffer> {
  const list = Buffer.isBuffer(parts) ? [parts] : parts;
  const out = base64Output(prefix, list);
  const steps = base64LinesInto(out, prefix, list);
  let r = steps.next();
  while (!r.done) {
    await nextTurn();
    r = steps.next();
  }
  return r.value === out.length ? out : out.subarray(0, r.value);
}

export const MICALG: Readonly<Record<string, string>> = {
  sha1: 'sha-1',
  sha256: 'sha-256',
  sha384: 'sha-384',
  sha512: 'sha-512',
};

/**
 * multipart/signed around `signed` (exactly the bytes the signature covers;
 * the CRLF before each delimiter belongs to the delimiter, RFC 2046 5.1.1).
 */
export function multipartSigned(signed: Buffer, signatureDer: Buffer, micalg: string): Buffer {
  return Buffer.concat(multipartSignedParts(signed, signatureDer, micalg));
}

/** multipartSigned as a list of buffers: the signed content (possibly 25 MB) is not copied. */
export function multipartSignedParts(
  signed: Parts,
  signatureDer: Buffer,
  micalg: string,
): Buffer[] {
  const boundary = generateBoundary();
  const headers = serializeHeaders([
    makeHeader(
      'Content-Type',
      `multipart/signed; protocol="application/pkcs7-signature"; micalg=${micalg}; boundary="${boundary}"`,
    ),
  ]);
  return [
    headers,
    CRLF,
    Buffer.from(`This is an S/MIME signed message\r\n\r\n--${boundary}\r\n`),
    ...(Buffer.isBuffer(signed) ? [signed] : signed),
    Buffer.from(`\r\n--${boundary}\r\n`),
    encodeBase64LinesAfter(SIGNATURE_PART_HEAD, signatureDer),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ];
}

/** The headers of the application/pkcs7-signature part and the blank line after them. */
const SIGNATURE_PART_HEAD = Buffer.concat([
  serializeHeaders([
    makeHeader('Content-Type', 'application/pkcs7-signature; name="smime.p7s"'),
    makeHeader('Content-Transfer-Encoding', 'base64'),
    makeHeader('Content-Disposition', 'attachment; filename="smime.p7s"'),
  ]),
  CRLF,
]);

/** The outer headers, MIME-Version, then the entity (which starts with its own Content-* headers). */
export function assembleMessage(
  outer: readonly HeaderField[],
  entityBytes: Parts,
): Promise<Buffer> {
  return concatSliced([
    serializeHeaders([...outer, makeHeader('MIME-Version', '1.0')]),
    ...(Buffer.isBuffer(entityBytes) ? [entityBytes] : entityBytes),
  ]);
}

/** A message from outer headers, the entity's own headers and its body, in one concatenation. */
/**
 * A message of `outer` fields and an entity. MIME-Version comes from the
 * entity when it carried one (as the sender wrote it), and is added where
 * the entity has Content-* fields but none; a plain RFC 5322 body without
 * either stays without.
 */
export function messageOf(
  outer: readonly HeaderField[],
  entityHeaders: readonly HeaderField[],
  body: Buffer,
  mimeVersion?: HeaderField,
): Buffer {
  const version =
    mimeVersion ?? (entityHeaders.length > 0 ? makeHeader('MIME-Version', '1.0') : undefined);
  return Buffer.concat([
    serializeHeaders([...outer, ...(version ? [version] : []), ...entityHeaders]),
    CRLF,
    body,
  ]);
}
