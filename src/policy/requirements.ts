/**
 * Per-partner inbound requirements: mail from these domains must arrive
 * signed (smime=pass: a valid, trusted signature bound to its author) and/or
 * encrypted. The answer says what is missing, for the failure reason.
 */

import type { TransformReport } from '../smime/types.js';
import type { SmimeVerdict } from '../smime/verdict.js';

export interface InboundRequirements {
  readonly signed: ReadonlySet<string>;
  readonly encrypted: ReadonlySet<string>;
}

export function isRequired(req: InboundRequirements, senderDomain: string): boolean {
  return req.signed.has(senderDomain) || req.encrypted.has(senderDomain);
}

/** Why a message from `senderDomain` does not meet its requirements, or undefined. */
export function unmetRequirement(
  req: InboundRequirements,
  senderDomain: string,
  report: TransformReport,
  verdict: SmimeVerdict,
): string | undefined {
  const layers = report.layers;
  if (
    req.encrypted.has(senderDomain) &&
    !layers.some((l) => l.kind === 'enveloped' || l.kind === 'auth-enveloped')
  )
    return `mail from ${senderDomain} must be encrypted`;
  if (req.signed.has(senderDomain) && verdict.result !== 'pass')
    return `mail from ${senderDomain} must be signed by its author's domain or address`;
  return undefined;
}
