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

export function parseLdapUrl(text: string): LdapDirectoryAddress {
  const refuse = (why: string) => new LdapConfigError(`LDAP URL ${JSON.stringify(text)}: ${why}`);
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
  if (url.hostname === '') throw refuse('a host is required');
  if (url.search !== '' || url.hash !== '' || text.includes('?'))
    throw refuse(
      'attributes, scope, filter and extensions are chosen by the lookup; give host and base DN only',
    );
  let baseDn: string;
  try {
    baseDn = decodeURIComponent(url.pathname.replace(/^\//, ''));
  } catch {
    throw refuse('the base DN is not correctly %-encoded');
  }
  if (/[\u0000-\u001f\u007f]/.test(baseDn)) throw refuse('control characters in the base DN');
  const secure = url.protocol === 'ldaps:';
  const port = url.port === '' ? (secure ? 636 : 389) : Number(url.port);
  return { url: text, server: `${url.protocol}//${url.hostname}:${port}`, baseDn, secure };
}
