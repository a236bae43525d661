/**
 * The MIME wrapping of CMS objects (RFC 8551 3.3-3.5): application/pkcs7-mime
 * entities, multipart/signed, and the split between the headers that belong
 * to the protected entity (Content-*) and those that stay outside.
 */

import {
  encodeBase64Lines,
  generateBoundary,
  type HeaderField,
  makeHeader,
  serializeHeaders,
} from '../mime/index.js';

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
  return Buffer.concat([serializeHeaders([...headers]), CRLF, body]);
}

/** `application/pkcs7-mime; smime-type=...` with the DER in base64. */
export function pkcs7MimeEntity(der: Buffer, smimeType: SmimeType): Buffer {
  return entity(
    [
      makeHeader(
        'Content-Type',
        `application/pkcs7-mime; smime-type=${smimeType}; name="smime.p7m"`,
      ),
      makeHeader('Content-Transfer-Encoding', 'base64'),
      makeHeader('Content-Disposition', 'attachment; filename="smime.p7m"'),
    ],
    encodeBase64Lines(der),
  );
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
  const boundary = generateBoundary();
  const headers = [
    makeHeader(
      'Content-Type',
      `multipart/signed; protocol="application/pkcs7-signature"; micalg=${micalg}; boundary="${boundary}"`,
    ),
  ];
  const signaturePart = entity(
    [
      makeHeader('Content-Type', 'application/pkcs7-signature; name="smime.p7s"'),
      makeHeader('Content-Transfer-Encoding', 'base64'),
      makeHeader('Content-Disposition', 'attachment; filename="smime.p7s"'),
    ],
    encodeBase64Lines(signatureDer),
  );
  const body = Buffer.concat([
    Buffer.from(`This is an S/MIME signed message\r\n\r\n--${boundary}\r\n`),
    signed,
    Buffer.from(`\r\n--${boundary}\r\n`),
    signaturePart,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return entity(headers, body);
}

/** The outer headers, MIME-Version, then the entity (which starts with its own Content-* headers). */
export function assembleMessage(outer: readonly HeaderField[], entityBytes: Buffer): Buffer {
  return Buffer.concat([
    serializeHeaders([...outer, makeHeader('MIME-Version', '1.0')]),
    entityBytes,
  ]);
}
