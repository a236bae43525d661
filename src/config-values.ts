/**
 * Parsers for configuration values: each returns the value or a description
 * of what was expected, which `loadConfig` turns into a one-line error.
 */

import { isIP } from 'node:net';
import { type ListenSpec, ListenSpecError, parseListenSpec } from '../protocol/listen.js';
import type { HttpListen } from './config.js';
import {
  DnsConfigError,
  formatServerAddress,
  parseServerAddress,
} from './pki/dns-server-address.js';
import { LdapConfigError, parseLdapUrl, splitLdapUrls } from './pki/ldap-url.js';

export type Parsed<T> = T | { readonly expected: string };

export function listen(raw: string): ListenSpec | { expected: string } {
  try {
    return parseListenSpec(raw);
  } catch (err) {
    if (err instanceof ListenSpecError)
      return { expected: 'inet:HOST:PORT or unix:/absolute/path' };
    throw err;
  }
}

export function hostPort(raw: string): HttpListen | { expected: string } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(raw);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) return { expected: 'HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464' };
  return { host: (m[1] ?? m[2])!, port };
}

export function integer(min: number, max: number, unit = '') {
  return (raw: string): number | { expected: string } => {
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < min || n > max)
      return { expected: `an integer from ${min} to ${max}${unit}` };
    return n;
  };
}

const BYTE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** A size in bytes, with an optional binary unit: `52428800`, `50M`, `512k`, `1G`. */
export function byteSize(min: number, max: number) {
  return (raw: string): number | { expected: string } => {
    const m = /^(\d+)([kmg]?)$/i.exec(raw);
    const n = m ? Number(m[1]) * BYTE_UNITS[m[2]!.toLowerCase()]! : Number.NaN;
    if (!(n >= min && n <= max))
      return { expected: `a size from ${min} to ${max} bytes (units k, M, G allowed, e.g. 64M)` };
    return n;
  };
}

const DOMAIN =
  /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/;

export function domains(raw: string): string[] | { expected: string } {
  const list = raw
    .split(',')
    .map((d) => d.trim().toLowerCase())
    .filter((d) => d !== '');
  if (list.length === 0 || !list.every((d) => DOMAIN.test(d))) {
    return { expected: 'a comma-separated list of domain names, e.g. example.org,example.com' };
  }
  return list;
}

export function oneOf<T extends string>(values: readonly T[]) {
  return (raw: string): T | { expected: string } =>
    values.find((v) => v === raw) ?? { expected: `one of ${values.join(', ')}` };
}

export function networks(raw: string): string[] | { expected: string } {
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

/** Empty means unset. */
export const optional = (raw: string): string | undefined => (raw === '' ? undefined : raw);

/** Whole seconds within bounds, as milliseconds. */
export function seconds(min: number, max: number) {
  return (raw: string): Parsed<number> => {
    const s = integer(min, max, ' seconds')(raw);
    return typeof s === 'number' ? s * 1000 : s;
  };
}

/** A comma-separated list of distinct values from `values`, order kept. */
export function listOf<T extends string>(values: readonly T[]) {
  return (raw: string): Parsed<T[]> => {
    const list = raw.split(',').map((v) => v.trim());
    const ok =
      list.every((v) => (values as readonly string[]).includes(v)) &&
      new Set(list).size === list.length;
    return ok ? (list as T[]) : { expected: `a comma-separated list of ${values.join(', ')}` };
  };
}

export function ldapUrls(raw: string): Parsed<string[]> {
  const urls = splitLdapUrls(raw);
  try {
    for (const u of urls) parseLdapUrl(u);
  } catch (err) {
    if (err instanceof LdapConfigError)
      return { expected: `LDAP URLs separated by spaces (${err.message})` };
    throw err;
  }
  return urls;
}

export function dnsServer(raw: string): Parsed<string | undefined> {
  if (raw === '') return undefined;
  try {
    return formatServerAddress(parseServerAddress(raw));
  } catch (err) {
    if (err instanceof DnsConfigError)
      return { expected: 'an IP address with optional port, e.g. 127.0.0.1:53 or [::1]:53' };
    throw err;
  }
}

export const yesNo = (raw: string): Parsed<boolean> =>
  raw === 'yes' ? true : raw === 'no' ? false : { expected: 'yes or no' };
