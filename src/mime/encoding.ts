/**
 * Canonical form and content-transfer-encodings (RFC 2045). Signing needs
 * content that no MTA will touch: CRLF line ends, 7-bit, short lines. The
 * per-byte loops run only when a fast native scan says they must.
 */

import { isAscii } from 'node:buffer';
import { MimeError } from './errors.js';

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const EQ = 0x3d;
const HEX = Buffer.from('0123456789ABCDEF');

/** True when every CR is followed by LF and every LF preceded by CR. */
function isCanonical(bytes: Buffer): boolean {
  for (let p = bytes.indexOf(LF); p >= 0; p = bytes.indexOf(LF, p + 1)) {
    if (p === 0 || bytes[p - 1] !== CR) return false;
  }
  for (let p = bytes.indexOf(CR); p >= 0; p = bytes.indexOf(CR, p + 1)) {
    if (bytes[p + 1] !== LF) return false;
  }
  return true;
}

/** Every line ending (bare LF, bare CR) as CRLF; the same Buffer when already so. */
export function canonicalize(bytes: Buffer): Buffer {
  if (isCanonical(bytes)) return bytes;
  let extra = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === CR) {
      if (bytes[i + 1] === LF) i++;
      else extra++;
    } else if (b === LF) {
      extra++;
    }
  }
  const out = Buffer.allocUnsafe(bytes.length + extra);
  let k = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === CR || b === LF) {
      out[k++] = CR;
      out[k++] = LF;
      if (b === CR && bytes[i + 1] === LF) i++;
    } else {
      out[k++] = b;
    }
  }
  return out;
}

/**
 * 7-bit data in the sense of RFC 2045 section 2.7: no octet >= 0x80, no NUL,
 * CR and LF only as CRLF, lines of at most 998 octets. Native scans (isAscii,
 * indexOf) do the per-byte work: a byte loop here was a tenth of the CPU of
 * signing a 10 KB message.
 */
export function isSevenBit(bytes: Buffer): boolean {
  if (!isAscii(bytes) || bytes.indexOf(0) >= 0) return false;
  let lineStart = 0;
  for (let cr = bytes.indexOf(CR); cr >= 0; cr = bytes.indexOf(CR, lineStart)) {
    if (bytes[cr + 1] !== LF || cr - lineStart > 998) return false;
    // A bare LF inside the line: the next LF must be the one after this CR.
    const lf = bytes.indexOf(LF, lineStart);
    if (lf !== cr + 1) return false;
    lineStart = cr + 2;
  }
  return bytes.length - lineStart <= 998 && bytes.indexOf(LF, lineStart) < 0;
}

const CTE_NAME = 'content-transfer-encoding:';
const LABEL_WINDOW = 64 * 1024;

function isBlankOrBreak(b: number | undefined): boolean {
  return b === 0x20 || (b !== undefined && b >= 0x09 && b <= 0x0d);
}

/**
 * Whether a Content-Transfer-Encoding field anywhere in `bytes` (nested parts
 * included) says 8bit or binary, as `/content-transfer-encoding:\s*(8bit|binary)/i`
 * would, but read in windows: a message-sized string would land in V8's old
 * generation and cost a major garbage collection per few large messages.
 * `from`/`to` limit where names are looked for (a slice of a large message).
 */
export function hasEightBitLabel(
  bytes: Buffer,
  window = LABEL_WINDOW,
  from = 0,
  to = bytes.length,
): boolean {
  const name = /content-transfer-encoding:/gi;
  for (let start = from; start < to; start += window) {
    // Windows overlap by the name's length less one: a name across an edge is still seen.
    // Names starting in [from, to) are judged; the value may lie past `to`.
    const end = Math.min(start + window, to) + CTE_NAME.length - 1;
    const text = bytes.toString('latin1', start, end);
    name.lastIndex = 0;
    for (let m = name.exec(text); m; m = name.exec(text)) {
      let p = start + m.index + CTE_NAME.length;
      while (isBlankOrBreak(bytes[p])) p++;
      const word = bytes.toString('latin1', p, p + 6).toLowerCase();
      if (word.startsWith('8bit') || word === 'binary') return true;
    }
  }
  return false;
}

const BASE64_LINE_OCTETS = 57; // input octets per 76-character line
const BASE64_LINE = 76;
/** Input per native encoding call: whole lines, so no padding inside the output. */
const BASE64_CHUNK_OCTETS = BASE64_LINE_OCTETS * 1024;

/** Octets that `octets` input bytes take as base64 lines, each ended by CRLF. */
export function base64LinesLength(octets: number): number {
  return Math.ceil(octets / 3) * 4 + Math.ceil(octets / BASE64_LINE_OCTETS) * 2;
}

