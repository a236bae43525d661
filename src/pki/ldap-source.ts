/**
 * Partner encryption certificates from LDAP directories (Open Group SSM 7.5):
 * the directories are asked in the order given, the first one holding a
 * usable certificate for the domain wins. One that is down, hangs or answers
 * nonsense does not stop the search; if nothing is found and one failed, the
 * answer is a temporary failure (the mail waits instead of bouncing).
 *
 * Only the exact address `domain-confidentiality-authority@D` is searched
 * (RFC 3183 naming): no wildcard ever goes into someone else's directory.
 * The answer is unauthenticated on ldap://: give a validator so that only
 * certificates chaining to our trust anchors are used.
 */

import type tls from 'node:tls';
import { domainToASCII } from 'node:url';
import type { Asn1Limits } from '../cms/asn1.js';
import { type CertificateInfo, describeName, loadCertificate } from '../cms/certificate.js';
import type { CertificateValidator } from '../cms/verify.js';
import { certificatesFromCertsOnly } from './certs-only.js';
import { type DirectoryValue, type LdapQueryOptions, searchByMail } from './ldap-query.js';
import { LdapConfigError, type LdapDirectoryAddress, parseLdapUrl } from './ldap-url.js';
import type { CertificateSource, LookupResult } from './partners.js';
import { domainMatch, encryptionProblem, rankEncryptionCertificates } from './static-directory.js';

export interface LdapDirectoryConfig {
  readonly url: string;
  /** Simple bind with these; anonymous when absent. */
  readonly bindDn?: string;
  readonly bindPassword?: string;
}

export interface LdapSourceOptions {
  /** Default 3000. */
  readonly connectTimeoutMs?: number;
  /** Per LDAP operation (bind, search); default 5000. */
  readonly timeoutMs?: number;
  /** Entries read per directory; default 10. */
  readonly sizeLimit?: number;
  /** Bytes read per directory answer; default 1 MiB. */
  readonly maxResponseBytes?: number;
  /** TLS options for ldaps:// directories (e.g. `{ ca }`). */
  readonly tls?: tls.ConnectionOptions;
  /** When given, a certificate is used only if it validates. */
  readonly validator?: CertificateValidator;
  /** Told why a directory failed or why what it returned was not used (for the log). */
  readonly onNote?: (note: LdapNote) => void;
}

export interface LdapNote {
  /** The directory's URL, or '' for notes about the request itself. */
  readonly directory: string;
  readonly domain: string;
  readonly message: string;
}

/** Certificates considered per directory answer; more only costs parsing time. */
export const MAX_CERTIFICATES = 50;
/** Unusable certificates described one by one in the notes of one answer. */
const NOTED_UNUSABLE = 5;

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The domain as an LDH name, IDNs as A-labels, or undefined when it is not a
 * domain name: the only thing ever put into a search. ASCII other than
 * letters, digits, '-' and '.' is refused before the IDNA mapping, because
 * domainToASCII parses like a URL host ("a\\2a.example" would come out "a").
 */
export function searchableDomain(domain: string): string | undefined {
  const lower = domain.toLowerCase();
  if (/[^a-z0-9.\u0080-\uffff-]/.test(lower)) return undefined;
  const ascii = /^[a-z0-9.-]*$/.test(lower) ? lower : domainToASCII(lower);
  const ok = ascii.length <= 253 && ascii.split('.').every((label) => LABEL.test(label));
  return ok ? ascii : undefined;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v <= 0)
    throw new LdapConfigError(`${name} must be a positive integer, not ${value}`);
  return v;
}

interface Directory {
  readonly address: LdapDirectoryAddress;
  readonly query: LdapQueryOptions;
}

interface Candidates {
  readonly certificates: CertificateInfo[];
  readonly problems: string[];
}

export class LdapCertificateSource implements CertificateSource {
  readonly name = 'ldap';
  private readonly directories: readonly Directory[];
  private readonly limits: Asn1Limits;

