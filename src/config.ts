/**
 * The one place that reads the environment. One schema describes every
 * variable: it validates, it renders `check-config`, and it documents.
 */

import { hostname } from 'node:os';
import type { ListenSpec } from '../protocol/listen.js';
import { POLICY_VARIABLES } from './config-policy.js';
import {
  byteSize,
  dnsServer,
  domains,
  hostPort,
  integer,
  ldapUrls,
  listen,
  listOf,
  networks,
  oneOf,
  optional,
  seconds,
  yesNo,
} from './config-values.js';
import type { RevocationMethod } from './pki/revocation/checker.js';
import { ACTIONS, type ActionConfig } from './policy/actions.js';

export type PartnerSourceName = 'directory' | 'ldap' | 'smimea' | 'harvested';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface HttpListen {
  readonly host: string;
  readonly port: number;
}

export type RevocationPolicy = 'soft-fail' | 'hard-fail';

/** The action per failure kind (DOMSEC_ON_*) is part of it. */
export interface Config extends ActionConfig {
  readonly listen: ListenSpec;
  readonly httpListen: HttpListen;
  readonly logLevel: LogLevel;
  readonly localDomains: readonly string[];
  readonly trustedNetworks: readonly string[];
  readonly maxConnections: number;
  readonly drainTimeoutMs: number;
  readonly encryptedReplyQuantumMs: number;
  readonly maxMessageBytes: number;
  readonly keysDir: string;
  readonly keysPassphrase: string | undefined;
  readonly partnerCerts: string | undefined;
  readonly trustAnchors: string | undefined;
  readonly intermediateCerts: string | undefined;
  readonly partnerSources: readonly PartnerSourceName[];
  readonly ldapUrls: readonly string[];
  readonly dnsResolver: string | undefined;
  readonly dnsValidatingResolver: boolean;
  readonly smimeaRequireDnssec: boolean;
  readonly lookupTimeoutMs: number;
  readonly revocation: readonly RevocationMethod[];
  readonly revocationPolicy: RevocationPolicy;
  readonly cacheMaxTtlSeconds: number;
  readonly cacheNegativeTtlSeconds: number;
  readonly outboundSign: 'always' | 'never';
  readonly outboundEncrypt: 'opportunistic' | 'required' | 'never';
  readonly encryptRequiredDomains: readonly string[];
  readonly signatureFormat: 'detached' | 'opaque';
  readonly headerProtection: boolean;
  readonly keepSignatures: boolean;
  readonly inboundRequireSigned: readonly string[];
  readonly inboundRequireEncrypted: readonly string[];
  readonly adminAddress: string | undefined;
  readonly authservId: string;
  readonly mode: 'gateway' | 'pass-through';
  readonly redisUrl: string | undefined;
  /** False when DOMSEC_KEYS_DIR is unset: then a development identity may be created there. */
  readonly keysDirExplicit: boolean;
}

/** A bad value: the message names the variable, the value and what is expected. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly variable: string,
    readonly value: string,
    readonly expected: string,
  ) {
    super(`${variable}=${JSON.stringify(value)}: expected ${expected}`);
  }
}

interface VariableSpec<K extends keyof Config> {
  readonly name: string;
  readonly key: K;
  readonly default: string;
  readonly description: string;
  readonly secret?: boolean;
  /** Returns the value or a description of what was expected. */
  parse(raw: string): Config[K] | { readonly expected: string };
}

export type AnyVariable = {
  [K in Exclude<keyof Config, 'keysDirExplicit'>]: VariableSpec<K>;
}[Exclude<keyof Config, 'keysDirExplicit'>];