/**
 * Writes `bytes` as base64 lines (CRLF after each, the last one included)
 * into `out` at `pos`; returns the position after them. Only the last line
 * may be short. The text of each chunk is written at the end of its region
 * and the lines are moved forward into place with copyWithin: one native
 * call per line instead of a copy through a temporary buffer.
 */
export function writeBase64Lines(out: Buffer, pos: number, bytes: Uint8Array): number {
  const data = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = pos;
  for (let i = 0; i < data.length; i += BASE64_CHUNK_OCTETS) {
    const text = data.toString('base64', i, Math.min(data.length, i + BASE64_CHUNK_OCTETS));
    const lines = Math.ceil(text.length / BASE64_LINE);
    const start = at + lines * 2;
    out.write(text, start, 'latin1');
    for (let line = 0; line < lines; line++) {
      const from = start + line * BASE64_LINE;
      const length = Math.min(BASE64_LINE, text.length - line * BASE64_LINE);
      out.copyWithin(at, from, from + length);
      at += length;
      out[at++] = CR;
      out[at++] = LF;
    }
  }
  return at;
}

/** Bytes of one base64 line with its CRLF. */
const BASE64_LINE_BYTES = BASE64_LINE + 2;

/**
 * The base64 lines of the concatenation of `parts`, written a piece of at
 * most `pieceBytes` (whole lines; only the last piece may end in a short
 * line) at a time, each piece in an ArrayBuffer of its own that can be
 * transferred to another thread. A 25 MB ciphertext then never exists as
 * one 34 MB encoding: each piece is made when it is asked for.
 */
export function* base64LinePieces(
  parts: readonly Uint8Array[],
  pieceBytes: number,
): Generator<Buffer, void, undefined> {
  const octetsPerPiece = Math.floor(pieceBytes / BASE64_LINE_BYTES) * BASE64_LINE_OCTETS;
  if (octetsPerPiece === 0) throw new RangeError(`a piece of ${pieceBytes} bytes holds no line`);
  let gathered: Uint8Array[] = [];
  let size = 0;
  const flush = (): Buffer => {
    const input = gathered.length === 1 ? gathered[0]! : Buffer.concat(gathered);
    gathered = [];
    size = 0;
    // Never from the shared pool: the piece's ArrayBuffer must be its alone.
    const out = Buffer.allocUnsafeSlow(base64LinesLength(input.length));
    writeBase64Lines(out, 0, input);
    return out;
  };
  for (const part of parts) {
    let off = 0;
    while (off < part.length) {
      const take = Math.min(octetsPerPiece - size, part.length - off);
      gathered.push(part.subarray(off, off + take));
      size += take;
      off += take;
      if (size === octetsPerPiece) yield flush();
    }
  }
  if (size > 0) yield flush();
}

/** Base64 in lines of 76 characters, each (the last included) ended by CRLF. */
export function encodeBase64Lines(bytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(base64LinesLength(bytes.length));
  writeBase64Lines(out, 0, bytes);
  return out;
}

/** Above this size decoding goes in chunks, so a 35 MB body is never copied whole into a string. */
const NATIVE_BASE64_MAX = 4 * 1024 * 1024;

const BASE64_ALPHABET = new Uint8Array(256);
for (const c of Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/')) {
  BASE64_ALPHABET[c] = 1;
}

/**
 * Decodes base64, ignoring every character outside the alphabet (RFC 2045
 * section 6.8) and stopping at the first '=' (the end of the data).
 * Node's own decoder would also accept base64url's '-' and '_', so filter first.
 */
export function decodeBase64(bytes: Buffer): Buffer {
  // Node's decoder already skips characters outside the alphabet and stops at
  // '='; it only differs in also taking base64url's '-' and '_'. Without
  // those, and for bodies small enough that a string copy does not matter,
  // it does the whole job natively (5x faster than the loops below).
  if (bytes.length <= NATIVE_BASE64_MAX && bytes.indexOf(0x2d) < 0 && bytes.indexOf(0x5f) < 0)
    return Buffer.from(bytes.toString('latin1'), 'base64');
  // Pass 1: count the alphabet characters before the first '=' (the output size).
  let count = 0;
  let end = bytes.length;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === EQ) {
      end = i;
      break;
    }
    count += BASE64_ALPHABET[b]!;
  }
  // Pass 2: filter and decode in chunks into one output buffer, so a 35 MB
  // body never exists twice more as a cleaned copy and a string.
  const out = Buffer.allocUnsafe(Math.floor((count * 3) / 4));
  const CHUNK = 64 * 1024; // a multiple of 4
  const clean = Buffer.allocUnsafe(CHUNK);
  let k = 0;
  let pos = 0;
  for (let i = 0; i < end; i++) {
    const b = bytes[i]!;
    if (BASE64_ALPHABET[b] !== 1) continue;
    clean[k++] = b;
    if (k === CHUNK) {
      pos += Buffer.from(clean.toString('latin1', 0, k), 'base64').copy(out, pos);
      k = 0;
    }
  }
  if (k > 0) pos += Buffer.from(clean.toString('latin1', 0, k), 'base64').copy(out, pos);
  return pos === out.length ? out : out.subarray(0, pos);
}

