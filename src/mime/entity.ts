/**
 * The MIME tree of a message or entity. Every node keeps `raw`, the exact
 * subarray of the input it was read from: multipart/signed verification
 * hashes the first part exactly as it was on the wire, so nothing here ever
 * copies or re-serialises.
 *
 * The walk is iterative with an explicit stack: depth is a counted bound,
 * never a recursion that a hostile message could turn into a stack overflow.
 */

import {
  type ContentType,
  contentType,
  defaultContentType,
  parseContentTransferEncoding,
  parseContentType,
} from './content-type.js';
import { MimeError } from './errors.js';
import { findHeader, type HeaderField, headerValue, splitMessage } from './headers.js';
import { type MimeLimits, resolveLimits } from './limits.js';
import { splitMultipart } from './multipart.js';

export interface MimeEntity {
  headers: HeaderField[];
  contentType: ContentType;
  /** Lower-case Content-Transfer-Encoding, '7bit' when absent. */
  transferEncoding: string;
  /** Raw body, still transfer-encoded: the exact bytes after the blank line. */
  body: Buffer;
  /** Exact bytes of the whole entity: headers, blank line, body. */
  raw: Buffer;
  /** Children of multipart/*; for message/rfc822 the enclosed message as parts[0]. */
  parts?: MimeEntity[];
  /** Multipart only: text before the first delimiter (absent if the body starts with it). */
  preamble?: Buffer;
  /** Multipart only: text after the close delimiter's line break (absent without one). */
  epilogue?: Buffer;
  /** Multipart only: the boundary parameter as a latin1 byte string. */
  boundary?: string;
}

interface Task {
  readonly bytes: Buffer;
  readonly depth: number;
  /** Inside multipart/digest a part without Content-Type is message/rfc822 (RFC 2046 5.1.5). */
  readonly inDigest: boolean;
  readonly parent: MimeEntity[] | undefined;
  readonly index: number;
}

const CR = 0x0d;
const LF = 0x0a;

/** Every line of `buf` (line break not counted) within `max` bytes. */
function checkLineLengths(buf: Buffer, max: number, what: string): void {
  if (buf.length <= max) return;
  let start = 0;
  while (start < buf.length) {
    const lf = buf.indexOf(LF, start);
    const end = lf < 0 ? buf.length : lf;
    const length = end - start - (end > start && lf >= 0 && buf[end - 1] === CR ? 1 : 0);
    if (length > max) throw new MimeError('line-too-long', `${what} has a line over ${max} bytes`);
    if (lf < 0) return;
    start = lf + 1;
  }
}

/**
 * message/rfc822 is parsed as a nested message only when its body is not
 * transfer-encoded: otherwise the enclosed bytes are not a subarray of the
 * input and `raw` could not be exact. (An encoded one is illegal anyway,
 * RFC 2046 section 5.2.1, and stays a leaf.)
 */
function isEnclosedMessage(e: MimeEntity): boolean {
  const identity = ['7bit', '8bit', 'binary'].includes(e.transferEncoding);
  return e.contentType.mediaType === 'message/rfc822' && identity;
}

function readEntity(task: Task, limits: MimeLimits): MimeEntity {
  const { headers, body } = splitMessage(task.bytes, limits);
  const ct = findHeader(headers, 'content-type');
  const cte = findHeader(headers, 'content-transfer-encoding');
  let type: ContentType;
  if (ct !== undefined) type = parseContentType(headerValue(ct));
  else if (task.inDigest) type = contentType('message', 'rfc822', new Map());
  else type = defaultContentType();
  return {
    headers,
    contentType: type,
    transferEncoding: parseContentTransferEncoding(cte && headerValue(cte)),
    body,
    raw: task.bytes,
  };
}

/** The byte ranges of the children of `e`, or [] for a leaf. */
function children(e: MimeEntity, depth: number, budget: number, limits: MimeLimits): Buffer[] {
  const multipart = e.contentType.type === 'multipart';
  if (!multipart && !isEnclosedMessage(e)) {
    if (e.transferEncoding !== 'binary') checkLineLengths(e.body, limits.maxLineLength, 'body');
    return [];
  }
  if (depth >= limits.maxDepth) {
    throw new MimeError('too-deep', `MIME nesting deeper than ${limits.maxDepth}`);
  }
  if (!multipart) {
    if (budget < 1)
      throw new MimeError('too-many-parts', `more than ${limits.maxParts} body parts`);
    return [e.body];
  }
  const boundary = e.contentType.params.get('boundary');
  if (boundary === undefined || boundary === '') {
    throw new MimeError('malformed', `${e.contentType.mediaType} without a boundary parameter`);
  }
  const split = splitMultipart(e.body, boundary, budget);
  e.boundary = boundary;
  if (split.preamble !== undefined) {
    checkLineLengths(split.preamble, limits.maxLineLength, 'preamble');
    e.preamble = split.preamble;
  }
  if (split.epilogue !== undefined) {
    checkLineLengths(split.epilogue, limits.maxLineLength, 'epilogue');
    e.epilogue = split.epilogue;
  }
  return split.parts;
}

/**
 * Parses `bytes` into a MIME tree, honouring every bound of `limits`.
 * Throws MimeError and nothing else.
 */
export function parseEntity(bytes: Buffer, limits?: Partial<MimeLimits>): MimeEntity {
  const lim = resolveLimits(limits);
  if (bytes.length > lim.maxSize) {
    throw new MimeError('too-large', `message of ${bytes.length} bytes exceeds ${lim.maxSize}`);
  }
  let root: MimeEntity | undefined;
  let partCount = 0;
  const stack: Task[] = [{ bytes, depth: 0, inDigest: false, parent: undefined, index: 0 }];
  while (stack.length > 0) {
    const task = stack.pop()!;
    const entity = readEntity(task, lim);
    if (task.parent === undefined) root = entity;
    else task.parent[task.index] = entity;
    const ranges = children(entity, task.depth, lim.maxParts - partCount, lim);
    if (ranges.length === 0 && entity.contentType.type !== 'multipart') continue;
    partCount += ranges.length;
    const parts: MimeEntity[] = new Array(ranges.length);
    entity.parts = parts;
    const inDigest = entity.contentType.mediaType === 'multipart/digest';
    // Pushed in reverse so parts are read in order (errors then name the first bad part).
    for (let i = ranges.length - 1; i >= 0; i--) {
      stack.push({ bytes: ranges[i]!, depth: task.depth + 1, inDigest, parent: parts, index: i });
    }
  }
  return root!;
}
