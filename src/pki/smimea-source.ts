/**
 * Partner encryption certificates from DNS SMIMEA records (RFC 8162),
 * published for `domain-confidentiality-authority@D`. Only records that
 * carry a whole certificate (selector 0, matching type 0) can give a key to
 * encrypt to; hash-only records are ignored.
 *
 *   usage 3 DANE-EE  the certificate is pinned by DNS: taken as it is
 *   usage 1 PKIX-EE  the certificate must also pass our PKIX validation, or
 *                    chain to a DANE-TA certificate of the same RRset
 *   usage 2 DANE-TA  a trust anchor for usage 1 certificates of the same RRset
 *   usage 0 PKIX-TA  a CA certificate: offered to path building only
 *
 * DANE usages (2, 3) replace PKIX trust with DNS trust, so by default they
 * count only when the resolver vouches for the answer with the AD bit
 * (DNSSEC-validated: RFC 8162 needs DNSSEC). The bit is not signed: it is
 * believed only from a resolver on loopback or one the administrator
 * declared validating on a trusted path (`adBitTrust`); from any other,
 * DANE-EE records and DANE-TA anchors are refused, and PKIX-EE records
 * count only through our own anchors. Whatever the usage, the certificate
 * must name the domain and be fit for encryption now.
 */

import { type CertificateInfo, loadCertificate } from '../cms/certificate.js';
import type { CertificateValidator } from '../cms/verify.js';
import { AnchorValidator } from './anchor-validator.js';
import type { DnsAnswer, DnsResolver } from './dns-client.js';
import {
  type AdBitTrust,
  adBitTrust,
  type DnsServerAddress,
  formatServerAddress,
} from './dns-server-address.js';
import { DNS_TYPE, DnsQueryError } from './dns-wire.js';
import type { CertificateSource, LookupResult } from './partners.js';
import {
  DOMAIN_ENCRYPTION_LOCAL_PART,
  parseSmimeaRdata,
  SMIMEA_MATCHING,
  SMIMEA_SELECTOR,
  SMIMEA_USAGE,
  smimeaOwnerName,
  smimeaQueryDomain,
} from './smimea-record.js';
import { domainMatch, encryptionProblem } from './static-directory.js';

export interface SmimeaSourceOptions {
  /**
   * Accept DANE-EE and DANE-TA records only from a DNSSEC-validated answer
   * (the resolver's AD bit). Default true; switch off only for tests or a
   * zone you control end to end.
   */
  readonly requireDnssec?: boolean;
  /**
   * The resolver as configured, whose AD bit counts only when it is on
   * loopback or declared `validating` (DOMSEC_DNS_VALIDATING_RESOLVER).
   * The address decides, not where `dns` sends its packets (a test points
   * those elsewhere). Absent: the AD bit is never believed.
   */
  readonly resolver?: { readonly address: DnsServerAddress; readonly validating?: boolean };
  /** Told why a record or domain gave no certificate (for logs). */
  readonly onSkip?: (domain: string, reason: string) => void;
}

interface Published {
  readonly usage: number;
  readonly certificate: CertificateInfo;
}

export class SmimeaCertificateSource implements CertificateSource {
  readonly name = 'smimea';
  private readonly requireDnssec: boolean;
  /** Why an AD bit is not believed, when it is not. */
  private readonly adDistrust: string | undefined;
  private readonly onSkip: (domain: string, reason: string) => void;

  constructor(
    private readonly dns: DnsResolver,
    private readonly validator: CertificateValidator,
    options: SmimeaSourceOptions = {},
  ) {
    this.requireDnssec = options.requireDnssec ?? true;
    const r = options.resolver;
    const trust: AdBitTrust = r ? adBitTrust(r.address, r.validating ?? false) : 'refused';
    this.adDistrust =
      trust !== 'refused'
        ? undefined
        : r
          ? `resolver ${formatServerAddress(r.address)} is not on loopback nor declared validating`
          : 'no resolver named whose AD bit to believe';
    this.onSkip = options.onSkip ?? (() => {});
  }