  /** Throws LdapConfigError for a bad URL, a bind DN without password, or a bad limit. */
  constructor(
    directories: readonly (string | LdapDirectoryConfig)[],
    private readonly options: LdapSourceOptions = {},
  ) {
    const maxResponseBytes = positive('maxResponseBytes', options.maxResponseBytes, 1024 * 1024);
    const common = {
      connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs, 3000),
      timeoutMs: positive('timeoutMs', options.timeoutMs, 5000),
      sizeLimit: positive('sizeLimit', options.sizeLimit, 10),
      maxResponseBytes,
      ...(options.tls ? { tls: options.tls } : {}),
    };
    this.limits = { maxContentLength: maxResponseBytes, maxNodes: 200_000, maxDepth: 32 };
    this.directories = directories.map((d) => {
      const config = typeof d === 'string' ? { url: d } : d;
      const address = parseLdapUrl(config.url);
      if ((config.bindDn === undefined) !== (config.bindPassword === undefined))
        throw new LdapConfigError(`${config.url}: a bind DN and a password go together`);
      const bind =
        config.bindDn !== undefined && config.bindPassword !== undefined
          ? { dn: config.bindDn, password: config.bindPassword }
          : undefined;
      return { address, query: { ...common, ...(bind ? { bind } : {}) } };
    });
  }

  get urls(): string[] {
    return this.directories.map((d) => d.address.url);
  }

  async lookup(domain: string, at: Date = new Date()): Promise<LookupResult> {
    const d = searchableDomain(domain);
    if (d === undefined) {
      this.note('', domain, 'not a domain name: no directory asked');
      return { status: 'not-found' };
    }
    const mail = `domain-confidentiality-authority@${d}`;
    const failures: string[] = [];
    for (const { address, query } of this.directories) {
      let values: DirectoryValue[];
      try {
        const answer = await searchByMail(address, mail, query);
        if (answer.limited)
          this.note(address.url, d, `${answer.entries} entries or more: only these were read`);
        values = answer.values;
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        failures.push(`${address.url}: ${why}`);
        this.note(address.url, d, why);
        continue;
      }
      const candidates = this.certificatesOf(values);
      for (const p of candidates.problems) this.note(address.url, d, p);
      const chosen = await this.choose(address.url, d, candidates.certificates, at);
      if (chosen.certificate)
        return { status: 'found', certificate: chosen.certificate, source: this.name };
      // A certificate that cannot be checked now (hard-fail, responder down) is not "none".
      if (chosen.unverified) failures.push(`${address.url}: ${chosen.unverified}`);
    }
    return failures.length > 0
      ? { status: 'temporary-failure', reason: `LDAP: ${failures.join('; ')}` }
      : { status: 'not-found' };
  }

  /** Every certificate in the values, each once; what does not parse is a problem, not an error. */
  private certificatesOf(values: readonly DirectoryValue[]): Candidates {
    const certificates: CertificateInfo[] = [];
    const problems: string[] = [];
    const add = (c: CertificateInfo) => {
      if (certificates.some((k) => k.fingerprint === c.fingerprint)) return;
      if (certificates.length === MAX_CERTIFICATES) {
        const tooMany = `more than ${MAX_CERTIFICATES} certificates: the rest were not read`;
        if (!problems.includes(tooMany)) problems.push(tooMany);
        return;
      }
      certificates.push(c);
    };
    for (const { dn, attribute, value } of values) {
      try {
        if (attribute === 'userCertificate') add(loadCertificate(value));
        else {
          const found = certificatesFromCertsOnly(value, this.limits);
          for (const c of found.certificates) add(c);
          for (const s of found.skipped) problems.push(`${dn} ${attribute}: skipped ${s}`);
        }
      } catch (err) {
        problems.push(`${dn} ${attribute}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    return { certificates, problems };
  }

  private async choose(
    url: string,
    domain: string,
    certificates: readonly CertificateInfo[],
    at: Date,
  ): Promise<{ certificate?: CertificateInfo; unverified?: string }> {
    const ranked = rankEncryptionCertificates(certificates, domain, at);
    let unverified: string | undefined;
    for (const c of ranked) {
      if (!this.options.validator) return { certificate: c };
      const verdict = await this.options.validator.validate(c, certificates, at);
      if (verdict.trusted) return { certificate: c };
      const why = `${describeName(c, 'subject')}: not trusted: ${verdict.reason}`;
      if (verdict.temporary) unverified ??= why;
      this.note(url, domain, why);
    }
    const unusable = certificates.filter((c) => !ranked.includes(c));
    for (const c of unusable.slice(0, NOTED_UNUSABLE)) {
      const why =
        domainMatch(c, domain) === 0 ? `does not name ${domain}` : encryptionProblem(c, at);
      this.note(url, domain, `${describeName(c, 'subject')}: not usable: ${why}`);
    }
    if (unusable.length > NOTED_UNUSABLE)
      this.note(url, domain, `${unusable.length - NOTED_UNUSABLE} more certificates not usable`);
    return unverified ? { unverified } : {};
  }

  private note(directory: string, domain: string, message: string): void {
    this.options.onNote?.({ directory, domain, message });
  }
}
