/**
 * The one place that reads the environment. One schema describes every
 * variable: it validates, it renders `check-config`, and it documents.
 */

import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { type ListenSpec, ListenSpecError, parseListenSpec } from '../protocol/listen.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface HttpListen {
  readonly host: string;
  readonly port: number;
}

export interface Config {
  readonly listen: ListenSpec;
  readonly httpListen: HttpListen;
  readonly logLevel: LogLevel;
  readonly localDomains: readonly string[];
  readonly trustedNetworks: readonly string[];
  readonly maxConnections: number;
  readonly drainTimeoutMs: number;
  readonly keysDir: string;
  readonly partnerCerts: string | undefined;
  readonly trustAnchors: string | undefined;
  readonly outboundSign: 'always' | 'never';
  readonly outboundEncrypt: 'opportunistic' | 'required' | 'never';
  readonly encryptRequiredDomains: readonly string[];
  readonly onError: 'tempfail' | 'reject' | 'accept';
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

type AnyVariable = { [K in Exclude<keyof Config, 'keysDirExplicit'>]: VariableSpec<K> }[Exclude<
  keyof Config,
  'keysDirExplicit'
>];

function listen(raw: string): ListenSpec | { expected: string } {
  try {
    return parseListenSpec(raw);
  } catch (err) {
    if (err instanceof ListenSpecError)
      return { expected: 'inet:HOST:PORT or unix:/absolute/path' };
    throw err;
  }
}

function hostPort(raw: string): HttpListen | { expected: string } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(raw);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) return { expected: 'HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464' };
  return { host: (m[1] ?? m[2])!, port };
}

function integer(min: number, max: number, unit = '') {
  return (raw: string): number | { expected: string } => {
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < min || n > max)
      return { expected: `an integer from ${min} to ${max}${unit}` };
    return n;
  };
}

const DOMAIN =
  /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/;

function domains(raw: string): string[] | { expected: string } {
  const list = raw
    .split(',')
    .map((d) => d.trim().toLowerCase())
    .filter((d) => d !== '');
  if (list.length === 0 || !list.every((d) => DOMAIN.test(d))) {
    return { expected: 'a comma-separated list of domain names, e.g. example.org,example.com' };
  }
  return list;
}

function oneOf<T extends string>(values: readonly T[]) {
  return (raw: string): T | { expected: string } =>
    values.find((v) => v === raw) ?? { expected: `one of ${values.join(', ')}` };
}

function networks(raw: string): string[] | { expected: string } {
  const list = raw
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  const ok = list.every((n) => {
    const [addr, bits, extra] = n.split('/');
    const family = isIP(addr ?? '');
    if (family === 0 || extra !== undefined) return false;
    if (bits === undefined) return true;
    const b = Number(bits);
    return /^\d+$/.test(bits) && b <= (family === 4 ? 32 : 128);
  });
  return ok ? list : { expected: 'comma-separated CIDRs, e.g. 127.0.0.0/8,192.0.2.0/24,::1/128' };
}

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
      'our domain identities: per domain `<domain>[.label].key.pem` + `<domain>[.label].crt.pem` (chain appended)',
    parse: (raw) => raw,
  },
  {
    name: 'DOMSEC_PARTNER_CERTS',
    key: 'partnerCerts',
    default: '',
    description: 'PEM directory of partner domain certificates (static directory source)',
    parse: (raw) => (raw === '' ? undefined : raw),
  },
  {
    name: 'DOMSEC_TRUST_ANCHORS',
    key: 'trustAnchors',
    default: '',
    description: 'PEM file or directory of trusted root certificates',
    parse: (raw) => (raw === '' ? undefined : raw),
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
    name: 'DOMSEC_ON_ERROR',
    key: 'onError',
    default: 'tempfail',
    description: 'when policy cannot be met: `tempfail` | `reject` | `accept`',
    parse: oneOf(['tempfail', 'reject', 'accept'] as const),
  },
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
    name: 'DOMSEC_DRAIN_TIMEOUT',
    key: 'drainTimeoutMs',
    default: '30',
    description: 'seconds SIGTERM waits for open messages before closing their connections',
    parse: (raw) => {
      const s = integer(0, 3600, ' seconds')(raw);
      return typeof s === 'number' ? s * 1000 : s;
    },
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
  return out as unknown as Config;
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
