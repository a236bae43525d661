/**
 * CRLs from LDAP distribution points (RFC 5280 4.2.1.13, RFC 4516 URLs):
 * one base-object read of the entry the URL names, one attribute. The URL
 * comes from a certificate, that is from whoever made it: anything beyond
 * "this attribute of this entry" is refused rather than obeyed, the read is
 * anonymous, and the session is bounded (ldap-session.ts) with a byte cap
 * fit for a large CRL.
 */

import type tls from 'node:tls';
import { EqualityFilter, PresenceFilter } from 'ldapts';
import { buffersOf, LdapQueryError, serverTimeLimit, withLdapSession } from './ldap-session.js';
import { ldapUrlParts } from './ldap-url.js';

/** The URL asks for something other than one CRL attribute of one entry. */
export class LdapCrlUrlError extends Error {
  override readonly name = 'LdapCrlUrlError';
}

export type CrlAttribute = 'certificateRevocationList' | 'authorityRevocationList';

export interface LdapCrlLocation {
  /** `ldap://host:port` or `ldaps://host:port`. */
  readonly server: string;
  readonly dn: string;
  readonly attribute: CrlAttribute;
  /** The attribute description as requested (with `;binary` when the URL has it). */
  readonly requested: string;
  /** Only an entry of this objectClass is read (Active Directory writes one into its URLs). */
  readonly objectClass?: string;
}

export interface LdapCrlOptions {
  /** Default 3000. */
  readonly connectTimeoutMs?: number;
  /** Per LDAP operation; default 5000. */
  readonly timeoutMs?: number;
  /** Bytes read from the server, the CRL included; default 64 MiB. */
  readonly maxBytes?: number;
  /** For ldaps:// distribution points; Node's defaults (system CAs) otherwise. */
  readonly tls?: tls.ConnectionOptions;
}

export const LDAP_CRL_MAX_BYTES = 64 * 1024 * 1024;

const ATTRIBUTES: Readonly<Record<string, CrlAttribute>> = {
  certificaterevocationlist: 'certificateRevocationList',
  authorityrevocationlist: 'authorityRevocationList',
};

/** A name as RFC 4512 `keystring` allows it: what an objectClass in a filter may be. */
const KEYSTRING = /^[A-Za-z][A-Za-z0-9-]*$/;

function decode(part: string, what: string, refuse: (why: string) => Error): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw refuse(`the ${what} is not correctly %-encoded`);
  }
}

/**
 * The filter part: none, `(objectClass=*)` (what RFC 4516 means by none), or
 * an objectClass equality as Active Directory Certificate Services writes it
 * (`objectClass=cRLDistributionPoint`, often without the parentheses). Both
 * can only narrow a base-object read; every other filter is refused.
 */
function objectClassOf(filter: string, refuse: (why: string) => Error): string | undefined {
  if (filter === '') return undefined;
  const m = /^(\()?objectClass=([^()]*)(\))?$/i.exec(filter);
  if (m && Boolean(m[1]) === Boolean(m[3])) {
    if (m[2] === '*') return undefined;
    if (KEYSTRING.test(m[2]!)) return m[2];
  }
  throw refuse(
    `the filter ${JSON.stringify(filter)} is not used: only (objectClass=*) or (objectClass=<name>) is`,
  );
}

/**
 * Where an LDAP CRL distribution point points: server, entry, attribute.
 * Throws LdapCrlUrlError for anything else: no host, credentials, several or
 * other attributes, a scope other than base, another filter, extensions.
 */
