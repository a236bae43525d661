/**
 * Inbound: peel the protection layers of the top-level entity (decrypt,
 * verify, decompress), record each in the report, and make the innermost
 * entity the message body and Content-* headers. Only the whole message is
 * ever unwrapped: an encrypted part beside other parts is left alone, so
 * decrypted content is never merged with attacker-controlled parts (EFAIL).
 */

import { CmsError } from '../cms/asn1.js';
import { DEFAULT_DECOMPRESS_LIMITS, decompressCompressedData } from '../cms/compressed.js';
import { peekContentType } from '../cms/content-info.js';
import { decryptEnvelope } from '../cms/decrypt.js';
import { OID } from '../cms/oids.js';
import { type VerifyOptions, verifySignedData } from '../cms/verify.js';
import {
  type ContentType,
  canonicalize,
  DEFAULT_MIME_LIMITS,
  decodeTransferEncoding,
  findHeader,
  type HeaderField,
  headerValue,
  type MimeEntity,
  type MimeLimits,
  parseContentTransferEncoding,
  parseContentType,
  parseEntity,
  splitMessage,
} from '../mime/index.js';
import { authorsOf } from './authors.js';
import { classify } from './detect.js';
import { failure, type ReportBuilder, reportBuilder } from './results.js';
import type { InboundContext, TransformResult } from './types.js';
import { verdictOf, vouchesForContent } from './verdict.js';
import { messageOf, partitionHeaders } from './wire.js';

function verifyOptions(ctx: InboundContext): VerifyOptions {
  return {
    ...(ctx.validator ? { validator: ctx.validator } : {}),
    ...(ctx.knownCertificates ? { knownCertificates: ctx.knownCertificates } : {}),
    ...(ctx.at ? { at: ctx.at } : {}),
  };
}

/**
 * Content recovered from CMS is a MIME entity; content without any header
 * (as `openssl cms` makes from a plain file) is a body with the default
 * type text/plain (RFC 2045), so it gets an empty header block.
 */
function asEntity(content: Buffer): Buffer {
  const firstLine = content.subarray(0, Math.min(content.length, 200)).toString('latin1');
  if (/^[!-9;-~]+:/.test(firstLine) || firstLine.startsWith('\r\n') || firstLine.startsWith('\n'))
    return content;
  return Buffer.concat([Buffer.from('\r\n'), content]);
}

/**
 * The message inside a header-protected entity (`message/rfc822;
 * forwarded=no`, as our outbound side and RFC 8551 3.1 wrap a whole message),
 * or undefined for any other content (a forwarded message stays as it is).
 */
function headerProtected(
  headers: readonly HeaderField[],
  body: Buffer,
  limits: MimeLimits,
): { headers: HeaderField[]; body: Buffer } | undefined {
  const ct = findHeader([...headers], 'content-type');
  const type = parseContentType(ct ? headerValue(ct) : '');
  if (type.mediaType !== 'message/rfc822' || type.params.get('forwarded')?.toLowerCase() !== 'no')
    return undefined;
  const cte = findHeader([...headers], 'content-transfer-encoding');
  const bytes = decodeTransferEncoding(
    body,
    parseContentTransferEncoding(cte ? headerValue(cte) : undefined),
  );
  const message = splitMessage(bytes, limits);
  return { headers: message.headers, body: message.body };
}

/** More layers than this are refused: real mail has at most sign+encrypt+sign. */
export const MAX_LAYERS = 8;

interface Unwrapped {
  /** The inner entity, or undefined to stop here and keep the current one. */
  readonly inner: Buffer | undefined;
}

async function unwrapDetached(
  e: MimeEntity,
  ctx: InboundContext,
  report: ReportBuilder,
): Promise<Unwrapped> {
  const [signed, signature] = e.parts ?? [];
  if (!signed || !signature)
    throw new CmsError('malformed', 'multipart/signed without its two parts');
  const der = decodeTransferEncoding(signature.body, signature.transferEncoding);
  const options = verifyOptions(ctx);
  // Signers hash the canonical (CRLF) form; a message that lost its CRs in
  // transit or storage still verifies against it. The wire bytes are tried too.
  const canonical = canonicalize(signed.raw);
  let v = await verifySignedData(der, { ...options, detachedContent: canonical });
  if (canonical !== signed.raw && v.signers.some((s) => s.failure?.code === 'digest-mismatch')) {
    const asSent = await verifySignedData(der, { ...options, detachedContent: signed.raw });
    if (asSent.signers.some((s) => s.valid)) v = asSent;
  }
  report.layer({
    kind: 'signed-detached',
    signers: v.signers,
    certificates: v.certificates,
    contentType: v.contentType,
  });
  for (const n of v.notes) report.note(n);
  report.action('verified');
  return { inner: ctx.keepSignatures ? undefined : signed.raw };
}

/** What the pkcs7-mime step needs of an entity: its type, encoding and body. */
interface LeafView {
  readonly contentType: ContentType;
  readonly transferEncoding: string;
  readonly body: Buffer;
}

