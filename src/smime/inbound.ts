/**
 * Inbound: peel the protection layers of the top-level entity (decrypt,
 * verify, decompress), record each in the report, and make the innermost
 * entity the message body and Content-* headers. Only the whole message is
 * ever unwrapped: an encrypted part beside other parts is left alone, so
 * decrypted content is never merged with attacker-controlled parts (EFAIL).
 *
 * Only S/MIME's own layers are parsed: the top-level headers of each layer,
 * and a multipart/signed cut at its own boundary into the signed bytes and
 * the signature part. The sender's MIME under the last layer is delivered as
 * the sender wrote it, however defective: it is not ours to understand.
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
  MimeError,
  type MimeLimits,
  makeHeader,
  parseContentTransferEncoding,
  parseContentType,
  type SplitMessage,
  serializeHeaders,
  splitMessage,
  splitMultipart,
} from '../mime/index.js';
import { authorsOf } from './authors.js';
import { classify, type Protection } from './detect.js';
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

/** The report's note when the content under the layers is delivered without reading its headers. */
export const UNREADABLE_CONTENT =
  'the content under the protection layers has a header block that cannot be read: delivered as written';

/** More layers than this are refused: real mail has at most sign+encrypt+sign. */
export const MAX_LAYERS = 8;

/** What the pkcs7-mime step needs of an entity: its type, encoding and body. */
interface LeafView {
  readonly contentType: ContentType;
  readonly transferEncoding: string;
  readonly body: Buffer;
}

function viewOf({ headers, body }: Pick<SplitMessage, 'headers' | 'body'>): LeafView {
  const ct = findHeader(headers, 'content-type');
  const cte = findHeader(headers, 'content-transfer-encoding');
  return {
    contentType: parseContentType(ct ? headerValue(ct) : ''),
    transferEncoding: parseContentTransferEncoding(cte ? headerValue(cte) : undefined),
    body,
  };
}

/** An entity's top-level view from its headers alone: no recursion into parts. */
function leafView(bytes: Buffer, limits: MimeLimits): LeafView {
  return viewOf(splitMessage(bytes, limits));
}

/** The header block of content the sender wrote, or undefined where it is not one we can read. */
function readableHeaders(bytes: Buffer, limits: MimeLimits): SplitMessage | undefined {
  try {
    return splitMessage(bytes, limits);
  } catch (err) {
    if (err instanceof MimeError && err.code !== 'too-large') return undefined;
    throw err;
  }
}

/** A CMS object met without MIME around it, as the pkcs7-mime step sees one. */
function cmsView(der: Buffer): LeafView {
  return {
    contentType: parseContentType('application/pkcs7-mime'),
    transferEncoding: 'binary',
    body: der,
  };
}

/**
 * What one layer holds: a MIME entity (`inner`), a CMS object carried
 * without MIME around it (`cms`: signed content whose eContentType is
 * CompressedData, EnvelopedData...), or neither, to stop and keep the
 * current entity.
 */
interface Unwrapped {
  readonly inner?: Buffer;
  readonly cms?: Buffer;
}

/** CMS content types a layer may carry directly, unwrapped by their type. */
const CMS_CONTENT: ReadonlySet<string> = new Set([
  OID.signedData,
  OID.envelopedData,
  OID.authEnvelopedData,
  OID.compressedData,
]);

/** A layer's content by its content type: MIME (id-data), another CMS layer, or a clear refusal. */
function byContentType(contentType: string, content: Buffer): Unwrapped {
  if (contentType === OID.data) return { inner: content };
  if (CMS_CONTENT.has(contentType)) return { cms: content };
  throw new CmsError('unsupported', `protected content of type ${contentType} is not MIME`);
}

/**
 * The two parts of a multipart/signed, cut at its own boundary and nowhere
 * else: the signed part stays the bytes the signer signed (never parsed),
 * and only the signature part's headers are read.
 */
function signedParts(view: LeafView, limits: MimeLimits): { signed: Buffer; signature: LeafView } {
  const boundary = view.contentType.params.get('boundary');
  if (!boundary) throw new CmsError('malformed', 'multipart/signed without a boundary parameter');
  const [signed, signature] = splitMultipart(view.body, boundary, 2).parts;
  if (!signed || !signature)
    throw new CmsError('malformed', 'multipart/signed without its two parts');
  return { signed, signature: leafView(signature, limits) };
}

