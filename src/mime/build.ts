/**
 * Building new MIME entities: what the gateway emits after signing or
 * encrypting. Everything produced here is CRLF, and a multipart is built so
 * that parsing it gives back each part's bytes exactly (the CRLF before a
 * delimiter belongs to the delimiter, never to the part).
 */

import { randomUUID } from 'node:crypto';
import { MimeError } from './errors.js';
import { type HeaderField, makeHeader, serializeHeaders } from './headers.js';
import { containsBoundaryLine } from './multipart.js';

const CRLF = Buffer.from('\r\n');
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;

/**
 * A fresh boundary. "=_" cannot occur in base64 (no '=' inside, no '_') nor
 * in quoted-printable (an '=' there is followed by hex or a line break), so
 * encoded content can never contain it. randomUUID draws from Node's cached
 * entropy (122 random bits): a fresh randomBytes call cost ~10 µs per message.
 */
export function generateBoundary(): string {
  return `=_domsec_${randomUUID()}`;
}

/**
 * `type/subtype; name=value; ...`, quoting values that are not tokens.
 * Values must be printable US-ASCII: our own output never needs more, and a
 * line break here would be header injection.
 */
export function formatContentType(
  mediaType: string,
  params: Record<string, string> | ReadonlyMap<string, string> = {},
): string {
  if (!/^[^/\s]+\/[^/\s]+$/.test(mediaType) || !mediaType.split('/').every((t) => TOKEN.test(t))) {
    throw new MimeError('malformed', `invalid media type ${JSON.stringify(mediaType)}`);
  }
  const entries = params instanceof Map ? [...params] : Object.entries(params);
  let out = mediaType;
  for (const [name, value] of entries) {
    if (!TOKEN.test(name))
      throw new MimeError('malformed', `invalid parameter name ${JSON.stringify(name)}`);
    if (!/^[\x20-\x7e]*$/.test(value)) {
      throw new MimeError('malformed', `parameter ${name}: value must be printable US-ASCII`);
    }
    const quoted = TOKEN.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
    out += `; ${name}=${quoted}`;
  }
  return out;
}

/** Header fields, the blank line, the body. */
export function buildEntity(headers: readonly HeaderField[], body: Buffer): Buffer {
  return Buffer.concat([serializeHeaders(headers), CRLF, body]);
}

/** A boundary that no part contains as a line start (a given one is checked, not replaced). */
function chooseBoundary(given: string | undefined, parts: readonly Buffer[]): string {
  const collides = (b: string): boolean => parts.some((p) => containsBoundaryLine(p, b));
  if (given !== undefined) {
    if (!/^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/.test(given)) {
      throw new MimeError('malformed', `invalid boundary ${JSON.stringify(given)}`);
    }
    if (collides(given)) throw new MimeError('malformed', 'a part contains the boundary');
    return given;
  }
  // 144 random bits: a collision means something is badly wrong, not bad luck.
  for (let attempt = 0; attempt < 8; attempt++) {
    const boundary = generateBoundary();
    if (!collides(boundary)) return boundary;
  }
  throw new MimeError('malformed', 'could not find a boundary absent from the parts');
}

/**
 * A complete multipart entity: the given header fields, then Content-Type
 * `multipart/<subtype>` with `params` (boundary last, generated unless given),
 * then the parts, each an entity of its own, byte for byte.
 */
export function buildMultipart(
  headersBeforeContentType: readonly HeaderField[],
  subtype: string,
  params: Record<string, string>,
  parts: readonly Buffer[],
): Buffer {
  if (parts.length === 0) throw new MimeError('malformed', 'a multipart needs at least one part');
  const { boundary: given, ...others } = params;
  const boundary = chooseBoundary(given, parts);
  const contentType = makeHeader(
    'Content-Type',
    formatContentType(`multipart/${subtype}`, { ...others, boundary }),
  );
  const dash = Buffer.from(`--${boundary}`, 'latin1');
  const chunks: Buffer[] = [
    buildEntity([...headersBeforeContentType, contentType], Buffer.alloc(0)),
  ];
  for (const part of parts) chunks.push(dash, CRLF, part, CRLF);
  chunks.push(dash, Buffer.from('--'), CRLF);
  return Buffer.concat(chunks);
}
