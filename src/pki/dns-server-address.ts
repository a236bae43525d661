/**
 * Where the DNS resolver is: an address from configuration, or the system's
 * first nameserver. Addresses only: looking the resolver up by name would
 * need the resolver. And whether its AD bit (RFC 4035 3.2.3: "I validated
 * this with DNSSEC") can be believed: the bit is not signed, so anyone on
 * the path to the resolver can set it, and only a resolver on this host,
 * or one the administrator vouches for, is believed.
 */

import { promises as fs } from 'node:fs';
import net from 'node:net';

export class DnsConfigError extends Error {
  override readonly name = 'DnsConfigError';
}

export interface DnsServerAddress {
  readonly host: string;
  readonly port: number;
  readonly family: 4 | 6;
}

/** "192.0.2.1", "192.0.2.1:5353", "2001:db8::1", "[2001:db8::1]:5353". Addresses only: no names. */
export function parseServerAddress(text: string): DnsServerAddress {
  const t = text.trim();
  let host = t;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
  } else if (t.split(':').length === 2) {
    [host, portText] = t.split(':') as [string, string];
  }
  const family = net.isIP(host);
  if (family === 0)
    throw new DnsConfigError(`DNS resolver ${JSON.stringify(text)}: not an IP address`);
  if (bracketed && family !== 6)
    throw new DnsConfigError(`DNS resolver ${JSON.stringify(text)}: brackets are for IPv6`);
  const port = portText === undefined ? 53 : Number(portText);
  if (!/^\d{1,5}$/.test(portText ?? '53') || port < 1 || port > 65_535)
    throw new DnsConfigError(`DNS resolver ${JSON.stringify(text)}: bad port`);
  return { host, port, family: family as 4 | 6 };
}

export function formatServerAddress(s: DnsServerAddress): string {
  return s.family === 6 ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

/** The first usable `nameserver` of resolv.conf as "host:port", or undefined. */
export async function systemResolver(path = '/etc/resolv.conf'): Promise<string | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    try {
      return formatServerAddress(parseServerAddress(m[1]!.includes(':') ? `[${m[1]}]` : m[1]!));
    } catch {
      // not an address we can use: try the next line
    }
  }
  return undefined;
}

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** 127.0.0.0/8 or ::1 (also written as ::ffff:127.x.y.z): packets never leave the host. */
export function isLoopback(server: DnsServerAddress): boolean {
  return LOOPBACK.check(server.host, server.family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * Why the AD bit of the resolver at `configured` (the address configured,
 * not necessarily where a test sends the packets) is believed: it is on
 * loopback, or the administrator declared it validating on a trusted path;
 * 'refused' otherwise.
 */
export type AdBitTrust = 'loopback' | 'declared' | 'refused';

export function adBitTrust(configured: DnsServerAddress, declaredValidating: boolean): AdBitTrust {
  if (isLoopback(configured)) return 'loopback';
  return declaredValidating ? 'declared' : 'refused';
}