/** An entity's top-level view from its headers alone: no recursion into parts. */
function leafView(bytes: Buffer, limits: MimeLimits): LeafView {
  const { headers, body } = splitMessage(bytes, limits);
  const ct = findHeader(headers, 'content-type');
  const cte = findHeader(headers, 'content-transfer-encoding');
  return {
    contentType: parseContentType(ct ? headerValue(ct) : ''),
    transferEncoding: parseContentTransferEncoding(cte ? headerValue(cte) : undefined),
    body,
  };
}

async function unwrapPkcs7(
  e: LeafView,
  ctx: InboundContext,
  report: ReportBuilder,
  limits: MimeLimits,
): Promise<Unwrapped> {
  const der = decodeTransferEncoding(e.body, e.transferEncoding);
  const smimeType = e.contentType.params.get('smime-type');
  const type = peekContentType(der);
  if (type === OID.envelopedData || type === OID.authEnvelopedData) {
    const r = decryptEnvelope(der, ctx.keys);
    report.layer({
      kind: r.authenticated ? 'auth-enveloped' : 'enveloped',
      algorithm: r.contentEncryption,
      keyEncryption: r.keyEncryption,
      recipient: r.recipient,
      ...(smimeType ? { contentType: smimeType } : {}),
    });
    report.action('decrypted');
    return { inner: r.content };
  }
  if (type === OID.signedData) {
    const v = await verifySignedData(der, verifyOptions(ctx));
    report.layer({
      kind: 'signed-opaque',
      signers: v.signers,
      certificates: v.certificates,
      contentType: smimeType ?? v.contentType,
    });
    for (const n of v.notes) report.note(n);
    report.action('verified');
    return { inner: v.content };
  }
  if (type === OID.compressedData) {
    const ratio = ctx.maxCompressionRatio ?? DEFAULT_DECOMPRESS_LIMITS.maxRatio;
    const r = decompressCompressedData(der, { maxRatio: ratio, maxBytes: limits.maxSize });
    report.layer({ kind: 'compressed' });
    report.action('decompressed');
    return { inner: r.content };
  }
  report.note(`content type ${type} left as it is`);
  return { inner: undefined };
}

export async function transformInbound(
  message: Buffer,
  ctx: InboundContext,
): Promise<TransformResult> {
  const report = reportBuilder('inbound');
  const limits = ctx.limits ?? DEFAULT_MIME_LIMITS;
  try {
    const received = splitMessage(message, limits).headers;
    const parts = partitionHeaders(received);
    report.authors(authorsOf(received));
    // The message is itself the top-level entity (its other headers do not
    // matter to MIME): parsed in place, not copied.
    let current = message;
    let changed = false;
    for (let layers = 0; ; layers++) {
      // Only the top level is read first: plain mail is never parsed part by part.
      const view = leafView(current, limits);
      const protection = classify(view.contentType);
      let step: Unwrapped;
      if (protection === 'none' || protection === 'certs-only') break;
      // Counted when another layer is about to be opened: MAX_LAYERS layers themselves are fine.
      if (layers >= MAX_LAYERS)
        throw new CmsError('malformed', `more than ${MAX_LAYERS} nested protection layers`);
      if (protection === 'signed-detached')
        step = await unwrapDetached(parseEntity(current, limits), ctx, report);
      else step = await unwrapPkcs7(view, ctx, report, limits);
      if (!step.inner) break;
      current = asEntity(step.inner);
      changed = true;
    }
    if (!changed) return { ok: true, message, report: report.done() };
    const inner = splitMessage(current, limits);
    const innerParts = partitionHeaders(inner.headers);
    const wrapped = headerProtected(inner.headers, inner.body, limits);
    let delivered: Buffer;
    if (wrapped) {
      // RFC 8551 3.1: the protected copy's headers are the real ones; the
      // outer ones that it repeats (Subject "[...]", From, To...) give way,
      // trace fields added in transit (Received...) stay.
      const names = new Set(wrapped.headers.map((f) => f.name.toLowerCase()));
      const trace = parts.outer.filter((f) => !names.has(f.name.toLowerCase()));
      const real = partitionHeaders(wrapped.headers);
      report.action('headers-restored');
      report.authors(authorsOf(wrapped.headers));
      delivered = messageOf([...trace, ...real.outer], real.entity, wrapped.body);
    } else {
      delivered = messageOf(parts.outer, innerParts.entity, inner.body);
    }
    const done = report.done();
    // AES-CBC is malleable: decrypted content goes out only when a signature
    // bound to its author vouches for it; anything else is a failure to
    // decrypt (EFAIL gadgets, and no padding or format oracle).
    if (done.layers.some((l) => l.kind === 'enveloped') && !vouchesForContent(verdictOf(done)))
      return failure(
        report,
        'unauthenticated-content',
        'AES-CBC content without a bound, valid signature',
      );
    return { ok: true, message: delivered, report: done };
  } catch (err) {
    return failure(report, err);
  }
}