export function parseLdapCrlUrl(text: string): LdapCrlLocation {
  const refuse = (why: string) =>
    new LdapCrlUrlError(`LDAP CRL URL ${JSON.stringify(text)}: ${why}`);
  const parts = ldapUrlParts(text, refuse);
  if (parts.hasFragment) throw refuse('a fragment (#) has no meaning in an LDAP URL');
  if (parts.dn === '') throw refuse('no DN: the root DSE holds no CRL');
  const fields = (parts.query ?? '').split('?');
  if (fields.length > 4) throw refuse('too many "?" parts');
  const [rawAttributes = '', rawScope = '', rawFilter = '', rawExtensions = ''] = fields;
  if (rawExtensions !== '') {
    const credentials = /(^|,)!?(bindname|x-bindname|x-bindpw)=/i.test(
      decode(rawExtensions, 'extensions', refuse),
    );
    throw refuse(
      credentials
        ? 'credentials in a URL are never used'
        : 'extensions are not supported (only attribute, base scope and objectClass filter are)',
    );
  }
  const requested =
    decode(rawAttributes, 'attribute', refuse) || 'certificateRevocationList;binary';
  if (requested.includes(',')) throw refuse(`one attribute only, not ${JSON.stringify(requested)}`);
  const attribute = ATTRIBUTES[requested.toLowerCase().replace(/;binary$/, '')];
  if (!attribute)
    throw refuse(
      `the attribute ${JSON.stringify(requested)} holds no CRL (certificateRevocationList or authorityRevocationList)`,
    );
  const scope = decode(rawScope, 'scope', refuse);
  if (scope !== '' && scope.toLowerCase() !== 'base')
    throw refuse(`the scope must be base (one entry), not ${JSON.stringify(scope)}`);
  const objectClass = objectClassOf(decode(rawFilter, 'filter', refuse), refuse);
  return {
    server: parts.server,
    dn: parts.dn,
    attribute,
    requested,
    ...(objectClass ? { objectClass } : {}),
  };
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v <= 0)
    throw new RangeError(`${name} must be a positive integer, not ${value}`);
  return v;
}

/**
 * The DER of the CRL at an LDAP distribution point: the first value of the
 * attribute the URL names (with or without `;binary` in the answer). Throws
 * LdapCrlUrlError for a URL it will not follow and LdapQueryError when the
 * directory cannot be asked or holds no such value. The bytes are not
 * judged here: parsing and the signature are the CRL store's and checker's.
 */
export async function fetchLdapCrl(url: string, opts: LdapCrlOptions = {}): Promise<Buffer> {
  const where = parseLdapCrlUrl(url);
  const session = {
    connectTimeoutMs: positive('connectTimeoutMs', opts.connectTimeoutMs, 3000),
    timeoutMs: positive('timeoutMs', opts.timeoutMs, 5000),
    maxResponseBytes: positive('maxBytes', opts.maxBytes, LDAP_CRL_MAX_BYTES),
    ...(opts.tls ? { tls: opts.tls } : {}),
  };
  const wanted = where.attribute.toLowerCase();
  return withLdapSession(where.server, session, async (client) => {
    const { searchEntries } = await client.search(where.dn, {
      scope: 'base',
      derefAliases: 'never',
      filter: where.objectClass
        ? new EqualityFilter({ attribute: 'objectClass', value: where.objectClass })
        : new PresenceFilter({ attribute: 'objectClass' }),
      sizeLimit: 1,
      timeLimit: serverTimeLimit(session),
      attributes: [where.requested],
      explicitBufferAttributes: [where.requested, where.attribute, `${where.attribute};binary`],
    });
    const entry = searchEntries[0];
    if (!entry)
      throw new LdapQueryError(
        where.objectClass
          ? `entry ${JSON.stringify(where.dn)} is not of objectClass ${where.objectClass}`
          : `the directory returned no entry ${JSON.stringify(where.dn)}`,
      );
    for (const [name, value] of Object.entries(entry)) {
      if (name === 'dn' || name.toLowerCase().replace(/;binary$/, '') !== wanted) continue;
      const first = buffersOf(value)[0];
      if (first && first.length > 0) return first;
    }
    throw new LdapQueryError(`entry ${JSON.stringify(where.dn)} holds no ${where.attribute}`);
  });
}
