/**
 * From policy, our identities and the partners' certificates to an explicit
 * transform context for one outbound message — or a reason it cannot be
 * protected as policy demands (the MTA is then told to keep or refuse it).
 */

import type { DomainIdentity } from '../pki/identities.js';
import type { PartnerCertificates } from '../pki/partners.js';
import type { OutboundContext, OutboundOptions, PartnerCertificate } from '../smime/types.js';
import { domainOf } from './direction.js';

export interface OutboundPolicy {
  readonly sign: 'always' | 'never';
  readonly encrypt: 'opportunistic' | 'required' | 'never';
  /** Recipient domains that must get encrypted mail whatever `encrypt` says. */
  readonly encryptRequiredDomains: ReadonlySet<string>;
  /** Further transform options (format, header protection, ...). */
  readonly options?: Partial<OutboundOptions>;
}

export type PlanFailure = {
  readonly kind: 'fail';
  readonly code: 'no-certificate' | 'lookup-failed' | 'no-signing-key';
  /** True when trying again later may succeed (4xx rather than 5xx). */
  readonly temporary: boolean;
  readonly message: string;
  readonly domains: readonly string[];
};

export type OutboundPlan =
  | {
      readonly kind: 'protect';
      readonly context: OutboundContext;
      readonly notes: readonly string[];
    }
  | { readonly kind: 'pass'; readonly notes: readonly string[] }
  | PlanFailure;

export function encryptionRequired(policy: OutboundPolicy, domain: string): boolean {
  return policy.encrypt === 'required' || policy.encryptRequiredDomains.has(domain);
}

export async function planOutbound(
  sender: string,
  recipients: readonly string[],
  identities: ReadonlyMap<string, DomainIdentity>,
  partners: Pick<PartnerCertificates, 'lookup'>,
  policy: OutboundPolicy,
  at: Date = new Date(),
): Promise<OutboundPlan> {
  const notes: string[] = [];
  const senderDomain = domainOf(sender) ?? '';
  const signer = identities.get(senderDomain)?.signer;
  const sign = policy.sign === 'always';
  if (sign && !signer) {
    return {
      kind: 'fail',
      code: 'no-signing-key',
      temporary: true,
      message: `no valid signing key for ${senderDomain || 'the sender'}`,
      domains: [senderDomain],
    };
  }
  const domains = [
    ...new Set(recipients.map((r) => domainOf(r)).filter((d): d is string => d !== undefined)),
  ];
  const found: PartnerCertificate[] = [];
  const missing: string[] = [];
  const failed: string[] = [];
  const wantEncrypt =
    policy.encrypt !== 'never' || domains.some((d) => policy.encryptRequiredDomains.has(d));
  if (wantEncrypt) {
    for (const d of domains) {
      const r = await partners.lookup(d, at);
      if (r.status === 'found') {
        if (!found.some((f) => f.certificate.fingerprint === r.certificate.fingerprint)) {
          found.push({
            certificate: r.certificate,
            ...(r.capabilities ? { capabilities: r.capabilities } : {}),
          });
        }
      } else if (r.status === 'temporary-failure') failed.push(d);
      else missing.push(d);
    }
  }
  const unprotectable = [...missing, ...failed];
  const requiredButMissing = unprotectable.filter((d) => encryptionRequired(policy, d));
  if (requiredButMissing.length > 0) {
    const temporary = requiredButMissing.every((d) => failed.includes(d));
    return {
      kind: 'fail',
      code: temporary ? 'lookup-failed' : 'no-certificate',
      temporary,
      message: `encryption required but no usable certificate for ${requiredButMissing.join(', ')}`,
      domains: requiredButMissing,
    };
  }
  // One protected copy serves every recipient: encrypt only if all can read it.
  const encrypt = wantEncrypt && found.length > 0 && unprotectable.length === 0;
  if (found.length > 0 && !encrypt)
    notes.push(`not encrypted: no certificate for ${unprotectable.join(', ')}`);
  if (!sign && !encrypt) return { kind: 'pass', notes };
  return {
    kind: 'protect',
    notes,
    context: {
      ...(signer ? { signer } : {}),
      recipients: encrypt ? found : [],
      options: { ...policy.options, sign, encrypt },
    },
  };
}
