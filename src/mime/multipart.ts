/**
 * Boundary delimiters of a multipart body (RFC 2046 section 5.1.1), found
 * with Buffer.indexOf so a large body costs one native scan, never a
 * per-byte loop in JavaScript.
 */

import { MimeError } from './errors.js';

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const DASH = 0x2d;

export interface Delimiter {
  /** Offset of the `--boundary` text (after the line break that belongs to it). */
  readonly start: number;
  /** Offset just after the delimiter line and its line break. */
  readonly next: number;
  /** `--boundary--`: what follows is the epilogue. */
  readonly close: boolean;
  /** The delimiter line ended with a line break rather than the end of the body. */
  readonly terminated: boolean;
}

/**
 * The next delimiter line at or after `from`: `--boundary` at a line start,
 * optionally `--`, transport padding (blanks), then a line break or the end.
 * A longer line that merely starts with the boundary is content.
 */
export function findDelimiter(body: Buffer, dash: Buffer, from: number): Delimiter | undefined {
  for (let p = body.indexOf(dash, from); p >= 0; p = body.indexOf(dash, p + 1)) {
    if (p > 0 && body[p - 1] !== LF) continue;
    let q = p + dash.length;
    const close = body[q] === DASH && body[q + 1] === DASH;
    if (close) q += 2;
    while (body[q] === SP || body[q] === HT) q++;
    if (q === body.length) return { start: p, next: q, close, terminated: false };
    if (body[q] === LF) return { start: p, next: q + 1, close, terminated: true };
    if (body[q] === CR && body[q + 1] === LF)
      return { start: p, next: q + 2, close, terminated: true };
    // A lone CR at the very end: a line break cut short, nothing follows it.
    if (body[q] === CR && q + 1 === body.length)
      return { start: p, next: q + 1, close, terminated: false };
  }
  return undefined;
}

/** Where the line break before `p` starts: the CRLF (or LF) before a delimiter belongs to it. */
export function lineBreakBefore(body: Buffer, p: number): number {
  if (p === 0 || body[p - 1] !== LF) return p;
  return p > 1 && body[p - 2] === CR ? p - 2 : p - 1;
}

export interface MultipartSplit {
  /** Absent when the body starts with the first delimiter. */
  readonly preamble: Buffer | undefined;
  readonly parts: Buffer[];
  /** Absent when there is no close delimiter, or nothing (not even a line break) after it. */
  readonly epilogue: Buffer | undefined;
}

/**
 * Cuts a multipart body into zero-copy part views. A missing close delimiter
 * is tolerated (the last part runs to the end of the body); a body without
 * any delimiter is malformed. `maxParts` is checked while scanning, so a
 * million tiny parts fail at the first one too many.
 */
export function splitMultipart(body: Buffer, boundary: string, maxParts: number): MultipartSplit {
  const dash = Buffer.from(`--${boundary}`, 'latin1');
  let d = findDelimiter(body, dash, 0);
  if (d === undefined) throw new MimeError('malformed', 'multipart body has no boundary delimiter');
  const preamble = d.start === 0 ? undefined : body.subarray(0, lineBreakBefore(body, d.start));
  const parts: Buffer[] = [];
  while (!d.close) {
    if (!d.terminated) return { preamble, parts, epilogue: undefined };
    if (parts.length >= maxParts) {
      throw new MimeError('too-many-parts', `more than ${maxParts} body parts`);
    }
    const start = d.next;
    const following = findDelimiter(body, dash, start);
    if (following === undefined) {
      parts.push(body.subarray(start));
      return { preamble, parts, epilogue: undefined };
    }
    parts.push(body.subarray(start, Math.max(start, lineBreakBefore(body, following.start))));
    d = following;
  }
  return { preamble, parts, epilogue: d.terminated ? body.subarray(d.next) : undefined };
}

/**
 * True when some line of `content` starts with `--boundary`. Deliberately
 * looser than findDelimiter: a lenient reader elsewhere might cut there.
 */
export function containsBoundaryLine(content: Buffer, boundary: string): boolean {
  const dash = Buffer.from(`--${boundary}`, 'latin1');
  for (let p = content.indexOf(dash); p >= 0; p = content.indexOf(dash, p + 1)) {
    if (p === 0 || content[p - 1] === LF || content[p - 1] === CR) return true;
  }
  return false;
}
