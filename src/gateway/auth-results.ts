/**
 * Authentication-Results (RFC 8601) with the `smime` method of RFC 7281:
 * result and the body.smime-* properties of the signer that decided it.
 */

import { describeName } from '../cms/certificate.js';
import type { SmimeVerdict } from '../smime/verdict.js';

export type { SmimeResult, SmimeVerdict } from '../smime/verdict.js';

/** RFC 2045 token: US-ASCII printable characters other than SPACE and tspecials. */
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;
/** An RFC 5322 dot-atom local part at a domain name: RFC 8601 allows it unquoted in a pvalue. */
const ADDRESS =
  /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const PRINTABLE = /^[\x20-\x7e]*$/;

/**
 * An RFC 8601 pvalue: an address or token as it is, anything else printable
 * as a quoted-string with `"` and `\` escaped; undefined for what cannot be
 * written faithfully (control characters, line breaks, non-ASCII), which is
 * then left out rather than altered.
 */
export function propertyValue(s: string): string | undefined {
  if (ADDRESS.test(s) || TOKEN.test(s)) return s;
  if (!PRINTABLE.test(s)) return undefined;
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** An RFC 5322 comment of our own text: printable ASCII only, parentheses and `\` escaped. */
function comment(s: string): string {
  const text = s.replace(/[^\x20-\x7e]+/g, ' ').trim();
  return `(${text.replace(/[()\\]/g, (c) => `\\${c}`)})`;
}

/**
 * The header value (after "Authentication-Results:"), folded with CRLF + tab.
 * The signer's identity is given only when its certificate chains to a
 * trust anchor: an untrusted certificate's names are the sender's words.
 */
export function authenticationResults(authservId: string, v: SmimeVerdict): string {
  const parts = [`smime=${v.result}`];
  if (v.reason) parts.push(comment(v.reason));
  const s = v.signer;
  const cert = s?.valid && s.chain?.trusted !== false ? s.certificate : undefined;
  if (cert) {
    const properties: [string, string | undefined][] = [
      ['body.smime-identifier', cert.rfc822Names[0] ?? cert.dnsNames[0]],
      ['body.smime-serial', cert.serial.toString('hex').toUpperCase()],
      ['body.smime-issuer', describeName(cert, 'issuer')],
    ];
    for (const [name, raw] of properties) {
      const value = raw === undefined ? undefined : propertyValue(raw);
      if (value !== undefined) parts.push(`${name}=${value}`);
    }
  }
  return `${authservId};\r\n\t${parts.join('\r\n\t')}`;
}

/**
 * The authserv-id of an Authentication-Results value, lower-cased: after
 * optional CFWS, a token or a quoted-string (RFC 8601 2.2). Comments nest and
 * may hold ';', quoted pairs and line breaks; a reader parses them so, and
 * the forgery check must see the same id the reader will.
 */
export function authservIdOf(value: string): string {
  const n = value.length;
  let i = 0;
  for (;;) {
    while (i < n && ' \t\r\n'.includes(value[i]!)) i++;
    if (value[i] !== '(') break;
    for (let depth = 0; i < n; ) {
      const c = value[i++];
      if (c === '\\') i++;
      else if (c === '(') depth++;
      else if (c === ')' && --depth === 0) break;
    }
  }
  let id = '';
  if (value[i] === '"') {
    for (i++; i < n && value[i] !== '"'; i++) {
      if (value[i] === '\\') i++;
      id += value[i] ?? '';
    }
  } else {
    while (i < n && !' \t\r\n;()"'.includes(value[i]!)) id += value[i++];
  }
  return id.replace(/[\r\n]/g, '').toLowerCase();
}