/** Growable output for encoders whose output size is not known up front. */
class ByteWriter {
  private buf: Buffer;
  private length = 0;
  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, capacity));
  }
  /** Appends up to three octets (all an encoder ever writes at once). */
  push(a: number, b?: number, c?: number): void {
    if (this.length + 3 > this.buf.length) {
      const bigger = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(bigger, 0, 0, this.length);
      this.buf = bigger;
    }
    this.buf[this.length++] = a;
    if (b !== undefined) this.buf[this.length++] = b;
    if (c !== undefined) this.buf[this.length++] = c;
  }
  result(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

const FROM_ = Buffer.from('From ');

/** Whether the octet at `i` may stand for itself in quoted-printable. */
function qpLiteral(bytes: Buffer, i: number, lineStart: boolean): boolean {
  const b = bytes[i]!;
  if (b === SP || b === HT) {
    // Trailing blanks are stripped by transports: encode them before a break or the end.
    return i + 1 < bytes.length && !(bytes[i + 1] === CR && bytes[i + 2] === LF);
  }
  if (b < 0x21 || b > 0x7e || b === EQ) return false;
  // A leading '.' or "From " is altered by some MTAs (dot-stuffing, mbox '>From').
  if (lineStart && b === 0x2e) return false;
  if (lineStart && b === 0x46 && bytes.subarray(i, i + 5).equals(FROM_)) return false;
  return true;
}

/**
 * Quoted-printable (RFC 2045 section 6.7) for arbitrary octets: CRLF pairs
 * are hard line breaks, bare CR and LF are encoded, lines are at most 76
 * characters including the soft break '='.
 */
export function encodeQuotedPrintable(bytes: Buffer): Buffer {
  const out = new ByteWriter(bytes.length + (bytes.length >> 2) + 16);
  let col = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === CR && bytes[i + 1] === LF) {
      out.push(CR, LF);
      col = 0;
      i++;
      continue;
    }
    let literal = qpLiteral(bytes, i, col === 0);
    if (col + (literal ? 1 : 3) > 75) {
      out.push(EQ, CR, LF);
      col = 0;
      literal = qpLiteral(bytes, i, true);
    }
    if (literal) {
      out.push(b);
      col += 1;
    } else {
      out.push(EQ, HEX[b >> 4]!, HEX[b & 15]!);
      col += 3;
    }
  }
  return out.result();
}

function hexValue(b: number | undefined): number {
  if (b === undefined) return -1;
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  if (b >= 0x61 && b <= 0x66) return b - 0x57; // lower case: tolerated on input
  return -1;
}

/**
 * Decodes quoted-printable: soft breaks removed, trailing blanks of each line
 * dropped (transport padding), hard breaks kept as they were (CRLF or LF),
 * an '=' not followed by two hex digits kept literally.
 */
export function decodeQuotedPrintable(bytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(bytes.length);
  let k = 0;
  let pos = 0;
  while (pos < bytes.length) {
    const lf = bytes.indexOf(LF, pos);
    const lineEnd = lf < 0 ? bytes.length : lf;
    const contentEnd = lf > pos && bytes[lf - 1] === CR ? lf - 1 : lineEnd;
    let e = contentEnd;
    while (e > pos && (bytes[e - 1] === SP || bytes[e - 1] === HT)) e--;
    const soft = e > pos && bytes[e - 1] === EQ;
    const stop = soft ? e - 1 : e;
    for (let i = pos; i < stop; i++) {
      const b = bytes[i]!;
      if (b === EQ && i + 2 < stop) {
        const hi = hexValue(bytes[i + 1]);
        const lo = hexValue(bytes[i + 2]);
        if (hi >= 0 && lo >= 0) {
          out[k++] = (hi << 4) | lo;
          i += 2;
          continue;
        }
      }
      out[k++] = b;
    }
    if (!soft && lf >= 0) k += bytes.copy(out, k, contentEnd, lf + 1);
    pos = lf < 0 ? bytes.length : lf + 1;
  }
  return out.subarray(0, k);
}

/** The content under a Content-Transfer-Encoding; an unknown one is malformed. */
export function decodeTransferEncoding(body: Buffer, cte: string): Buffer {
  switch (cte.toLowerCase()) {
    case '7bit':
    case '8bit':
    case 'binary':
      return body;
    case 'base64':
      return decodeBase64(body);
    case 'quoted-printable':
      return decodeQuotedPrintable(body);
    default:
      throw new MimeError('malformed', `unknown Content-Transfer-Encoding ${JSON.stringify(cte)}`);
  }
}
