/**
 * The full validator: candidate paths from the path builder (loop-safe
 * through bridge and cross-certified PKIs), each checked by pkijs'
 * CertificateChainValidationEngine (RFC 5280 section 6: validity, CA flags,
 * key usage, policies, name constraints) on exactly that path, then the
 * revocation status of every certificate in the first path that passes. The
 * engine gets no CRLs or OCSP responses: it would treat `unknown` as revoked
 * and check no OCSP signature, so revocation is ours (src/pki/revocation).
 */

import * as pkijs from 'pkijs';
import { type CertificateInfo, describeName } from '../cms/certificate.js';
import type { CertificateValidator, ChainVerdict } from '../cms/verify.js';
import {
  DEFAULT_PATH_LIMITS,
  findPaths,
  type PathSearch,
  type PathSearchLimits,
} from './path-builder.js';
import type { RevocationChecker, RevocationStatus } from './revocation/checker.js';

export type RevocationPolicy = 'soft-fail' | 'hard-fail';

export interface PathValidatorOptions {
  readonly anchors: readonly CertificateInfo[];
  /** Intermediates and cross-certificates we hold (not trusted by themselves). */
  readonly intermediates?: readonly CertificateInfo[];
  readonly revocation?: RevocationChecker;
  readonly policy?: RevocationPolicy;
  readonly limits?: PathSearchLimits;
}

const subjectOf = (c: CertificateInfo) => describeName(c, 'subject');

function validityProblem(c: CertificateInfo, at: Date): string | undefined {
  if (at < c.notBefore) return `${subjectOf(c)}: not valid before ${c.notBefore.toISOString()}`;
  if (at > c.notAfter) return `${subjectOf(c)}: expired on ${c.notAfter.toISOString()}`;
  return undefined;
}

/** pkijs' verdict on one path (leaf first, anchor last). */
async function engineProblem(
  path: readonly CertificateInfo[],
  at: Date,
): Promise<string | undefined> {
  const anchor = path[path.length - 1]!;
  const engine = new pkijs.CertificateChainValidationEngine({
    trustedCerts: [anchor.pkijs],
    // The engine takes the last of `certs` as the leaf.
    certs: path
      .slice(0, -1)
      .reverse()
      .map((c) => c.pkijs),
    checkDate: at,
  });
  const result = await engine.verify();
  if (result.result) return undefined;
  const expired = path.map((c) => validityProblem(c, at)).find(Boolean);
  return expired ?? result.resultMessage ?? `path rejected (code ${result.resultCode})`;
}

function describeRevocation(c: CertificateInfo, s: RevocationStatus): string {
  switch (s.status) {
    case 'good':
      return `${subjectOf(c)}: not revoked (${s.method})`;
    case 'revoked':
      return `${subjectOf(c)}: revoked on ${s.revokedAt}${s.reason ? ` (${s.reason})` : ''} per ${s.method.toUpperCase()}`;
    case 'unknown':
      return `${subjectOf(c)}: revocation status unknown: ${s.detail}`;
    case 'unavailable':
      return `${subjectOf(c)}: revocation status unavailable: ${s.detail}`;
    case 'not-published':
      return `${subjectOf(c)}: ${s.detail}`;
  }
}

/** Remembered per validator: the same partner signs message after message. */
const MEMO_SIZE = 2000;

function remember<V>(map: Map<string, V>, key: string, value: V): V {
  map.set(key, value);
  if (map.size > MEMO_SIZE) map.delete(map.keys().next().value!);
  return value;
}

export class PathValidator implements CertificateValidator {
  private readonly intermediates: readonly CertificateInfo[];
  private readonly policy: RevocationPolicy;
  /** Path searches by leaf and message pool (anchors and intermediates are fixed). */
  private readonly searches = new Map<string, PathSearch>();
  /**
   * Paths the pkijs engine accepted. Its verdict depends on time only through
   * validity, which is checked again at every use; rejections are not kept.
   */
  private readonly accepted = new Map<string, true>();

  constructor(private readonly opts: PathValidatorOptions) {
    this.intermediates = opts.intermediates ?? [];
    this.policy = opts.policy ?? 'soft-fail';
  }

  async validate(
    leaf: CertificateInfo,
    pool: readonly CertificateInfo[],
    at: Date,
  ): Promise<ChainVerdict> {
    if (this.opts.anchors.length === 0)
      return { trusted: false, reason: 'no trust anchors configured', path: [leaf] };
    const searchKey = `${leaf.fingerprint}|${[...new Set(pool.map((c) => c.fingerprint))].sort().join(',')}`;
    const search =
      this.searches.get(searchKey) ??
      remember(
        this.searches,
        searchKey,
        findPaths(
          leaf,
          [...pool, ...this.intermediates],
          this.opts.anchors,
          this.opts.limits ?? DEFAULT_PATH_LIMITS,
        ),
      );
    if (search.paths.length === 0) {
      const why = ['no path to a trusted certificate authority', ...search.notes].join('; ');
      return { trusted: false, reason: why, path: [leaf] };
    }
    const rejections: string[] = [];
    for (const path of search.paths) {
      const problem = await this.pathProblem(path, at);
      if (problem) {
        if (!rejections.includes(problem)) rejections.push(problem);
        continue;
      }
      return this.withRevocation(path, at);
    }
    return { trusted: false, reason: rejections.join('; '), path: search.paths[0]! };
  }

  private async pathProblem(
    path: readonly CertificateInfo[],
    at: Date,
  ): Promise<string | undefined> {
    if (path.length === 1) return validityProblem(path[0]!, at);
    const key = path.map((c) => c.fingerprint).join('>');
    if (this.accepted.has(key)) return path.map((c) => validityProblem(c, at)).find(Boolean);
    const problem = await engineProblem(path, at);
    if (!problem) {
      remember(this.accepted, key, true);
    }
    return problem;
  }

  private async withRevocation(path: readonly CertificateInfo[], at: Date): Promise<ChainVerdict> {
    const checker = this.opts.revocation;
    if (!checker?.enabled || path.length < 2) return { trusted: true, path };
    const notes: string[] = [];
    let doubt: string | undefined;
    let caveat: string | undefined;
    let temporary = false;
    for (let i = 0; i < path.length - 1; i++) {
      const status = await checker.check(path[i]!, path[i + 1]!, at);
      const text = describeRevocation(path[i]!, status);
      notes.push(text);
      if (status.status === 'revoked')
        return { trusted: false, reason: text, path, notes, revoked: true };
      if (status.status !== 'good') {
        doubt ??= text;
        if (status.status === 'unavailable') temporary = true;
        // A responder asked and failed (not a certificate that names none).
        if (status.status === 'unavailable' || status.status === 'unknown') caveat ??= text;
      }
    }
    if (doubt && this.policy === 'hard-fail')
      return { trusted: false, reason: doubt, path, notes, ...(temporary ? { temporary } : {}) };
    return { trusted: true, path, notes, ...(caveat ? { caveat } : {}) };
  }
}
