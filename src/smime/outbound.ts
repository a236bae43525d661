/**
 * Outbound: a domain signature (RFC 3183) over the message's MIME entity,
 * encryption to the recipient domains' certificates, optionally triple
 * wrapping and header protection. Bytes in, bytes and report out.
 */

import { createEnvelopePartsSliced, type Recipient } from '../cms/envelope.js';
import { OID } from '../cms/oids.js';
import {
  addParallelSigner,
  createSignedData,
  type SigningIdentity,
  signerDigest,
} from '../cms/sign.js';
import { verifySignedData } from '../cms/verify.js';
import {
  canonicalize,
  DEFAULT_MIME_LIMITS,
  decodeTransferEncoding,
  findHeader,
  type HeaderField,
  headerValue,
  MimeError,
  type MimeLimits,
  makeHeader,
  parseContentType,
  parseEntity,
  splitMessage,
  toSevenBitEntity,
} from '../mime/index.js';
import { hasEightBitLabelSliced, isSevenBitSliced } from '../mime/sliced.js';
import { concatSliced, type Parts } from '../util/slices.js';
import { classify, isOpaquelyProtected, type Protection } from './detect.js';
import { failure, type ReportBuilder, reportBuilder } from './results.js';
import type {
  ContentCipher,
  DeferredTransformResult,
  EncodeLater,
  OutboundContext,
  OutboundOptions,
  PartnerCertificate,
  TransformResult,
} from './types.js';
import {
  assembleMessage,
  encodeBase64LinesAfterSliced,
  entity,
  entityParts,
  MICALG,
  multipartSignedParts,
  partitionHeaders,
  pkcs7MimeEntity,
  pkcs7MimeHead,
} from './wire.js';

/**
 * The entity made 7-bit and canonical for signing. Most mail already is:
 * one linear check then spares the parse and rebuild (a third of the CPU
 * of signing a 10 KB message). `parts` each start a line.
 */
/**
 * The entity in 7-bit form for signing. Where the user's MIME is too
 * defective to re-encode part by part, it is signed as its bytes, not
 * reinterpreted: as it is when it is 7-bit already, or when it is about to
 * be encrypted (8-bit content is safe from downgrades inside the base64 of
 * an envelope). Only 8-bit content that is signed and sent in the clear
 * cannot be protected: that is a permanent malformed-mime failure.
 */
async function sevenBit(
  parts: readonly Buffer[],
  limits: MimeLimits,
  enveloped: boolean,
  report: ReportBuilder,
): Promise<Parts> {
  const sevenBitBytes = await isSevenBitSliced(parts);
  // An 8bit/binary label on 7-bit content must still be rewritten: MTAs downgrade by label.
  if (sevenBitBytes && !(await hasEightBitLabelSliced(parts))) return parts;
  try {
    return await toSevenBitEntity(await concatSliced(parts), limits);
  } catch (err) {
    if (!(err instanceof MimeError) || err.code === 'too-large') throw err;
    if (!sevenBitBytes && !enveloped)
      throw new MimeError(
        err.code,
        `8-bit content in defective MIME (${err.message}) cannot be signed in the clear without altering it`,
      );
    report.note(`defective MIME (${err.message}): signed as it is, not re-encoded`);
    return parts.map((p) => canonicalize(p));
  }
}

function listOf(parts: Parts): readonly Buffer[] {
  return Buffer.isBuffer(parts) ? [parts] : parts;
}

/** GCM only when every recipient announced it; CBC is the safe default (RFC 8551 2.7). */
export function chooseCipher(recipients: readonly PartnerCertificate[]): ContentCipher {
  const all = (oid: string) => recipients.every((r) => r.capabilities?.includes(oid));
  if (all(OID.aes256Gcm)) return 'aes-256-gcm';
  if (all(OID.aes128Gcm)) return 'aes-128-gcm';
  return 'aes-256-cbc';
}

