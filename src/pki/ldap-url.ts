/**
 * LDAP URLs (RFC 4516) naming a partner directory: scheme, host, port and
 * base DN. Attributes, scope and filter are the lookup's to choose, so a URL
 * that sets them is refused rather than silently half-obeyed; so are
 * credentials in the URL (they would end up in every log line naming it).
 */

export class LdapConfigError extends Error {
  override readonly name = 'LdapConfigError';
}

export interface LdapDirectoryAddress {
  /** The URL as configured, for messages and logs. */
  readonly url: string;
  /** `ldap://host:port` or `ldaps://host:port`: what the client connects to. */
  readonly server: string;
  /** Where the subtree search starts ('' is the root DSE). */
  readonly baseDn: string;
  readonly secure: boolean;
}

/**
 * A list of LDAP URLs in one configuration value, separated by white space.
 * Not by commas: a base DN is full of them, and RFC 4516 URLs cannot contain
 * a raw space (it is written %20).
 */
export function splitLdapUrls(value: string): string[] {
  return value.split(/\s+/).filter((u) => u !== '');
}

/** An RFC 4516 URL taken apart; the query (attributes?scope?filter?extensions) still %-encoded. */
export interface LdapUrlParts {
  readonly server: string;
  readonly secure: boolean;
  /** The DN, %-decoded. */
  readonly dn: string;
  /** What follows the first '?', undefined without one. */
  readonly query: string | undefined;
  readonly hasFragment: boolean;
}

/**
 * Scheme, host, port and DN of an LDAP URL, refusing (through `refuse`) what
 * no use of an LDAP URL here accepts: other schemes, credentials, no host.
 * The query is left for the caller to judge.
 */
export function ldapUrlParts(text: string, refuse: (why: string) => Error): LdapUrlParts {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw refuse('not a URL');
  }
  if (url.protocol !== 'ldap:' && url.protocol !== 'ldaps:')
    throw refuse('the scheme must be ldap or ldaps');
  if (url.username !== '' || url.password !== '')
    throw refuse('credentials do not belong in the URL (give a bind DN and password apart)');
  if (url.hostname === '')
    throw refuse('a host is required (there is no default server for ldap:///)');
  const at = text.indexOf('?');
  const query = at < 0 ? undefined : text.slice(at + 1).replace(/#.*$/s, '');
  let dn: string;
  try {
    dn = decodeURIComponent(url.pathname.replace(/^\//, ''));
  } catch {
    throw refuse('the DN is not correctly %-encoded');
  }
  if (/[\u0000-\u001f\u007f]/.test(dn)) throw refuse('control characters in the DN');
  const secure = url.protocol === 'ldaps:';
  const port = url.port === '' ? (secure ? 636 : 389) : Number(url.port);
  return {
    server: `${url.protocol}//${url.hostname}:${port}`,
    secure,
    dn,
    query,
    hasFragment: url.hash !== '' || text.includes('#'),
  };
}

export function parseLdapUrl(text: string): LdapDirectoryAddress {
  const refuse = (why: string) => new LdapConfigError(`LDAP URL ${JSON.stringify(text)}: ${why}`);
  const parts = ldapUrlParts(text, refuse);
  if (parts.query !== undefined || parts.hasFragment)
    throw refuse(
      'attributes, scope, filter and extensions are chosen by the lookup; give host and base DN only',
    );
  return { url: text, server: parts.server, baseDn: parts.dn, secure: parts.secure };
}
