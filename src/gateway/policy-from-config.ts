/** The gateway's policy settings from the configuration (shared by `serve` and the tests). */

import type { Config } from '../config.js';
import { failurePolicyFrom } from '../policy/actions.js';
import type { GatewayDeps } from './deps.js';
import { parseNetworks } from './direction.js';

export type GatewayPolicy = Pick<
  GatewayDeps,
  | 'directions'
  | 'outbound'
  | 'keepSignatures'
  | 'authservId'
  | 'failures'
  | 'requirements'
  | 'adminAddress'
  | 'maxMessageBytes'
  | 'encryptedReplyQuantumMs'
>;

export function gatewayPolicyFrom(config: Config): GatewayPolicy {
  return {
    directions: {
      localDomains: new Set(config.localDomains),
      trustedNetworks: parseNetworks(config.trustedNetworks),
    },
    outbound: {
      sign: config.outboundSign,
      encrypt: config.outboundEncrypt,
      encryptRequiredDomains: new Set(config.encryptRequiredDomains),
      options: {
        signatureFormat: config.signatureFormat,
        headerProtection: config.headerProtection,
      },
    },
    keepSignatures: config.keepSignatures,
    authservId: config.authservId,
    failures: failurePolicyFrom(config),
    requirements: {
      signed: new Set(config.inboundRequireSigned),
      encrypted: new Set(config.inboundRequireEncrypted),
    },
    adminAddress: config.adminAddress,
    maxMessageBytes: config.maxMessageBytes,
    encryptedReplyQuantumMs: config.encryptedReplyQuantumMs,
  };
}
