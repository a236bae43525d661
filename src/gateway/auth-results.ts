/**
 * Authentication-Results (RFC 8601) with the `smime` method of RFC 7281:
 * result and the body.smime-* properties of the signer that decided it.
 */

import type { SignerReport } from '../cms/verify.js';
import type { TransformError, TransformReport } from '../smime/types.js';

export type SmimeResult = 'pass' | 'fail' | 'neutral' | 'none' | 'temperror' | 'permerror';

export interface SmimeVerdict {
  readonly result: SmimeResult;
  /** Why, as an RFC 8601 comment. */
  readonly reason?: string;
  readonly signer?: SignerReport;
}

/** The verdict of an inbound transform: the innermost signature layer decides. */
export function verdictOf(report: TransformReport, error?: TransformError): SmimeVerdict {
  if (error) {
    const temporary = error.code === 'internal' || error.code === 'too-large';
    return { result: temporary ? 'temperror' : 'permerror', reason: error.message };
  }
  const signers = report.layers.flatMap((l) => l.signers ?? []);
  if (signers.length === 0) return { result: 'none' };
  const good = signers.find((s) => s.valid && s.chain?.trusted !== false);
  // Soft-fail: trusted although its revocation status is unknown; the comment says so.
  if (good)
    return {
      result: 'pass',
      signer: good,
      ...(good.chain?.caveat ? { reason: good.chain.caveat } : {}),
    };
  const untrusted = signers.find((s) => s.valid);
  if (untrusted)
    return {
      result: untrusted.chain?.temporary ? 'temperror' : 'fail',
      reason: untrusted.chain?.reason ?? 'certificate not trusted',
      signer: untrusted,
    };
  const bad = signers[0]!;
  return { result: 'fail', reason: bad.failure?.message ?? 'signature not valid', signer: bad };
}

/** A quoted-string for header values (RFC 5322 3.2.4). */
function quoted(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[\r\n]/g, ' ')}"`;
}

function comment(s: string): string {
  return `(${s.replace(/[()\\]/g, (c) => `\\${c}`).replace(/[\r\n]/g, ' ')})`;
}

/** The header value (after "Authentication-Results:"), folded with CRLF + tab. */
export function authenticationResults(authservId: string, v: SmimeVerdict): string {
  const parts = [`smime=${v.result}`];
  if (v.reason) parts.push(comment(v.reason));
  const cert = v.signer?.certificate;
  if (cert) {
    const id = cert.rfc822Names[0] ?? cert.dnsNames[0];
    if (id) parts.push(`body.smime-identifier=${id}`);
    parts.push(`body.smime-serial=${cert.serial.toString('hex').toUpperCase()}`);
    parts.push(`body.smime-issuer=${quoted(cert.x509.issuer.split('\n').reverse().join(', '))}`);
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