/** OAEP when the partner announced it; PKCS#1 v1.5 when its capabilities are unknown. */
export function chooseKeyTransport(r: PartnerCertificate): 'rsa-oaep' | 'rsa-pkcs1' {
  return r.capabilities?.includes(OID.rsaesOaep) ? 'rsa-oaep' : 'rsa-pkcs1';
}

interface Signed {
  readonly entity: Parts;
}

async function signEntity(
  content: Parts,
  signer: SigningIdentity,
  opts: OutboundOptions,
  extra: Buffer[],
): Promise<Signed> {
  const common = {
    rsaPss: opts.rsaPss ?? false,
    digest: opts.digest ?? 'sha256',
    signingTime: opts.signingTime ?? new Date(),
    extraSignedAttributes: extra,
  } as const;
  if (opts.signatureFormat === 'opaque') {
    const der = await createSignedData(content, signer, { ...common, detached: false });
    return { entity: await pkcs7MimeEntity(der, 'signed-data') };
  }
  const der = await createSignedData(content, signer, { ...common, detached: true });
  return { entity: multipartSignedParts(content, der, MICALG[signerDigest(signer, common)]!) };
}

/** The existing signature part of a multipart/signed and what it covers. */
function splitSigned(
  entityBytes: Buffer,
  limits: MimeLimits,
): { signed: Buffer; signatureDer: Buffer } {
  const e = parseEntity(entityBytes, limits);
  const [signed, signature] = e.parts ?? [];
  if (!signed || !signature) throw new Error('multipart/signed without its two parts');
  return {
    signed: signed.raw,
    signatureDer: decodeTransferEncoding(signature.body, signature.transferEncoding),
  };
}

/** Security labels and ML expansion history of the originator's signers, to copy (RFC 3183 3.1.2). */
async function copyableAttributes(entityBytes: Buffer, limits: MimeLimits): Promise<Buffer[]> {
  try {
    const { signed, signatureDer } = splitSigned(entityBytes, limits);
    const v = await verifySignedData(signatureDer, { detachedContent: signed });
    return v.signers.flatMap((s) => [...s.copyableAttributes]);
  } catch {
    return [];
  }
}

/** The envelope as DER pieces and its smime-type; the caller wraps it in MIME. */
async function encrypt(
  content: Parts,
  ctx: OutboundContext,
  report: ReportBuilder,
): Promise<{ der: Buffer[]; smimeType: 'enveloped-data' | 'authEnveloped-data' }> {
  const cipher = ctx.options.cipher ?? chooseCipher(ctx.recipients);
  const recipients: Recipient[] = ctx.recipients.map((r) => ({
    certificate: r.certificate,
    keyTransport: ctx.options.keyTransport ?? chooseKeyTransport(r),
  }));
  report.cipher(cipher);
  report.keyTransport(
    [
      ...new Set(
        recipients.map((r) =>
          r.certificate.publicKey.asymmetricKeyType === 'ec' ? 'ecdh' : r.keyTransport!,
        ),
      ),
    ].join(','),
  );
  const der = await createEnvelopePartsSliced(content, recipients, { cipher });
  return { der, smimeType: cipher.endsWith('gcm') ? 'authEnveloped-data' : 'enveloped-data' };
}

/** Header protection: the whole message travels inside, the outside keeps what transport needs. */
function protectHeaders(
  message: Buffer,
  outer: HeaderField[],
  encrypting: boolean,
): { inner: Buffer; outer: HeaderField[] } {
  const inner = entity(
    [makeHeader('Content-Type', 'message/rfc822; forwarded=no')],
    canonicalize(message),
  );
  const visible = outer.map((f) =>
    encrypting && f.name.toLowerCase() === 'subject' ? makeHeader('Subject', '[...]') : f,
  );
  return { inner, outer: visible };
}

export async function transformOutbound(
  message: Buffer,
  ctx: OutboundContext,
): Promise<TransformResult> {
  const r = await transformOutboundDeferred(message, ctx);
  if (!r.ok) return r;
  const m = r.message;
  return {
    ...r,
    message: Buffer.isBuffer(m) ? m : await encodeBase64LinesAfterSliced(m.head, m.der),
  };
}

