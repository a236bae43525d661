/**
 * What to do when a message cannot be handled as policy demands, per kind of
 * failure (OpenDKIM's On-* settings for S/MIME). Every kind falls back to
 * DOMSEC_ON_ERROR, except
 * - the verdict kinds (bad signature, revoked signer): a verdict is recorded
 *   in Authentication-Results and the mail delivered, unless the sender's
 *   domain is one we require signed mail from, or the administrator chose an
 *   action for that kind explicitly;
 * - decrypt-failure, which is never told to the sender: a reply that differs
 *   between "decrypted" and "did not" is a decryption oracle (Vaudenay's
 *   padding oracle over SMTP). It is delivered as it came (accept, the
 *   default), held or redirected, always with a 250; reject and tempfail
 *   are refused by the configuration.
 */

export const FAILURE_KINDS = [
  'no-certificate',
  'revocation-unknown',
  'revoked',
  'decrypt-failure',
  'bad-signature',
  'unprotected',
  'foreign-author',
  'bad-originator-signature',
  'internal-error',
] as const;
export type FailureKind = (typeof FAILURE_KINDS)[number];

export const ACTIONS = ['accept', 'reject', 'tempfail', 'quarantine', 'redirect'] as const;
export type Action = (typeof ACTIONS)[number];

/** The configured action per kind; undefined: not set explicitly. */
export type ActionSettings = Readonly<Record<FailureKind, Action | undefined>>;

const VERDICT_KINDS: ReadonlySet<FailureKind> = new Set(['bad-signature', 'revoked']);

/**
 * Outbound mail our domain signature may not vouch for (RFC 3183 3.1.2): an
 * author outside the signing domain, or an originator signature that does
 * not verify. Refused by default, so that the submitting user learns why;
 * `accept` sends it on without our signature.
 */
const REFUSED_BY_DEFAULT: ReadonlySet<FailureKind> = new Set([
  'foreign-author',
  'bad-originator-signature',
]);

/** Kinds whose outcome the sender must not learn: only actions that answer 250. */
export const SILENT_KINDS: ReadonlySet<FailureKind> = new Set(['decrypt-failure']);
export const SILENT_ACTIONS: readonly Action[] = ['accept', 'quarantine', 'redirect'];

export interface FailurePolicy {
  readonly onError: Action;
  readonly actions: ActionSettings;
}

/** The action for a failure; `required` when the sender's domain is under an inbound requirement. */
export function actionFor(policy: FailurePolicy, kind: FailureKind, required: boolean): Action {
  const explicit = policy.actions[kind];
  if (SILENT_KINDS.has(kind))
    return explicit && SILENT_ACTIONS.includes(explicit) ? explicit : 'accept';
  if (explicit) return explicit;
  if (REFUSED_BY_DEFAULT.has(kind)) return 'reject';
  if (VERDICT_KINDS.has(kind) && !required) return 'accept';
  return policy.onError;
}

/** The environment variable of a kind: DOMSEC_ON_BAD_SIGNATURE for 'bad-signature'. */
export const actionVariable = (kind: FailureKind) =>
  `DOMSEC_ON_${kind.toUpperCase().replace(/-/g, '_')}`;

export interface ActionConfig {
  readonly onError: Action;
  readonly onNoCertificate: Action | undefined;
  readonly onRevocationUnknown: Action | undefined;
  readonly onRevoked: Action | undefined;
  readonly onDecryptFailure: Action | undefined;
  readonly onBadSignature: Action | undefined;
  readonly onUnprotected: Action | undefined;
  readonly onForeignAuthor: Action | undefined;
  readonly onBadOriginatorSignature: Action | undefined;
  readonly onInternalError: Action | undefined;
}

export function failurePolicyFrom(c: ActionConfig): FailurePolicy {
  return {
    onError: c.onError,
    actions: {
      'no-certificate': c.onNoCertificate,
      'revocation-unknown': c.onRevocationUnknown,
      revoked: c.onRevoked,
      'decrypt-failure': c.onDecryptFailure,
      'bad-signature': c.onBadSignature,
      unprotected: c.onUnprotected,
      'foreign-author': c.onForeignAuthor,
      'bad-originator-signature': c.onBadOriginatorSignature,
      'internal-error': c.onInternalError,
    },
  };
}