async function unwrapDetached(
  view: LeafView,
  ctx: InboundContext,
  report: ReportBuilder,
  limits: MimeLimits,
): Promise<Unwrapped> {
  const { signed, signature } = signedParts(view, limits);
  const der = decodeTransferEncoding(signature.body, signature.transferEncoding);
  const options = verifyOptions(ctx);
  // Signers hash the canonical (CRLF) form; a message that lost its CRs in
  // transit or storage still verifies against it. The wire bytes are tried too.
  const canonical = canonicalize(signed);
  let v = await verifySignedData(der, { ...options, detachedContent: canonical });
  if (canonical !== signed && v.signers.some((s) => s.failure?.code === 'digest-mismatch')) {
    const asSent = await verifySignedData(der, { ...options, detachedContent: signed });
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
  return ctx.keepSignatures ? {} : { inner: signed };
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
    return byContentType(r.contentType, r.content);
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
    return byContentType(v.contentType, v.content);
  }
  if (type === OID.compressedData) {
    const ratio = ctx.maxCompressionRatio ?? DEFAULT_DECOMPRESS_LIMITS.maxRatio;
    const r = decompressCompressedData(der, { maxRatio: ratio, maxBytes: limits.maxSize });
    report.layer({ kind: 'compressed' });
    report.action('decompressed');
    return byContentType(r.contentType, r.content);
  }
  report.note(`content type ${type} left as it is`);
  return {};
}

export async function transformInbound(
  message: Buffer,
  ctx: InboundContext,
): Promise<TransformResult> {
  const report = reportBuilder('inbound');
  const limits = ctx.limits ?? DEFAULT_MIME_LIMITS;
  try {
    const received = splitMessage(message, limits);
    const parts = partitionHeaders(received.headers);
    report.authors(authorsOf(received.headers));
    // The message is itself the top-level entity (its other headers do not
    // matter to MIME): parsed in place, not copied.
    let current = message;
    let view: LeafView | undefined = viewOf(received);
    /** A CMS object the last layer carried without MIME around it. */
    let cms: Buffer | undefined;
    let changed = false;
    for (let layers = 0; view; layers++) {
      const protection: Protection = cms ? 'signed-opaque' : classify(view.contentType);
      if (protection === 'none' || protection === 'certs-only') break;
      // Counted when another layer is about to be opened: MAX_LAYERS layers themselves are fine.
      if (layers >= MAX_LAYERS)
        throw new CmsError('malformed', `more than ${MAX_LAYERS} nested protection layers`);
      const step: Unwrapped =
        protection === 'signed-detached'
          ? await unwrapDetached(view, ctx, report, limits)
          : await unwrapPkcs7(view, ctx, report, limits);
      if (!step.inner && !step.cms) break;
      changed = true;
      cms = step.cms;
      if (step.inner) current = asEntity(step.inner);
      // The next layer's top-level headers, if they can be read: the sender's
      // own content may be anything, and is then delivered as it is.
      const readable = cms ? undefined : readableHeaders(current, limits);
      view = cms ? cmsView(cms) : readable && viewOf(readable);
    }
    if (!changed) return { ok: true, message, report: report.done() };
    if (cms) throw new CmsError('malformed', 'a protection layer ends in CMS content without MIME');
    const inner = readableHeaders(current, limits);
    const wrapped = inner && headerProtected(inner.headers, inner.body, limits);
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
      delivered = messageOf(
        [...trace, ...real.outer],
        real.entity,
        wrapped.body,
        findHeader(wrapped.headers, 'mime-version'),
      );
    } else if (inner) {
      delivered = messageOf(
        parts.outer,
        partitionHeaders(inner.headers).entity,
        inner.body,
        findHeader(inner.headers, 'mime-version'),
      );
    } else {
      // Content whose header block cannot be read goes out exactly as the
      // sender wrote it, under the outer message's own fields.
      report.note(UNREADABLE_CONTENT);
      delivered = Buffer.concat([
        serializeHeaders([...parts.outer, makeHeader('MIME-Version', '1.0')]),
        current,
      ]);
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
