/**
 * Which way a message goes, and so what the gateway may do with it.
 * RFC 3183 allows a domain signature only for an authenticated originator:
 * an outside client claiming one of our senders is never signed for
 * (signing oracle), and only mail from outside to our own recipients is
 * decrypted (decryption oracle).
 */

import { BlockList, isIP } from 'node:net';

export type Direction =
  /** From an authenticated or trusted client with one of our senders to outside recipients. */
  | 'outbound'
  /** From outside to our recipients. */
  | 'inbound'
  /** Between our own users, or anything else: passed through untouched. */
  | 'pass';

export interface DirectionPolicy {
  readonly localDomains: ReadonlySet<string>;
  readonly trustedNetworks: BlockList;
}

export interface ClientFacts {
  /** IP address of the SMTP client (from the CONNECT event), if any. */
  readonly address: string | undefined;
  /** SASL login name ({auth_authen}), if the client authenticated. */
  readonly authenticatedAs: string | undefined;
}

/** `<Alice@Example.ORG>` -> `example.org`; the null sender has no domain. */
export function domainOf(address: string): string | undefined {
  const bare = address.trim().replace(/^<|>$/g, '');
  const at = bare.lastIndexOf('@');
  return at < 0
    ? undefined
    : bare
        .slice(at + 1)
        .toLowerCase()
        .replace(/\.$/, '');
}

/** A domain is ours if it is one of the configured ones (subdomains are not implied). */
export function isLocal(policy: DirectionPolicy, address: string): boolean {
  const d = domainOf(address);
  return d !== undefined && policy.localDomains.has(d);
}

export function parseNetworks(list: readonly string[]): BlockList {
  const b = new BlockList();
  for (const cidr of list) {
    const [addr, bits] = cidr.split('/');
    const family = isIP(addr ?? '') === 6 ? 'ipv6' : 'ipv4';
    const prefix = bits === undefined ? (family === 'ipv6' ? 128 : 32) : Number(bits);
    b.addSubnet(addr!, prefix, family);
  }
  return b;
}

export function isTrustedClient(policy: DirectionPolicy, client: ClientFacts): boolean {
  if (client.authenticatedAs) return true;
  const a = client.address;
  if (!a) return false;
  const family = isIP(a);
  if (family === 0) return false;
  // An IPv4-mapped IPv6 address counts as the IPv4 address.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) return policy.trustedNetworks.check(mapped[1]!, 'ipv4');
  return policy.trustedNetworks.check(a, family === 6 ? 'ipv6' : 'ipv4');
}

/** The direction of one recipient of a message from `sender` sent by `client`. */
export function recipientDirection(
  policy: DirectionPolicy,
  client: ClientFacts,
  sender: string,
  recipient: string,
): Direction {
  const local = isLocal(policy, recipient);
  if (isTrustedClient(policy, client)) {
    if (!local && isLocal(policy, sender)) return 'outbound';
    return 'pass';
  }
  return local ? 'inbound' : 'pass';
}
