/**
 * Which failure kind, if any, an inbound transform's outcome is: the input
 * to the action table. A verdict (smime=fail) is a failure kind too; whether
 * it leads to anything but delivery is the action table's decision.
 */

import type { SmimeVerdict } from '../gateway/auth-results.js';
import { type ContentType, headerValue, parseContentType, splitMessage } from '../mime/index.js';
import { classify } from '../smime/detect.js';
import type { TransformError, TransformReport } from '../smime/types.js';
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

export function inboundFailure(
  message: Buffer,
  report: TransformReport,
  error: TransformError | undefined,
  verdict: SmimeVerdict,
  requirements: InboundRequirements,
  senderDomain: string,
): InboundFailure | undefined {
  if (error) {
    if (error.code === 'not-encrypted-to-us' || error.code === 'decrypt-failed')
      return { kind: 'decrypt-failure', reason: error.message };
    if (error.code === 'internal' || error.code === 'too-large')
      return { kind: 'internal-error', reason: error.message };
    const ct = outerContentType(message);
    const enveloped = ct !== undefined && classify(ct) === 'enveloped';
    return { kind: enveloped ? 'decrypt-failure' : 'bad-signature', reason: error.message };
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
  const unmet = unmetRequirement(requirements, senderDomain, report);
  return unmet ? { kind: 'unprotected', reason: unmet } : undefined;
}
