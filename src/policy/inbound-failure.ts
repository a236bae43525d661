/**
 * Which failure kind, if any, an inbound transform's outcome is: the input
 * to the action table. A verdict (smime=fail) is a failure kind too; whether
 * it leads to anything but delivery is the action table's decision.
 */

import { type ContentType, headerValue, parseContentType, splitMessage } from '../mime/index.js';
import { classify } from '../smime/detect.js';
import type { TransformError, TransformReport } from '../smime/types.js';
import type { SmimeVerdict } from '../smime/verdict.js';
import type { FailureKind } from './actions.js';
import { type InboundRequirements, unmetRequirement } from './requirements.js';

export interface InboundFailure {
  readonly kind: FailureKind;
  readonly reason: string;
}

function outerContentType(message: Buffer): ContentType | undefined {
  try {
    const field = splitMessage(message).headers.find(
      (h) => h.name.toLowerCase() === 'content-type',
    );
    return parseContentType(field ? headerValue(field) : undefined);
  } catch {
    return undefined;
  }
}

/** Whether the message as received is an encrypted S/MIME entity. */
export function arrivedEncrypted(message: Buffer): boolean {
  const ct = outerContentType(message);
  return ct !== undefined && classify(ct) === 'enveloped';
}

export function inboundFailure(
  message: Buffer,
  report: TransformReport,
  error: TransformError | undefined,
  verdict: SmimeVerdict,
  requirements: InboundRequirements,
  senderDomain: string,
): InboundFailure | undefined {
  if (error) {
    // Whatever went wrong once an encrypted message was opened depends on
    // what it decrypted to: one kind, so that no outcome tells it apart.
    if (arrivedEncrypted(message)) return { kind: 'decrypt-failure', reason: error.message };
    if (error.code === 'internal' || error.code === 'too-large')
      return { kind: 'internal-error', reason: error.message };
    return { kind: 'bad-signature', reason: error.message };
  }
  if (verdict.result === 'temperror')
    return {
      kind: 'revocation-unknown',
      reason: verdict.reason ?? 'revocation status unavailable',
    };
  if (verdict.result === 'fail') {
    const revoked = verdict.signer?.chain?.revoked === true;
    return {
      kind: revoked ? 'revoked' : 'bad-signature',
      reason: verdict.reason ?? 'signature not valid',
    };
  }
  const unmet = unmetRequirement(requirements, senderDomain, report, verdict);
  return unmet ? { kind: 'unprotected', reason: unmet } : undefined;
}
