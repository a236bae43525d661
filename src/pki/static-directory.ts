/**
 * Partner certificates from a directory of PEM files (DOMSEC_PARTNER_CERTS),
 * and trust anchors from a PEM file or directory (DOMSEC_TRUST_ANCHORS).
 * A partner domain D is matched, in this order of preference, by the SAN
 * rfc822Name `domain-confidentiality-authority@D`, any rfc822Name at D, or
 * the dNSName D; among several, the one valid longest wins.
 */

import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { type CertificateInfo, loadCertificatesPem } from '../cms/certificate.js';
import type { CertificateSource, LookupResult } from './partners.js';

export class CertificateFileError extends Error {
  override readonly name = 'CertificateFileError';
}

/** Every certificate in a PEM file, or in the PEM files (*.pem, *.crt) of a directory. */
export async function loadPemCertificates(path: string): Promise<CertificateInfo[]> {
  let files: string[];
  try {
    const stat = await fs.stat(path);
    files = stat.isDirectory()
      ? (await fs.readdir(path))
          .filter((n) => /\.(pem|crt|cer)$/i.test(n))
          .sort()
          .map((n) => join(path, n))
      : [path];
  } catch (err) {
    throw new CertificateFileError(
      `${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  const out: CertificateInfo[] = [];
  for (const f of files) {
    try {
      out.push(...loadCertificatesPem(await fs.readFile(f, 'utf8')));
    } catch (err) {
      throw new CertificateFileError(`${f}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return out;
}

/** How well a certificate names domain D as its encryption identity (higher is better, 0 none). */
export function domainMatch(cert: CertificateInfo, domain: string): number {
  const d = domain.toLowerCase();
  if (cert.rfc822Names.includes(`domain-confidentiality-authority@${d}`)) return 3;
  if (cert.rfc822Names.some((n) => n.endsWith(`@${d}`))) return 2;
  if (cert.dnsNames.includes(d)) return 1;
  return 0;
}

/** Usable for encryption: key transport or key agreement allowed, e-mail protection allowed, valid now. */
export function encryptionProblem(cert: CertificateInfo, at: Date): string | undefined {
  if (at < cert.notBefore || at > cert.notAfter) return 'outside its validity period';
  const type = cert.publicKey.asymmetricKeyType;
  if (type !== 'rsa' && type !== 'ec' && type !== 'x25519') return `a ${type} key cannot encrypt`;
  const ku = cert.pkijs.extensions?.find((e) => e.extnID === '2.5.29.15');
  if (ku) {
    const bits = (ku.parsedValue as { valueBlock: { valueHexView: Uint8Array } }).valueBlock
      .valueHexView;
    const first = bits[0] ?? 0;
    const allowed = type === 'rsa' ? (first & 0x20) !== 0 : (first & 0x08) !== 0;
    if (!allowed)
      return type === 'rsa' ? 'keyUsage lacks keyEncipherment' : 'keyUsage lacks keyAgreement';
  }
  const eku = cert.pkijs.extensions?.find((e) => e.extnID === '2.5.29.37');
  if (eku) {
    const ids = (eku.parsedValue as { keyPurposes?: string[] }).keyPurposes ?? [];
    if (!ids.includes('1.3.6.1.5.5.7.3.4') && !ids.includes('2.5.29.37.0'))
      return 'extendedKeyUsage lacks emailProtection';
  }
  return undefined;
}

export class StaticCertificateDirectory implements CertificateSource {
  readonly name = 'directory';

  /** Certificates by every domain they name (e-mail domains and dNSNames): no scan per look-up. */
  private readonly byDomain = new Map<string, CertificateInfo[]>();

  constructor(private readonly certificates: readonly CertificateInfo[]) {
    for (const c of certificates) {
      const domains = new Set([
        ...c.rfc822Names.map((n) => n.slice(n.lastIndexOf('@') + 1)),
        ...c.dnsNames,
      ]);
      for (const d of domains) {
        const list = this.byDomain.get(d);
        if (list) list.push(c);
        else this.byDomain.set(d, [c]);
      }
    }
  }

  static async load(path: string): Promise<StaticCertificateDirectory> {
    return new StaticCertificateDirectory(await loadPemCertificates(path));
  }

  get size(): number {
    return this.certificates.length;
  }

  /** Every certificate in the directory, for `certs list`. */
  get all(): readonly CertificateInfo[] {
    return this.certificates;
  }

  async lookup(domain: string, at: Date = new Date()): Promise<LookupResult> {
    const certificate = this.best(domain, at);
    return certificate
      ? { status: 'found', certificate, source: this.name }
      : { status: 'not-found' };
  }

  /** The best usable encryption certificate for `domain`, or undefined. */
  best(domain: string, at: Date = new Date()): CertificateInfo | undefined {
    const candidates = this.byDomain.get(domain.toLowerCase());
    return candidates ? rankEncryptionCertificates(candidates, domain, at)[0] : undefined;
  }
}

/**
 * The certificates of `certificates` one may encrypt to for `domain`, best
 * first: each must name the domain and be usable for encryption at `at`; the
 * better name match wins, then the one valid longest.
 */
export function rankEncryptionCertificates(
  certificates: readonly CertificateInfo[],
  domain: string,
  at: Date,
): CertificateInfo[] {
  return certificates
    .map((c) => ({ c, score: domainMatch(c, domain) }))
    .filter(({ c, score }) => score > 0 && encryptionProblem(c, at) === undefined)
    .sort((a, b) => b.score - a.score || b.c.notAfter.getTime() - a.c.notAfter.getTime())
    .map(({ c }) => c);
}