export const VARIABLES: readonly AnyVariable[] = [
  {
    name: 'DOMSEC_LISTEN',
    key: 'listen',
    default: 'inet:127.0.0.1:8890',
    description: 'milter socket: `inet:HOST:PORT` or `unix:/path`',
    parse: listen,
  },
  {
    name: 'DOMSEC_HTTP_LISTEN',
    key: 'httpListen',
    default: '127.0.0.1:9464',
    description: 'metrics and health: `HOST:PORT`',
    parse: hostPort,
  },
  {
    name: 'DOMSEC_LOCAL_DOMAINS',
    key: 'localDomains',
    default: 'example.org',
    description: 'our domains, comma-separated',
    parse: domains,
  },
  {
    name: 'DOMSEC_TRUSTED_NETWORKS',
    key: 'trustedNetworks',
    default: '127.0.0.0/8,::1/128',
    description: 'CIDRs whose mail counts as ours to sign',
    parse: networks,
  },
  {
    name: 'DOMSEC_KEYS_DIR',
    key: 'keysDir',
    default: './.domsec/keys',
    description:
      'our domain identities: per domain `<domain>[.label].key.pem` + `<domain>[.label].crt.pem` (chain appended), or `<domain>[.label].p12` (passphrase in a `.pass` file beside it, or DOMSEC_KEYS_PASSPHRASE); key, p12 and pass files must be mode 0600',
    parse: (raw) => raw,
  },
  {
    name: 'DOMSEC_KEYS_PASSPHRASE',
    key: 'keysPassphrase',
    default: '',
    description:
      'passphrase for `.p12` files in DOMSEC_KEYS_DIR without a `.pass` file beside them',
    secret: true,
    parse: optional,
  },
  {
    name: 'DOMSEC_PARTNER_CERTS',
    key: 'partnerCerts',
    default: '',
    description: 'PEM directory of partner domain certificates (static directory source)',
    parse: optional,
  },
  {
    name: 'DOMSEC_TRUST_ANCHORS',
    key: 'trustAnchors',
    default: '',
    description: 'PEM file or directory of trusted root certificates',
    parse: optional,
  },
  {
    name: 'DOMSEC_INTERMEDIATE_CERTS',
    key: 'intermediateCerts',
    default: '',
    description:
      'PEM file or directory of intermediate and cross-certificates (bridge CAs) used to build paths; not trusted by themselves',
    parse: optional,
  },
  {
    name: 'DOMSEC_PARTNER_SOURCES',
    key: 'partnerSources',
    default: 'directory,ldap,harvested',
    description:
      'where partner certificates are looked for, in order: `directory`, `ldap`, `smimea`, `harvested` (a source without its settings is skipped)',
    parse: listOf(['directory', 'ldap', 'smimea', 'harvested'] as const),
  },
  {
    name: 'DOMSEC_LDAP_URLS',
    key: 'ldapUrls',
    default: '',
    description:
      'LDAP directories to search for partner certificates, tried in order: `ldap://host[:port]/base-dn` separated by spaces',
    parse: ldapUrls,
  },
  {
    name: 'DOMSEC_DNS_RESOLVER',
    key: 'dnsResolver',
    default: '',
    description:
      'resolver for SMIMEA look-ups, `HOST:PORT` (a validating resolver: DANE records count only with DNSSEC, see DOMSEC_DNS_VALIDATING_RESOLVER) [first nameserver of /etc/resolv.conf]',
    parse: dnsServer,
  },
  {
    name: 'DOMSEC_DNS_VALIDATING_RESOLVER',
    key: 'dnsValidatingResolver',
    default: 'no',
    description:
      '`yes` | `no`: `yes` says the SMIMEA resolver validates DNSSEC and the path to it is trusted, so its AD bit counts; with `no` it counts only from a resolver on loopback (127.0.0.0/8, ::1), and DANE-EE/DANE-TA records from any other are refused',
    parse: yesNo,
  },
  {
    name: 'DOMSEC_SMIMEA_REQUIRE_DNSSEC',
    key: 'smimeaRequireDnssec',
    default: 'yes',
    description:
      '`yes` | `no`: DANE-EE/DANE-TA SMIMEA records count only when the resolver validated them',
    parse: yesNo,
  },
  {
    name: 'DOMSEC_LOOKUP_TIMEOUT',
    key: 'lookupTimeoutMs',
    default: '5',
    description: 'seconds one network look-up (LDAP, DNS, OCSP, CRL) may take',
    parse: seconds(1, 60),
  },
  {
    name: 'DOMSEC_REVOCATION',
    key: 'revocation',
    default: 'ocsp,crl',
    description: '`ocsp,crl` | `crl,ocsp` | `crl` | `ocsp` | `off`: revocation methods, in order',
    parse: (raw) => (raw === 'off' ? [] : listOf(['ocsp', 'crl'] as const)(raw)),
  },
  {
    name: 'DOMSEC_REVOCATION_POLICY',
    key: 'revocationPolicy',
    default: 'soft-fail',
    description:
      '`soft-fail` (a certificate whose status cannot be learnt is still trusted, and the report says so) | `hard-fail`',
    parse: oneOf(['soft-fail', 'hard-fail'] as const),
  },
  {
    name: 'DOMSEC_CACHE_MAX_TTL',
    key: 'cacheMaxTtlSeconds',
    default: '86400',
    description: 'longest time in seconds a certificate or revocation answer is cached',
    parse: integer(60, 30 * 86_400, ' seconds'),
  },
  {
    name: 'DOMSEC_CACHE_NEGATIVE_TTL',
    key: 'cacheNegativeTtlSeconds',
    default: '300',
    description: 'seconds a "no certificate" or "status unavailable" answer is cached',
    parse: integer(1, 86_400, ' seconds'),
  },
  {
    name: 'DOMSEC_OUTBOUND_SIGN',
    key: 'outboundSign',
    default: 'always',
    description: '`always` | `never`',
    parse: oneOf(['always', 'never'] as const),
  },
  {
    name: 'DOMSEC_OUTBOUND_ENCRYPT',
    key: 'outboundEncrypt',
    default: 'opportunistic',
    description: '`opportunistic` | `required` | `never`',
    parse: oneOf(['opportunistic', 'required', 'never'] as const),
  },
  {
    name: 'DOMSEC_ENCRYPT_REQUIRED_DOMAINS',
    key: 'encryptRequiredDomains',
    default: '',
    description: 'recipient domains that must get encrypted mail',
    parse: (raw) => (raw === '' ? [] : domains(raw)),
  },
  {
    name: 'DOMSEC_SIGNATURE_FORMAT',
    key: 'signatureFormat',
    default: 'detached',
    description:
      '`detached` (multipart/signed: readable without S/MIME) | `opaque` (application/pkcs7-mime signed-data)',
    parse: oneOf(['detached', 'opaque'] as const),
  },
  {
    name: 'DOMSEC_HEADER_PROTECTION',
    key: 'headerProtection',
    default: 'no',
    description:
      '`yes`: the whole message travels inside the protection, the outer Subject is `[...]` when encrypted; the receiving gateway restores it',
    parse: yesNo,
  },
  {
    name: 'DOMSEC_KEEP_SIGNATURES',
    key: 'keepSignatures',
    default: 'no',
    description:
      '`yes`: inbound signed mail keeps its (verified) signature for clients that show it',
    parse: yesNo,
  },
  {
    name: 'DOMSEC_ON_ERROR',
    key: 'onError',
    default: 'tempfail',
    description:
      'when policy cannot be met: `tempfail` | `reject` | `accept` | `quarantine` (held by the MTA) | `redirect` (to DOMSEC_ADMIN_ADDRESS); the default of every DOMSEC_ON_* below',
    parse: oneOf(ACTIONS),
  },
  ...POLICY_VARIABLES,
  {
    name: 'DOMSEC_AUTHSERV_ID',
    key: 'authservId',
    default: '',
    description: 'authserv-id in Authentication-Results [the host name]',
    parse: (raw) =>
      raw === '' ? hostname() : /^[A-Za-z0-9.-]+$/.test(raw) ? raw : { expected: 'a host name' },
  },
  {
    name: 'DOMSEC_REDIS_URL',
    key: 'redisUrl',
    default: '',
    description:
      'Redis for the certificate and revocation cache (redis://, rediss://, redis-sentinel://, redis-cluster://); unset: in-memory',
    secret: true,
    parse: (raw) =>
      raw === ''
        ? undefined
        : /^(redis|rediss|redis-sentinel|redis-cluster):\/\//.test(raw)
          ? raw
          : { expected: 'a redis://, rediss://, redis-sentinel:// or redis-cluster:// URL' },
  },
  {
    name: 'DOMSEC_MODE',
    key: 'mode',
    default: 'gateway',
    description: '`gateway` (S/MIME) | `pass-through` (accept everything unchanged)',
    parse: oneOf(['gateway', 'pass-through'] as const),
  },
  {
    name: 'DOMSEC_LOG_LEVEL',
    key: 'logLevel',
    default: 'info',
    description: '`debug` | `info` | `warn` | `error`',
    parse: oneOf(['debug', 'info', 'warn', 'error'] as const),
  },
  {
    name: 'DOMSEC_MAX_CONNECTIONS',
    key: 'maxConnections',
    default: '1000',
    description: 'simultaneous MTA connections accepted',
    parse: integer(1, 100_000),
  },
  {
    name: 'DOMSEC_ENCRYPTED_REPLY_QUANTUM',
    key: 'encryptedReplyQuantumMs',
    default: '50',
    description:
      'milliseconds: the answer to inbound encrypted mail is given at the next multiple of this after end of message, so that how far decryption got does not show in the time to answer; 0 answers at once',
    parse: integer(0, 1000, ' milliseconds'),
  },
  {
    name: 'DOMSEC_DRAIN_TIMEOUT',
    key: 'drainTimeoutMs',
    default: '30',
    description: 'seconds SIGTERM waits for open messages before closing their connections',
    parse: seconds(0, 3600),
  },
  {
    name: 'DOMSEC_MAX_MESSAGE_BYTES',
    key: 'maxMessageBytes',
    default: '64M',
    description:
      "largest message the gateway processes (held in memory, about 8 x this at peak); a larger one ends as DOMSEC_ON_INTERNAL_ERROR. Keep it above Postfix's `message_size_limit`",
    parse: byteSize(64 * 1024, 1024 ** 3),
  },
];

