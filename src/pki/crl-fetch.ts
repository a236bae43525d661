/**
 * CRLs from the distribution points certificates name, by scheme: http://
 * (the usual, RFC 5280 4.2.1.13) and ldap:// or ldaps:// (directories of
 * older and government PKIs). Anything else is refused with the reason, so
 * the checker can say why that point was not used and try the next one.
 */

import type tls from 'node:tls';
import { FetchError, httpFetch } from './http-fetch.js';
import { fetchLdapCrl, LDAP_CRL_MAX_BYTES } from './ldap-crl.js';
import type { CrlFetcher } from './revocation/crl-store.js';

export interface CrlFetchOptions {
  /** The whole HTTP exchange, and each LDAP operation. */
  readonly timeoutMs: number;
  /** LDAP connection set-up (TCP and TLS); default timeoutMs. */
  readonly connectTimeoutMs?: number;
  /** Largest CRL (for LDAP: the whole answer); default 64 MiB. */
  readonly maxBytes?: number;
  /** For ldaps:// distribution points; Node's defaults (system CAs) otherwise. */
  readonly ldapTls?: tls.ConnectionOptions;
}

/** The CRL at `url`, as the bytes the distribution point served; FetchError for other schemes. */
export function fetchCrl(url: string, opts: CrlFetchOptions): Promise<Buffer> {
  const maxBytes = opts.maxBytes ?? LDAP_CRL_MAX_BYTES;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'http') return httpFetch(url, { timeoutMs: opts.timeoutMs, maxBytes });
  if (scheme === 'ldap' || scheme === 'ldaps')
    return fetchLdapCrl(url, {
      timeoutMs: opts.timeoutMs,
      connectTimeoutMs: opts.connectTimeoutMs ?? opts.timeoutMs,
      maxBytes,
      ...(opts.ldapTls ? { tls: opts.ldapTls } : {}),
    });
  return Promise.reject(
    new FetchError(
      `${scheme ? `${scheme}:` : 'a URL without scheme'} is not fetched: CRLs come over http, ldap or ldaps`,
    ),
  );
}

/** fetchCrl with these options, in the shape CrlStore takes. */
export const crlFetcher =
  (opts: CrlFetchOptions): CrlFetcher =>
  (url) =>
    fetchCrl(url, opts);
