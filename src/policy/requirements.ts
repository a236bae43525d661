/**
 * Per-partner inbound requirements: mail from these domains must arrive
 * signed (a trusted signature) and/or encrypted. The answer says what is
 * missing, for the failure reason.
 */

import type { TransformReport } from '../smime/types.js';

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
): string | undefined {
  const layers = report.layers;
  if (
    req.encrypted.has(senderDomain) &&
    !layers.some((l) => l.kind === 'enveloped' || l.kind === 'auth-enveloped')
  )
    return `mail from ${senderDomain} must be encrypted`;
  if (req.signed.has(senderDomain) && !layers.some((l) => (l.signers ?? []).length > 0))
    return `mail from ${senderDomain} must be signed`;
  return undefined;
}
