/**
 * Candidate certification paths (RFC 4158) from a leaf to one of our trust
 * anchors, through a pool of intermediates and cross-certificates. Depth
 * first with loop detection on subject and key, because cross-certified and
 * bridge PKIs (Open Group SSM section 9) contain cycles: root A certifies the
 * bridge, the bridge certifies root A. The search is bounded in depth and in
 * the number of links examined, so a hostile pool costs bounded time.
 * Each link's signature is checked here; everything else (validity, CA
 * flags, policies, name constraints) is the validator's job.
 */

import type { CertificateInfo } from '../cms/certificate.js';

export interface PathSearchLimits {
  readonly maxDepth: number;
  readonly maxLinks: number;
}

export const DEFAULT_PATH_LIMITS: PathSearchLimits = { maxDepth: 8, maxLinks: 256 };

/** Subject and key: the identity of a CA across its cross-certificates. */
function entityOf(c: CertificateInfo): string {
  return `${c.subjectDer.toString('hex')}/${c.publicKey.export({ type: 'spki', format: 'der' }).toString('hex')}`;
}

const entities = new WeakMap<CertificateInfo, string>();
function entity(c: CertificateInfo): string {
  let e = entities.get(c);
  if (!e) {
    e = entityOf(c);
    entities.set(c, e);
  }
  return e;
}

function authorityKeyId(c: CertificateInfo): Buffer | undefined {
  const ext = c.pkijs.extensions?.find((e) => e.extnID === '2.5.29.35');
  const id = (ext?.parsedValue as { keyIdentifier?: { valueBlock: { valueHexView: Uint8Array } } })
    ?.keyIdentifier;
  return id ? Buffer.from(id.valueBlock.valueHexView) : undefined;
}

export interface PathSearch {
  /** Each path runs leaf first, anchor last; shortest first. */
  readonly paths: readonly (readonly CertificateInfo[])[];
  /** Why the search ended without (more) paths, for the report. */
  readonly notes: readonly string[];
}

export function findPaths(
  leaf: CertificateInfo,
  pool: readonly CertificateInfo[],
  anchors: readonly CertificateInfo[],
  limits: PathSearchLimits = DEFAULT_PATH_LIMITS,
): PathSearch {
  const paths: CertificateInfo[][] = [];
  const notes = new Set<string>();
  const anchorEntities = new Set(anchors.map(entity));
  // Anchors first; pool certificates of an anchor's entity are that anchor; each certificate once.
  const unique = new Map<string, CertificateInfo>();
  for (const c of anchors) unique.set(c.fingerprint, c);
  for (const c of pool) if (!anchorEntities.has(entity(c))) unique.set(c.fingerprint, c);
  const candidates = [...unique.values()];
  let links = 0;
  const signatureChecks = new Map<string, boolean>();

  const issues = (child: CertificateInfo, parent: CertificateInfo): boolean => {
    if (!child.issuerDer.equals(parent.subjectDer)) return false;
    const aki = authorityKeyId(child);
    if (aki && parent.subjectKeyId && !aki.equals(parent.subjectKeyId)) return false;
    const key = `${child.fingerprint}>${parent.fingerprint}`;
    let ok = signatureChecks.get(key);
    if (ok === undefined) {
      links++;
      ok = child.x509.verify(parent.publicKey);
      signatureChecks.set(key, ok);
    }
    return ok;
  };

  const walk = (path: CertificateInfo[], seen: Set<string>): void => {
    const current = path[path.length - 1]!;
    if (anchorEntities.has(entity(current))) {
      paths.push(path);
      return;
    }
    if (path.length > limits.maxDepth) {
      notes.add(`certificate path longer than ${limits.maxDepth}`);
      return;
    }
    for (const next of candidates) {
      if (links >= limits.maxLinks) {
        notes.add(`path search stopped after ${limits.maxLinks} links`);
        return;
      }
      const e = entity(next);
      if (seen.has(e) || !issues(current, next)) continue;
      seen.add(e);
      walk([...path, next], seen);
      seen.delete(e);
    }
  };

  walk([leaf], new Set([entity(leaf)]));
  paths.sort((a, b) => a.length - b.length);
  return { paths, notes: [...notes] };
}
