/**
 * One search in one partner directory: the certificate attributes of the
 * entries whose mail is exactly one address. The session is bounded (see
 * ldap-session.ts); so is the number of entries read.
 */

import { EqualityFilter } from 'ldapts';
import {
  buffersOf,
  type LdapSessionOptions,
  serverTimeLimit,
  withLdapSession,
} from './ldap-session.js';
import type { LdapDirectoryAddress } from './ldap-url.js';

export { LdapQueryError } from './ldap-session.js';

export interface LdapQueryOptions extends LdapSessionOptions {
  readonly sizeLimit: number;
}

export type CertificateAttribute = 'userCertificate' | 'userSMIMECertificate';

export interface DirectoryValue {
  readonly dn: string;
  readonly attribute: CertificateAttribute;
  readonly value: Buffer;
}

export interface DirectoryAnswer {
  readonly entries: number;
  /** The size limit was reached: there may be more entries than were read. */
  readonly limited: boolean;
  readonly values: DirectoryValue[];
}

const REQUESTED = ['userCertificate;binary', 'userCertificate', 'userSMIMECertificate'];

function certificateAttribute(name: string): CertificateAttribute | undefined {
  const base = name.toLowerCase().replace(/;binary$/, '');
  if (base === 'usercertificate') return 'userCertificate';
  if (base === 'usersmimecertificate') return 'userSMIMECertificate';
  return undefined;
}

/**
 * Subtree search under the directory's base DN for `(mail=<mail>)`. The
 * filter is built as a structure, not parsed from text: the address travels
 * as the octets of an AttributeValueAssertion and cannot change the filter,
 * whatever characters it holds. Referrals are not followed.
 */
export async function searchByMail(
  directory: LdapDirectoryAddress,
  mail: string,
  opts: LdapQueryOptions,
): Promise<DirectoryAnswer> {
  return withLdapSession(directory.server, opts, async (client) => {
    const { searchEntries } = await client.search(directory.baseDn, {
      scope: 'sub',
      derefAliases: 'never',
      filter: new EqualityFilter({ attribute: 'mail', value: mail }),
      sizeLimit: opts.sizeLimit,
      timeLimit: serverTimeLimit(opts),
      attributes: REQUESTED,
      explicitBufferAttributes: REQUESTED,
    });
    // A server may ignore the size limit it was asked for.
    const entries = searchEntries.slice(0, opts.sizeLimit);
    const values: DirectoryValue[] = [];
    for (const entry of entries) {
      for (const [name, value] of Object.entries(entry)) {
        const attribute = name === 'dn' ? undefined : certificateAttribute(name);
        if (!attribute) continue;
        for (const v of buffersOf(value)) values.push({ dn: entry.dn, attribute, value: v });
      }
    }
    return { entries: entries.length, limited: searchEntries.length >= opts.sizeLimit, values };
  });
}
