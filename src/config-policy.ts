/**
 * The policy variables of the configuration schema: per-partner inbound
 * requirements, the action per failure kind, the administrator's address.
 */

import type { AnyVariable } from './config.js';
import { domains, oneOf, type Parsed } from './config-values.js';
import { ACTIONS, type Action, SILENT_ACTIONS } from './policy/actions.js';

const ADDRESS =
  /^[^\s@<>()",;:\\[\]]+@([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/i;

const action = (raw: string): Parsed<Action | undefined> =>
  raw === '' ? undefined : oneOf(ACTIONS)(raw);

/** Actions that answer 250: the sender learns nothing from the reply. */
const silentAction = (raw: string): Parsed<Action | undefined> =>
  raw === ''
    ? undefined
    : SILENT_ACTIONS.includes(raw as Action)
      ? (raw as Action)
      : {
          expected: `${SILENT_ACTIONS.join(' | ')} (a refusal would tell the sender whether the message decrypted: a decryption oracle)`,
        };

const orEmptyDomains = (raw: string) => (raw === '' ? [] : domains(raw));

const ACTION_LIST = ACTIONS.map((a) => `\`${a}\``).join(' | ');
const SILENT_LIST = SILENT_ACTIONS.map((a) => `\`${a}\``).join(' | ');

export const POLICY_VARIABLES: readonly AnyVariable[] = [
  {
    name: 'DOMSEC_INBOUND_REQUIRE_SIGNED',
    key: 'inboundRequireSigned',
    default: '',
    description: 'sender domains whose mail must carry a valid, trusted signature',
    parse: orEmptyDomains,
  },
  {
    name: 'DOMSEC_INBOUND_REQUIRE_ENCRYPTED',
    key: 'inboundRequireEncrypted',
    default: '',
    description: 'sender domains whose mail must arrive encrypted',
    parse: orEmptyDomains,
  },
  {
    name: 'DOMSEC_ADMIN_ADDRESS',
    key: 'adminAddress',
    default: '',
    description:
      'where `redirect` sends refused mail (recipients replaced, reason in X-Domsec-Refused)',
    parse: (raw) =>
      raw === '' ? undefined : ADDRESS.test(raw) ? raw : { expected: 'an e-mail address' },
  },
  {
    name: 'DOMSEC_ON_NO_CERTIFICATE',
    key: 'onNoCertificate',
    default: '',
    description: `outbound encryption required but no certificate: ${ACTION_LIST} [DOMSEC_ON_ERROR]`,
    parse: action,
  },
  {
    name: 'DOMSEC_ON_REVOCATION_UNKNOWN',
    key: 'onRevocationUnknown',
    default: '',
    description: `hard-fail revocation and no answer: ${ACTION_LIST} [DOMSEC_ON_ERROR]`,
    parse: action,
  },
  {
    name: 'DOMSEC_ON_REVOKED',
    key: 'onRevoked',
    default: '',
    description: `inbound signer certificate revoked: ${ACTION_LIST} [accept with smime=fail; DOMSEC_ON_ERROR for required senders]`,
    parse: action,
  },
  {
    name: 'DOMSEC_ON_DECRYPT_FAILURE',
    key: 'onDecryptFailure',
    default: '',
    description: `inbound encrypted mail not delivered decrypted (not to our key, does not decrypt, or AES-CBC content no bound signature vouches for): ${SILENT_LIST} [accept: delivered as it came]; never reject or tempfail, which would tell the sender whether it decrypted`,
    parse: silentAction,
  },
  {
    name: 'DOMSEC_ON_BAD_SIGNATURE',
    key: 'onBadSignature',
    default: '',
    description: `inbound signature invalid or untrusted: ${ACTION_LIST} [accept with smime=fail; DOMSEC_ON_ERROR for required senders]`,
    parse: action,
  },
  {
    name: 'DOMSEC_ON_UNPROTECTED',
    key: 'onUnprotected',
    default: '',
    description: `a required sender's mail arrived unsigned or unencrypted: ${ACTION_LIST} [DOMSEC_ON_ERROR]`,
    parse: action,
  },
  {
    name: 'DOMSEC_ON_FOREIGN_AUTHOR',
    key: 'onForeignAuthor',
    default: '',
    description: `outbound mail whose author (From, Sender) our domain signature cannot vouch for: ${ACTION_LIST} [reject; accept sends it without our signature]`,
    parse: action,
  },
  {
    name: 'DOMSEC_ON_BAD_ORIGINATOR_SIGNATURE',
    key: 'onBadOriginatorSignature',
    default: '',
    description: `outbound mail already signed by its originator with a signature that is invalid or untrusted: ${ACTION_LIST} [reject; accept sends it without our signature]`,
    parse: action,
  },
  {
    name: 'DOMSEC_ON_INTERNAL_ERROR',
    key: 'onInternalError',
    default: '',
    description: `anything else that went wrong: ${ACTION_LIST} [DOMSEC_ON_ERROR]`,
    parse: action,
  },
];