export type Environment = Readonly<Record<string, string | undefined>>;

/** Validates the environment; throws ConfigError on the first bad variable. */
export function loadConfig(env: Environment): Config {
  const out: Record<string, unknown> = {};
  for (const v of VARIABLES) {
    const raw = env[v.name];
    const value = raw === undefined || raw === '' ? v.default : raw;
    const parsed = v.parse(value);
    if (parsed !== null && typeof parsed === 'object' && 'expected' in parsed) {
      throw new ConfigError(v.name, value, parsed.expected);
    }
    out[v.key] = parsed;
  }
  out['keysDirExplicit'] = (env['DOMSEC_KEYS_DIR'] ?? '') !== '';
  const config = out as unknown as Config;
  if (!config.adminAddress) {
    const redirecting = VARIABLES.find(
      (v) =>
        (v.name === 'DOMSEC_ON_ERROR' || v.name.startsWith('DOMSEC_ON_')) &&
        out[v.key] === 'redirect',
    );
    if (redirecting)
      throw new ConfigError(
        'DOMSEC_ADMIN_ADDRESS',
        '',
        `an address, since ${redirecting.name}=redirect`,
      );
  }
  return config;
}

/** The effective configuration as `NAME=value` lines, secrets redacted. */
export function describeConfig(env: Environment): string[] {
  return VARIABLES.map((v) => {
    const raw = env[v.name];
    const value = raw === undefined || raw === '' ? v.default : raw;
    const shown = v.secret && value !== '' ? '(redacted)' : value;
    return `${v.name}=${shown}${raw === undefined || raw === '' ? '  # default' : ''}`;
  });
}