/**
 * transformOutbound, except that an encrypted message's base64 body is left
 * to be written by whoever takes it (EncodeLater): the worker thread that
 * transforms large messages encodes it a piece at a time.
 */
export async function transformOutboundDeferred(
  message: Buffer,
  ctx: OutboundContext,
): Promise<DeferredTransformResult> {
  const report = reportBuilder('outbound');
  const limits = ctx.limits ?? DEFAULT_MIME_LIMITS;
  const opts = ctx.options;
  try {
    const { headers, body } = splitMessage(message, limits);
    const parts = partitionHeaders(headers);
    const ctHeader = findHeader(parts.entity, 'content-type');
    const protection: Protection = classify(
      parseContentType(ctHeader ? headerValue(ctHeader) : ''),
    );
    let sign = opts.sign;
    const encrypt_ = opts.encrypt;
    if (protection === 'enveloped' && !opts.reprotect) {
      report.note('already encrypted: left as it is');
      return { ok: true, message, report: report.done() };
    }
    if (sign && isOpaquelyProtected(protection) && !opts.reprotect) {
      sign = false;
      report.note('already opaque-signed: not signed again');
    }
    if (sign && !ctx.signer)
      return failure(report, 'no-signer', 'signing requested but no domain identity is configured');
    if (encrypt_ && ctx.recipients.length === 0) {
      return failure(
        report,
        'no-recipient-certificate',
        'encryption requested but no recipient certificate was found',
      );
    }
    if (!sign && !encrypt_) return { ok: true, message, report: report.done() };

    let outer = parts.outer;
    // Parts that each start a line (headers, blank line, body): a large body is not copied.
    let current: Parts;
    if (opts.headerProtection) {
      ({ inner: current, outer } = protectHeaders(message, parts.outer, encrypt_));
    } else {
      // The entity as the user wrote it: one without Content-* fields stays
      // without them (text/plain, US-ASCII by default: RFC 2045 5.2).
      current = entityParts(parts.entity, body);
    }
    if (sign) {
      const signer = ctx.signer!;
      if (protection === 'signed-detached' && opts.alreadySigned === 'parallel') {
        const whole = canonicalize(await concatSliced(listOf(current)));
        const { signed, signatureDer } = splitSigned(whole, limits);
        const der = await addParallelSigner(signatureDer, signed, signer, {
          rsaPss: opts.rsaPss ?? false,
          digest: opts.digest ?? 'sha256',
        });
        current = multipartSignedParts(signed, der, MICALG[signerDigest(signer, opts)]!);
        report.action('signed (parallel signature)');
      } else if (protection === 'signed-detached') {
        // Never re-encode inside someone else's signature: canonical line ends only.
        const inner = canonicalize(await concatSliced(listOf(current)));
        current = (await signEntity(inner, signer, opts, await copyableAttributes(inner, limits)))
          .entity;
        report.action('signed (encapsulating the originator signature)');
      } else {
        const content = await sevenBit(listOf(current), limits, encrypt_, report);
        current = (await signEntity(content, signer, opts, [])).entity;
        report.action('signed');
      }
    } else {
      // Each part starts a line, so each can be made canonical on its own.
      current = listOf(current).map((p) => canonicalize(p));
    }
    if (encrypt_) {
      const { der, smimeType } = await encrypt(current, ctx, report);
      report.action('encrypted');
      if (!(opts.tripleWrap && sign)) {
        // The body is written once, by the caller: no copy per wrapping level.
        const later: EncodeLater = { head: pkcs7MimeHead(outer, smimeType), der };
        return { ok: true, message: later, report: report.done() };
      }
      const envelope = await pkcs7MimeEntity(der, smimeType);
      current = (await signEntity(envelope, ctx.signer!, opts, [])).entity;
      report.action('signed (outer, triple wrap)');
    }
    return { ok: true, message: await assembleMessage(outer, current), report: report.done() };
  } catch (err) {
    return failure(report, err);
  }
}
