/**
 * Makes an entity safe to sign: canonical CRLF everywhere and every body
 * 7-bit, so no MTA has a reason to re-encode it after we signed (RFC 1847
 * forbids re-encoding a signed part; an 8-to-7-bit downgrade in transit is
 * the classic way S/MIME signatures break).
 *
 * The output is the input with edits spliced in: leaves that are not 7-bit
 * clean are replaced whole, and Content-Transfer-Encoding fields saying 8bit
 * or binary over what is now 7-bit content are replaced by 7bit. Everything
 * else keeps its exact bytes (merely canonicalised), which also keeps
 * boundaries, preambles, epilogues and transport padding as they were.
 */

import {
  canonicalize,
  decodeTransferEncoding,
  encodeBase64Lines,
  encodeQuotedPrintable,
  isSevenBit,
} from './encoding.js';
import { type MimeEntity, parseEntity } from './entity.js';
import { MimeError } from './errors.js';
import { type HeaderField, makeHeader } from './headers.js';
import { type MimeLimits, resolveLimits } from './limits.js';
import { containsBoundaryLine } from './multipart.js';

interface Edit {
  readonly start: number;
  readonly end: number;
  readonly bytes: Buffer;
}

interface Node {
  readonly entity: MimeEntity;
  /** Index of the parent in the pre-order list, -1 for the root. */
  readonly parent: number;
}

const CRLF = Buffer.from('\r\n');
const KNOWN_ENCODINGS = new Set(['7bit', '8bit', 'binary', 'quoted-printable', 'base64']);

/** The tree in pre-order, without recursion (depth is bounded only by the limits). */
function preorder(root: MimeEntity): Node[] {
  const nodes: Node[] = [];
  const stack: Node[] = [{ entity: root, parent: -1 }];
  while (stack.length > 0) {
    const node = stack.pop()!;
    const index = nodes.push(node) - 1;
    const parts = node.entity.parts ?? [];
    for (let i = parts.length - 1; i >= 0; i--) stack.push({ entity: parts[i]!, parent: index });
  }
  return nodes;
}

/** Boundaries of every multipart enclosing node `i`: new content must not contain them. */
function enclosingBoundaries(nodes: readonly Node[], i: number): string[] {
  const out: string[] = [];
  for (let p = nodes[i]!.parent; p >= 0; p = nodes[p]!.parent) {
    const boundary = nodes[p]!.entity.boundary;
    if (boundary !== undefined) out.push(boundary);
  }
  return out;
}

/**
 * Whether the leaf is already fine. A 'binary' body is judged on its exact
 * bytes (canonicalising binary data would corrupt it); any other body will be
 * canonicalised anyway, so only its canonical form counts.
 */
function isCleanLeaf(e: MimeEntity): boolean {
  return isSevenBit(e.transferEncoding === 'binary' ? e.body : canonicalize(e.body));
}

/** Header fields with every Content-Transfer-Encoding replaced by one `cte` field. */
function withEncoding(headers: readonly HeaderField[], cte: string): HeaderField[] {
  const field = makeHeader('Content-Transfer-Encoding', cte);
  const isCte = (f: HeaderField): boolean => f.name.toLowerCase() === 'content-transfer-encoding';
  const first = headers.findIndex(isCte);
  const kept = headers.filter((f, i) => !isCte(f) || i === first);
  return first < 0 ? [...kept, field] : kept.map((f) => (isCte(f) ? field : f));
}

/**
 * New bytes for a leaf that is not 7-bit clean: text as quoted-printable
 * (readable, and canonical line ends are right for text), everything else as
 * base64 of its exact octets. Quoted-printable can, in theory, produce a line
 * that starts with an enclosing boundary; base64 cannot ('-' is not in its
 * alphabet), so it is the fallback.
 */
function reencodeLeaf(e: MimeEntity, boundaries: readonly string[]): Buffer {
  if (!KNOWN_ENCODINGS.has(e.transferEncoding)) {
    throw new MimeError(
      'malformed',
      `cannot make ${e.contentType.mediaType} 7-bit: unknown encoding ${e.transferEncoding}`,
    );
  }
  let content = decodeTransferEncoding(e.body, e.transferEncoding);
  let cte = 'base64';
  let encoded: Buffer | undefined;
  if (e.contentType.type === 'text') {
    content = canonicalize(content);
    const qp = encodeQuotedPrintable(content);
    if (!boundaries.some((b) => containsBoundaryLine(qp, b))) {
      encoded = qp;
      cte = 'quoted-printable';
    }
  }
  encoded ??= encodeBase64Lines(content);
  const head = canonicalize(
    Buffer.concat([...withEncoding(e.headers, cte).flatMap((f) => [f.raw, CRLF]), CRLF]),
  );
  return Buffer.concat([head, encoded]);
}

