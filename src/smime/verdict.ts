/**
 * The inbound verdict (RFC 7281 `smime`, with the result names RFC 8601
 * gives DKIM): pass only when a valid signature, made with a strong
 * algorithm by a certificate that chains to a trust anchor, is bound to
 * every author of the message (binding.ts). A valid, trusted signature that
 * is not bound, or uses SHA-1 or MD5, is `policy`: verified, but not
 * acceptable as proof of who wrote the message.
 */

import type { SignerReport } from '../cms/verify.js';
import type { Author, Authors } from './authors.js';
import { type Binding, bindingTo } from './binding.js';
import type { TransformError, TransformReport } from './types.js';

export type SmimeResult =
  | 'pass'
  | 'fail'
  | 'policy'
  | 'neutral'
  | 'none'
  | 'temperror'
  | 'permerror';

export interface SmimeVerdict {
  readonly result: SmimeResult;
  /** Why, in our words (never text from the message), as an RFC 8601 comment. */
  readonly reason?: string;
  /** The signer that decided: its identity is reported only when its chain is trusted. */
  readonly signer?: SignerReport;
}

/** The signature verified with a certificate in hand. */
const verified = (s: SignerReport) => s.valid && s.certificate !== undefined;
/** ...and the certificate chains to an anchor (no validator: nothing to chain to, taken as is). */
const trusted = (s: SignerReport) => verified(s) && s.chain?.trusted !== false;
/** ...or would, but its revocation status cannot be had for now (hard-fail). */
const pending = (s: SignerReport) =>
  verified(s) && s.chain?.trusted === false && s.chain.temporary === true;

function bindsAll(s: SignerReport, authors: readonly Author[]): boolean {
  return authors.every((a) => bindingTo(s.certificate!, a) !== undefined);
}

/** How each author is bound: by whichever strong, trusted signer names it. */
export function bindings(
  signers: readonly SignerReport[],
  authors: readonly Author[],
): (Binding | undefined)[] {
  return authors.map((a) =>
    signers
      .filter((s) => trusted(s) && !s.weakAlgorithm)
      .map((s) => bindingTo(s.certificate!, a))
      .find((b) => b !== undefined),
  );
}

export function verdictOf(report: TransformReport, error?: TransformError): SmimeVerdict {
  if (error) {
    const temporary = error.code === 'internal' || error.code === 'too-large';
    return { result: temporary ? 'temperror' : 'permerror', reason: error.message };
  }
  const signers = report.layers.flatMap((l) => l.signers ?? []);
  if (signers.length === 0) return { result: 'none' };
  const authors: Authors = report.authors ?? { ok: false, problem: 'authors not read' };
  const list = authors.ok ? authors.authors : [];
  const strong = signers.filter((s) => trusted(s) && !s.weakAlgorithm);
  if (list.length > 0 && bindings(strong, list).every((b) => b !== undefined)) {
    // The signer reported is the one bound to the first author (the From).
    const good = strong.find((s) => bindingTo(s.certificate!, list[0]!) !== undefined)!;
    return {
      result: 'pass',
      signer: good,
      ...(good.chain?.caveat ? { reason: good.chain.caveat } : {}),
    };
  }
  const unbound = authors.ok
    ? 'signer not bound to the author'
    : `signer not bound to the author (${authors.problem})`;
  const waiting = signers.filter((s) => pending(s) && !s.weakAlgorithm);
  const bound = waiting.find((s) => list.length > 0 && bindsAll(s, list));
  if (bound)
    return {
      result: 'temperror',
      reason: bound.chain?.reason ?? 'revocation status unavailable',
      signer: bound,
    };
  if (strong.length > 0 || waiting.length > 0)
    return { result: 'policy', reason: unbound, signer: (strong[0] ?? waiting[0])! };
  const weak = signers.find((s) => (trusted(s) || pending(s)) && s.weakAlgorithm);
  if (weak)
    return { result: 'policy', reason: `weak algorithm: ${weak.weakAlgorithm}`, signer: weak };
  const untrusted = signers.find(verified);
  if (untrusted)
    return {
      result: 'fail',
      reason: untrusted.chain?.reason ?? 'certificate not trusted',
      signer: untrusted,
    };
  const bad = signers[0]!;
  return { result: 'fail', reason: bad.failure?.message ?? 'signature not valid', signer: bad };
}

/**
 * Whether the verdict vouches for the integrity of decrypted content:
 * a bound, strong, valid signature (pass, or temperror while revocation
 * cannot be checked). AES-CBC has no integrity of its own.
 */
export function vouchesForContent(v: SmimeVerdict): boolean {
  return v.result === 'pass' || (v.result === 'temperror' && v.signer?.valid === true);
}
