/**
 * Header fields kept as their exact bytes. Signed content must survive us
 * untouched, so a field is never re-serialised from a parsed value: `raw`
 * holds every octet of it, folding included, and the parsed views (name,
 * value) are derived from it.
 */

import { MimeError } from './errors.js';
import { type MimeLimits, resolveLimits } from './limits.js';

export {
  type ContentType,
  parseContentTransferEncoding,
  parseContentType,
} from './content-type.js';

export interface HeaderField {
  /** The field name as written (compare case-insensitively). */
  readonly name: string;
  /** Every byte of the field including folding, without the final line break. */
  readonly raw: Buffer;
}

export interface SplitMessage {
  readonly headers: HeaderField[];
  /** Zero-copy view of everything after the blank line. */
  readonly body: Buffer;
  /** Style of the first line break, so a rebuilt message can match it. */
  readonly lineEnding: 'crlf' | 'lf';
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;
const CRLF = Buffer.from('\r\n');

/** The unfolded value, one leading blank stripped, as latin1 so every byte survives. */
export function headerValue(field: HeaderField): string {
  const colon = field.raw.indexOf(COLON);
  const value = field.raw.toString('latin1', colon + 1).replace(/\r?\n/g, '');
  return value.startsWith(' ') || value.startsWith('\t') ? value.slice(1) : value;
}

export function findHeader(fields: readonly HeaderField[], name: string): HeaderField | undefined {
  const lower = name.toLowerCase();
  return fields.find((f) => f.name.toLowerCase() === lower);
}

export function findAll(fields: readonly HeaderField[], name: string): HeaderField[] {
  const lower = name.toLowerCase();
  return fields.filter((f) => f.name.toLowerCase() === lower);
}

/** A field name is printable US-ASCII without colon (RFC 5322 section 3.6.8). */
function isFieldName(name: string): boolean {
  return /^[\x21-\x39\x3b-\x7e]+$/.test(name);
}

/**
 * The name of the field starting at `line`, or a MimeError: a line in the
 * header block that is neither a continuation nor `name:` cannot be read
 * without guessing, and guessing is how parser differentials start.
 */
function fieldName(line: Buffer): string {
  const colon = line.indexOf(COLON);
  if (colon < 0) throw new MimeError('malformed', 'header line without a colon');
  // Obsolete syntax allows blanks between the name and the colon.
  const name = line.toString('latin1', 0, colon).replace(/[ \t]+$/, '');
  if (!isFieldName(name)) throw new MimeError('malformed', 'invalid header field name');
  return name;
}

/**
 * Bounds for messages already bounded where they came in (the MTA's input
 * under DOMSEC_MAX_MESSAGE_BYTES, our own output made from it): only the
 * header block is read, and the output of an allowed input may well be
 * larger than the default size bound.
 */
const ALREADY_BOUNDED: Partial<MimeLimits> = { maxSize: Number.POSITIVE_INFINITY };

/** splitMessage for a message bounded where it came in (see ALREADY_BOUNDED). */
export function splitAdmitted(message: Buffer): SplitMessage {
  return splitMessage(message, ALREADY_BOUNDED);
}

/** The body of a message bounded where it came in. */
export function bodyOf(message: Buffer): Buffer {
  return splitAdmitted(message).body;
}

/** Whether two messages have the same body (the bytes after the header block). */
export function sameBody(a: Buffer, b: Buffer): boolean {
  return bodyOf(a).equals(bodyOf(b));
}

/**
 * Splits an entity into header fields and body at the first empty line
 * (CRLF or LF endings, mixed tolerated). Without an empty line everything is
 * header and the body is empty.
 */
export function splitMessage(bytes: Buffer, limits?: Partial<MimeLimits>): SplitMessage {
  const lim = resolveLimits(limits);
  if (bytes.length > lim.maxSize) {
    throw new MimeError('too-large', `message of ${bytes.length} bytes exceeds ${lim.maxSize}`);
  }
  const headers: HeaderField[] = [];
  let lineEnding: 'crlf' | 'lf' | undefined;
  let fieldStart = -1;
  let fieldEnd = 0;
  let currentName = '';
  let unfolded = 0;
  const flush = (): void => {
    if (fieldStart < 0) return;
    headers.push({ name: currentName, raw: bytes.subarray(fieldStart, fieldEnd) });
  };
  let pos = 0;
  while (pos < bytes.length) {
    const lf = bytes.indexOf(LF, pos);
    const next = lf < 0 ? bytes.length : lf + 1;
    // End of the line's content: before CRLF, LF, or at the end of the input.
    let end = lf < 0 ? bytes.length : lf;
    if (lf > pos && bytes[lf - 1] === CR) end--;
    if (lineEnding === undefined && lf >= 0) lineEnding = end < lf ? 'crlf' : 'lf';
    if (end === pos) {
      flush();
      return { headers, body: bytes.subarray(next), lineEnding: lineEnding ?? 'crlf' };
    }
    if (next > lim.maxHeaderBytes) {
      throw new MimeError('too-large', `header block exceeds ${lim.maxHeaderBytes} bytes`);
    }
    const first = bytes[pos];
    if (first === SP || first === HT) {
      if (fieldStart < 0) throw new MimeError('malformed', 'header block starts with a blank');
      unfolded += end - pos;
    } else {
      flush();
      if (headers.length >= lim.maxHeaders) {
        throw new MimeError('too-many-headers', `more than ${lim.maxHeaders} header fields`);
      }
      fieldStart = pos;
      unfolded = end - pos;
      // Check the length before scanning the line for its colon.
      if (unfolded <= lim.maxHeaderLineLength) currentName = fieldName(bytes.subarray(pos, end));
    }
    if (unfolded > lim.maxHeaderLineLength) {
      throw new MimeError('line-too-long', `header field longer than ${lim.maxHeaderLineLength}`);
    }
    fieldEnd = end;
    pos = next;
  }
  flush();
  return { headers, body: bytes.subarray(bytes.length), lineEnding: lineEnding ?? 'crlf' };
}

/**
 * The fields that describe the MIME entity (every `Content-*`, RFC 2045
 * section 9) and the rest (message fields such as From, Subject, MIME-Version),
 * in their original order. Signing or encrypting a message wraps exactly
 * `buildEntity(content, body)`; `other` stays on the outside.
 */
export function splitContentHeaders(fields: readonly HeaderField[]): {
  content: HeaderField[];
  other: HeaderField[];
} {
  const isContent = (f: HeaderField): boolean => f.name.toLowerCase().startsWith('content-');
  return { content: fields.filter(isContent), other: fields.filter((f) => !isContent(f)) };
}

/** Each field's exact bytes followed by CRLF (no blank line). */
export function serializeHeaders(fields: readonly HeaderField[]): Buffer {
  return Buffer.concat(fields.flatMap((f) => [f.raw, CRLF]));
}

const isBlank = (ch: string | undefined): boolean => ch === ' ' || ch === '\t';

/**
 * Where to fold `line` after `start`: a blank followed by a non-blank, at most
 * 78 characters in, leaving text on both sides. Past 78 when a word is longer.
 */
function foldPoint(line: string, start: number, min: number): number {
  const ok = (i: number): boolean =>
    isBlank(line[i]) &&
    line[i + 1] !== undefined &&
    !isBlank(line[i + 1]) &&
    /[^ \t]/.test(line.slice(start, i));
  for (let i = Math.min(start + 78, line.length - 1); i > min; i--) if (ok(i)) return i;
  for (let i = start + 79; i < line.length; i++) if (ok(i)) return i;
  return -1;
}

/**
 * A new field `name: value`, folded at blanks to lines of at most 78
 * characters where words allow. The value is a byte string (latin1); line
 * breaks in it are refused so a value can never smuggle in another field.
 */
export function makeHeader(name: string, value: string): HeaderField {
  if (!isFieldName(name))
    throw new MimeError('malformed', `invalid header field name ${JSON.stringify(name)}`);
  if (/[\r\n\0]|[^\x00-\xff]/.test(value)) {
    throw new MimeError(
      'malformed',
      `header ${name}: value has a line break, NUL or a non-latin1 character`,
    );
  }
  const line = `${name}: ${value}`;
  const lines: string[] = [];
  let start = 0;
  while (line.length - start > 78) {
    const cut = foldPoint(line, start, start === 0 ? name.length : start);
    if (cut < 0) break;
    lines.push(line.slice(start, cut));
    start = cut;
  }
  lines.push(line.slice(start));
  return { name, raw: Buffer.from(lines.join('\r\n'), 'latin1') };
}
