/**
 * Content-Type and Content-Transfer-Encoding values (RFC 2045), with RFC 2231
 * parameter continuations and charset'lang'%XX encoding.
 *
 * Values are "byte strings": one character per octet (latin1), the same
 * convention as headerValue(), so Buffer.from(value, 'latin1') gives back the
 * exact octets. That matters for the boundary, which must match byte for byte.
 * RFC 2231 values are percent-decoded to octets; their charset is not applied.
 */

export interface ContentType {
  readonly type: string;
  readonly subtype: string;
  /** Lower-case `type/subtype`. */
  readonly mediaType: string;
  /** Parameters by lower-case name. */
  readonly params: Map<string, string>;
}

/** RFC 2045 section 5.2: what a missing or unreadable Content-Type means. */
export function defaultContentType(): ContentType {
  return contentType('text', 'plain', new Map([['charset', 'us-ascii']]));
}

export function contentType(
  type: string,
  subtype: string,
  params: Map<string, string>,
): ContentType {
  type = type.toLowerCase();
  subtype = subtype.toLowerCase();
  return { type, subtype, mediaType: `${type}/${subtype}`, params };
}

interface Cursor {
  readonly s: string;
  i: number;
}

const TSPECIALS = '()<>@,;:\\"/[]?=';

function isTokenChar(ch: string): boolean {
  const c = ch.charCodeAt(0);
  return c > 0x20 && c < 0x7f && !TSPECIALS.includes(ch);
}

/** Skips whitespace and (nested, escaped) comments; an unclosed comment runs to the end. */
function skipCfws(c: Cursor): void {
  while (c.i < c.s.length) {
    const ch = c.s[c.i]!;
    if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n') {
      c.i++;
    } else if (ch === '(') {
      let depth = 0;
      for (; c.i < c.s.length; c.i++) {
        const k = c.s[c.i];
        if (k === '\\') c.i++;
        else if (k === '(') depth++;
        else if (k === ')' && --depth === 0) break;
      }
      c.i++;
    } else {
      return;
    }
  }
}

function readToken(c: Cursor): string {
  const start = c.i;
  while (c.i < c.s.length && isTokenChar(c.s[c.i]!)) c.i++;
  return c.s.slice(start, c.i);
}

/** At an opening quote: the unescaped content; an unclosed string runs to the end. */
function readQuoted(c: Cursor): string {
  let out = '';
  for (c.i++; c.i < c.s.length; c.i++) {
    const ch = c.s[c.i]!;
    if (ch === '"') {
      c.i++;
      return out;
    }
    if (ch === '\\' && c.i + 1 < c.s.length) c.i++;
    out += c.s[c.i];
  }
  return out;
}

/**
 * An unquoted value, read loosely: real mailers write unquoted values with
 * tspecials in them (boundary=----=_NextPart_000), so read up to the next
 * separator instead of stopping at the first tspecial.
 */
function readLooseValue(c: Cursor): string {
  const start = c.i;
  while (c.i < c.s.length && !' \t\r\n;("'.includes(c.s[c.i]!)) c.i++;
  return c.s.slice(start, c.i);
}

/** Skips a broken parameter up to the next ';' outside a quoted string. */
function skipToSemicolon(c: Cursor): void {
  while (c.i < c.s.length && c.s[c.i] !== ';') {
    if (c.s[c.i] === '"') readQuoted(c);
    else c.i++;
  }
}

interface RawParam {
  readonly name: string;
  readonly value: string;
}

function readParams(c: Cursor): RawParam[] {
  const out: RawParam[] = [];
  while (true) {
    skipCfws(c);
    if (c.i >= c.s.length) return out;
    if (c.s[c.i] !== ';') {
      skipToSemicolon(c);
      continue;
    }
    c.i++;
    skipCfws(c);
    const name = readToken(c).toLowerCase();
    skipCfws(c);
    if (name === '' || c.s[c.i] !== '=') {
      skipToSemicolon(c);
      continue;
    }
    c.i++;
    skipCfws(c);
    const value = c.s[c.i] === '"' ? readQuoted(c) : readLooseValue(c);
    out.push({ name, value });
  }
}

/** `%XX` to the octet it names; anything else stays as it is. */
function percentDecode(s: string): string {
  return s.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) =>
    String.fromCharCode(Number.parseInt(hex, 16)),
  );
}

/** Drops the charset'lang' prefix of the first extended section. */
function stripCharsetLang(value: string): string {
  const first = value.indexOf("'");
  const second = first < 0 ? -1 : value.indexOf("'", first + 1);
  return second < 0 ? value : value.slice(second + 1);
}

interface Section {
  readonly value: string;
  readonly extended: boolean;
}

/**
 * Folds RFC 2231 sections (name*0, name*1*, name*) into plain parameters.
 * The first occurrence of each form wins; an encoded form beats a plain one,
 * being the more exact spelling of the same value.
 */
function assemble(raw: RawParam[]): Map<string, string> {
  const plain = new Map<string, string>();
  const sections = new Map<string, Map<number, Section>>();
  for (const { name, value } of raw) {
    const m = /^([^*]+)(?:\*([0-9]{1,6}))?(\*)?$/.exec(name);
    if (m === null || (m[2] === undefined && m[3] === undefined)) {
      if (!plain.has(name)) plain.set(name, value);
      continue;
    }
    const base = m[1]!;
    const index = m[2] === undefined ? 0 : Number(m[2]);
    const byIndex = sections.get(base) ?? new Map<number, Section>();
    sections.set(base, byIndex);
    if (!byIndex.has(index)) byIndex.set(index, { value, extended: m[3] !== undefined });
  }
  for (const [base, byIndex] of sections) {
    let joined = '';
    // Only contiguous sections from 0 count (RFC 2231 section 3).
    for (let n = 0; byIndex.has(n); n++) {
      const { value, extended } = byIndex.get(n)!;
      if (!extended) joined += value;
      else joined += percentDecode(n === 0 ? stripCharsetLang(value) : value);
    }
    if (byIndex.has(0)) plain.set(base, joined);
  }
  return plain;
}

/** Parses a Content-Type value; missing or unreadable means text/plain; charset=us-ascii. */
export function parseContentType(value: string | undefined): ContentType {
  if (value === undefined) return defaultContentType();
  const c: Cursor = { s: value, i: 0 };
  skipCfws(c);
  const type = readToken(c);
  skipCfws(c);
  if (type === '' || c.s[c.i] !== '/') return defaultContentType();
  c.i++;
  skipCfws(c);
  const subtype = readToken(c);
  if (subtype === '') return defaultContentType();
  return contentType(type, subtype, assemble(readParams(c)));
}

/** Lower-case mechanism token; missing or empty means 7bit (RFC 2045 section 6.1). */
export function parseContentTransferEncoding(value: string | undefined): string {
  if (value === undefined) return '7bit';
  const c: Cursor = { s: value, i: 0 };
  skipCfws(c);
  const token = readToken(c).toLowerCase();
  return token === '' ? '7bit' : token;
}