/** Offset of a view of `input` inside `input` (every parsed view shares its memory). */
function offsetIn(input: Buffer, view: Buffer): number {
  return view.byteOffset - input.byteOffset;
}

/**
 * Edits that relabel an 8bit or binary entity as 7bit. The label matters, not
 * just the bytes: an MTA downgrading for a peer without 8BITMIME converts
 * parts by their label (e.g. quoted-printable for "8bit"), which would
 * rewrite signed content that is in fact already 7-bit.
 */
function relabelEdits(input: Buffer, e: MimeEntity): Edit[] {
  if (e.transferEncoding !== '8bit' && e.transferEncoding !== 'binary') return [];
  const field = makeHeader('Content-Transfer-Encoding', '7bit').raw;
  return e.headers
    .filter((f) => f.name.toLowerCase() === 'content-transfer-encoding')
    .map((f) => ({
      start: offsetIn(input, f.raw),
      end: offsetIn(input, f.raw) + f.raw.length,
      bytes: field,
    }));
}

/** Whether bytes we never re-encode (headers, preamble, epilogue) are 7-bit. */
function sevenBitAsIs(bytes: Buffer | undefined): boolean {
  return bytes === undefined || isSevenBit(canonicalize(bytes));
}

/** The input with edits applied, every untouched stretch canonicalised. */
function splice(input: Buffer, edits: Edit[]): Buffer {
  if (edits.length === 0) return canonicalize(input);
  edits.sort((a, b) => a.start - b.start);
  const chunks: Buffer[] = [];
  let pos = 0;
  for (const edit of edits) {
    chunks.push(canonicalize(input.subarray(pos, edit.start)), edit.bytes);
    pos = edit.end;
  }
  chunks.push(canonicalize(input.subarray(pos)));
  return Buffer.concat(chunks);
}

/**
 * Parses the result and checks every leaf is 7-bit, labels included.
 * Canonicalising can change structure when the input used bare CRs as line
 * breaks (a bare CR before `--boundary` becomes a delimiter only once it is a
 * CRLF), so the promise is checked on the output itself, not assumed.
 */
function checkOutput(output: Buffer, limits: MimeLimits): void {
  // Re-encoding legitimately grows a message (base64: +37%) and adds a field.
  const relaxed = {
    ...limits,
    maxSize: Number.MAX_SAFE_INTEGER,
    maxHeaders: limits.maxHeaders + 1,
    maxHeaderBytes: limits.maxHeaderBytes + 64,
  };
  for (const { entity } of preorder(parseEntity(output, relaxed))) {
    const label = entity.transferEncoding;
    const leaf = entity.parts === undefined;
    if (leaf && (!isSevenBit(entity.body) || label === '8bit' || label === 'binary')) {
      throw new MimeError('malformed', 'ambiguous line endings: the canonical form is not 7-bit');
    }
  }
}

/**
 * `entityBytes` (Content-* headers and body, or a whole message) made 7-bit
 * and canonical: leaves that are not 7-bit are re-encoded, 8bit/binary labels
 * on content that is 7-bit become 7bit. Equal to canonicalize(entityBytes)
 * when nothing needed changing. Header fields, preambles and epilogues are
 * never re-encoded: a composite holding 8-bit octets there keeps its 8bit
 * label, and the result is then not 7-bit (check isSevenBit on it).
 * Throws MimeError when the input cannot be parsed, or when its canonical
 * form would still hold a body that is not 7-bit.
 */
export function toSevenBitEntity(entityBytes: Buffer, limits?: Partial<MimeLimits>): Buffer {
  const nodes = preorder(parseEntity(entityBytes, limits));
  // Per composite: does it hold 8-bit octets that no re-encoding can remove?
  const residual = new Array<boolean>(nodes.length).fill(false);
  const edits: Edit[] = [];
  // Children come after their parent in pre-order: walk backwards to see them first.
  for (let i = nodes.length - 1; i >= 0; i--) {
    const { entity, parent } = nodes[i]!;
    if (entity.parts === undefined && !isCleanLeaf(entity)) {
      const start = offsetIn(entityBytes, entity.raw);
      const bytes = reencodeLeaf(entity, enclosingBoundaries(nodes, i));
      edits.push({ start, end: start + entity.raw.length, bytes });
    } else {
      residual[i] ||= !sevenBitAsIs(entity.preamble) || !sevenBitAsIs(entity.epilogue);
      if (!residual[i]) edits.push(...relabelEdits(entityBytes, entity));
    }
    const headerBlock = entity.raw.subarray(0, entity.raw.length - entity.body.length);
    if (parent >= 0) residual[parent] ||= residual[i] || !sevenBitAsIs(headerBlock);
  }
  const output = splice(entityBytes, edits);
  checkOutput(output, resolveLimits(limits));
  return output;
}
