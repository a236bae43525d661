/**
 * What our domain signature may vouch for (RFC 3183 3.1.2): "this message
 * originated in our domain, and we checked its originator". So before we
 * sign,
 * - every author (each From mailbox, and the Sender) must be one our signing
 *   certificate speaks for (binding.ts): an authenticated insider does not
 *   get our signature over `From: ceo@bank.example`;
 * - every signature the originator already put on the message must verify
 *   and chain to a trust anchor ("if ... all other signatures present are
 *   valid"): we do not countersign what we could not check, and the
 *   security labels we copy come only from signatures that verified.
 */

import type { CertificateInfo } from '../cms/certificate.js';
import { type CertificateValidator, verifySignedData } from '../cms/verify.js';
import {
  canonicalize,
  decodeTransferEncoding,
  findHeader,
  headerValue,
  type MimeLimits,
  parseContentType,
  parseEntity,
  splitMessage,
} from '../mime/index.js';
import { authorsOf } from './authors.js';
import { bindingTo } from './binding.js';
import { classify } from './detect.js';

export type Vouching =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly kind: 'foreign-author' | 'bad-originator-signature';
      /** In our words, for the submitting client: nothing copied from the message. */
      readonly reason: string;
    };

/** Whether `signer` may add its domain signature to `message`. */
export async function mayVouch(
  message: Buffer,
  signer: CertificateInfo,
  validator: CertificateValidator | undefined,
  limits: MimeLimits,
  at: Date = new Date(),
): Promise<Vouching> {
  const { headers } = splitMessage(message, limits);
  const authors = authorsOf(headers);
  if (!authors.ok)
    return {
      ok: false,
      kind: 'foreign-author',
      reason: `the author cannot be read (${authors.problem}); our domain signature vouches only for its own domain's authors`,
    };
  if (!authors.authors.every((a) => bindingTo(signer, a) !== undefined))
    return {
      ok: false,
      kind: 'foreign-author',
      reason: 'the author (From or Sender) is not in the domain we sign for',
    };
  const ct = findHeader(headers, 'content-type');
  if (classify(parseContentType(ct ? headerValue(ct) : '')) !== 'signed-detached')
    return { ok: true };
  return originatorSignatures(message, validator, limits, at);
}

async function originatorSignatures(
  message: Buffer,
  validator: CertificateValidator | undefined,
  limits: MimeLimits,
  at: Date,
): Promise<Vouching> {
  const refuse = (reason: string): Vouching => ({
    ok: false,
    kind: 'bad-originator-signature',
    reason,
  });
  try {
    const [signed, signature] = parseEntity(message, limits).parts ?? [];
    if (!signed || !signature) return refuse('the existing signature has no signed part');
    const der = decodeTransferEncoding(signature.body, signature.transferEncoding);
    const v = await verifySignedData(der, {
      detachedContent: canonicalize(signed.raw),
      ...(validator ? { validator } : {}),
      at,
    });
    if (v.signers.length === 0) return refuse('the existing signature has no signer');
    for (const s of v.signers) {
      if (!s.valid) return refuse('the existing signature does not verify');
      if (s.chain && !s.chain.trusted)
        return refuse("the existing signature's certificate is not trusted");
    }
    return { ok: true };
  } catch {
    return refuse('the existing signature cannot be read');
  }
}