  async lookup(domain: string, at: Date = new Date()): Promise<LookupResult> {
    const queryDomain = smimeaQueryDomain(domain.toLowerCase());
    if (!queryDomain) {
      this.onSkip(domain, 'not a DNS domain name: not queried');
      return { status: 'not-found' };
    }
    const owner = smimeaOwnerName(DOMAIN_ENCRYPTION_LOCAL_PART, queryDomain);
    let answer: DnsAnswer;
    try {
      answer = await this.dns.query(owner, DNS_TYPE.SMIMEA);
    } catch (err) {
      if (!(err instanceof DnsQueryError)) throw err;
      this.onSkip(domain, err.message);
      return { status: 'not-found' };
    }
    if (answer.status === 'temporary-failure')
      return { status: 'temporary-failure', reason: `smimea: ${answer.reason}` };
    if (answer.status === 'not-found') return { status: 'not-found' };

    const published = this.certificates(
      domain,
      answer.records.map((r) => r.data),
    );
    // Why DANE usages do not count in this answer, if they do not.
    const notDnssec = !this.requireDnssec
      ? undefined
      : !answer.authenticated
        ? 'in an answer not validated with DNSSEC'
        : this.adDistrust
          ? `in an answer marked validated (AD) by a resolver not believed: ${this.adDistrust}`
          : undefined;
    const pool = published.map((p) => p.certificate);
    const daneTa = published.filter((p) => p.usage === SMIMEA_USAGE.DANE_TA);
    if (notDnssec && daneTa.length > 0) this.onSkip(domain, `DANE-TA record ${notDnssec}`);
    const daneAnchors = notDnssec ? [] : daneTa.map((p) => p.certificate);
    const usable: CertificateInfo[] = [];
    let unverified: string | undefined;
    for (const p of published) {
      if (p.usage !== SMIMEA_USAGE.DANE_EE && p.usage !== SMIMEA_USAGE.PKIX_EE) continue; // CAs
      // The cheap checks first: PKIX validation may fetch revocation data.
      const problem =
        usabilityProblem(p.certificate, domain, queryDomain, at) ??
        (p.usage === SMIMEA_USAGE.DANE_EE
          ? notDnssec && `DANE-EE record ${notDnssec}`
          : await this.untrusted(p.certificate, pool, daneAnchors, at));
      if (typeof problem === 'object') {
        unverified ??= problem.temporary;
        this.onSkip(domain, problem.temporary);
      } else if (problem) this.onSkip(domain, problem);
      else usable.push(p.certificate);
    }
    const best = usable.sort(
      (a, b) =>
        score(b, domain, queryDomain) - score(a, domain, queryDomain) ||
        b.notAfter.getTime() - a.notAfter.getTime(),
    )[0];
    if (best) return { status: 'found', certificate: best, source: this.name };
    // A certificate that cannot be checked now (hard-fail, responder down) is not "none".
    return unverified
      ? { status: 'temporary-failure', reason: `smimea: ${unverified}` }
      : { status: 'not-found' };
  }

  /** Records carrying a whole certificate that parses; the others are skipped with a reason. */
  private certificates(domain: string, rdatas: readonly Buffer[]): Published[] {
    const out: Published[] = [];
    for (const rdata of rdatas) {
      const r = parseSmimeaRdata(rdata);
      if (!r) {
        this.onSkip(domain, `record of ${rdata.length} octets is too short`);
        continue;
      }
      const kind = `usage ${r.usage} selector ${r.selector} matching type ${r.matchingType}`;
      if (r.usage > SMIMEA_USAGE.DANE_EE) {
        this.onSkip(domain, `${kind}: unknown usage`);
        continue;
      }
      if (
        r.selector !== SMIMEA_SELECTOR.FULL_CERTIFICATE ||
        r.matchingType !== SMIMEA_MATCHING.FULL
      ) {
        this.onSkip(domain, `${kind}: carries no certificate to encrypt to`);
        continue;
      }
      try {
        out.push({ usage: r.usage, certificate: loadCertificate(r.data) });
      } catch (err) {
        this.onSkip(domain, `${kind}: not a certificate (${(err as Error).message})`);
      }
    }
    return out;
  }

  /**
   * Why a PKIX-EE certificate is not trusted, or undefined when it is; as
   * `{ temporary }` when it may be trusted once its status can be learnt.
   */
  private async untrusted(
    certificate: CertificateInfo,
    pool: readonly CertificateInfo[],
    daneAnchors: readonly CertificateInfo[],
    at: Date,
  ): Promise<string | { temporary: string } | undefined> {
    const pkix = await this.validator.validate(certificate, pool, at);
    if (pkix.trusted) return undefined;
    let reason = pkix.reason ?? 'untrusted';
    if (daneAnchors.length > 0) {
      const dane = await new AnchorValidator(daneAnchors).validate(certificate, pool, at);
      if (dane.trusted) return undefined;
      reason += `; DANE-TA: ${dane.reason ?? 'untrusted'}`;
    }
    const why = `PKIX-EE certificate not trusted: ${reason}`;
    return pkix.temporary ? { temporary: why } : why;
  }
}

function score(cert: CertificateInfo, domain: string, queryDomain: string): number {
  return Math.max(domainMatch(cert, domain), domainMatch(cert, queryDomain));
}

function usabilityProblem(
  cert: CertificateInfo,
  domain: string,
  queryDomain: string,
  at: Date,
): string | undefined {
  if (score(cert, domain, queryDomain) === 0)
    return `certificate ${cert.fingerprint.slice(0, 16)} does not name ${domain}`;
  const problem = encryptionProblem(cert, at);
  return problem ? `certificate ${cert.fingerprint.slice(0, 16)}: ${problem}` : undefined;
}
