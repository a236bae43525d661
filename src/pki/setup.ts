/**
 * The PKI a running gateway (or the transform command) needs, built from
 * configuration: trust anchors and intermediates, the path validator with
 * revocation, and the partner certificate sources in their configured order,
 * the slow ones (LDAP, DNS) behind the cache.
 */

import type { Cache } from '../cache/cache.js';
import type { CertificateInfo } from '../cms/certificate.js';
import type { Config } from '../config.js';
import { CachedSource } from './cached-source.js';
import { crlFetcher } from './crl-fetch.js';
import { DnsClient, type DnsClientOptions, type DnsResolver } from './dns-client.js';
import { adBitTrust, parseServerAddress, systemResolver } from './dns-server-address.js';
import type { HarvestedCertificates } from './harvest.js';
import { httpFetch } from './http-fetch.js';
import type { DomainIdentity } from './identities.js';
import { LdapCertificateSource } from './ldap-source.js';
import {
  type CertificateSource,
  type CertificateVetting,
  type LookupObserver,
  PartnerCertificates,
} from './partners.js';
import { PathValidator } from './path-validator.js';
import { RevocationChecker, type RevocationObserver } from './revocation/checker.js';
import { CrlStore } from './revocation/crl-store.js';
import { SmimeaCertificateSource } from './smimea-source.js';
import { loadPemCertificates, StaticCertificateDirectory } from './static-directory.js';

export type PkiSettings = Pick<
  Config,
  | 'partnerCerts'
  | 'trustAnchors'
  | 'intermediateCerts'
  | 'partnerSources'
  | 'ldapUrls'
  | 'dnsResolver'
  | 'dnsValidatingResolver'
  | 'smimeaRequireDnssec'
  | 'lookupTimeoutMs'
  | 'revocation'
  | 'revocationPolicy'
  | 'cacheMaxTtlSeconds'
  | 'cacheNegativeTtlSeconds'
>;

export interface PkiServices {
  readonly cache: Cache;
  readonly harvested?: HarvestedCertificates;
  readonly observeLookup?: LookupObserver;
  readonly observeRevocation?: RevocationObserver;
  /** Told what a source skipped or why a directory failed (for the log). */
  readonly note?: (message: string, detail: Record<string, unknown>) => void;
  /** Told, once at start, of settings that leave a source partly unusable (for the log). */
  readonly warn?: (message: string, detail: Record<string, unknown>) => void;
  /**
   * The SMIMEA resolver's client, from the options made of the configured
   * address (default: a DnsClient sending to it). A test sends the packets
   * elsewhere; trust in the AD bit is still decided by the configured address.
   */
  readonly dnsClient?: (options: DnsClientOptions) => DnsResolver;
}

export interface Pki {
  readonly partners: PartnerCertificates;
  readonly anchors: readonly CertificateInfo[];
  readonly intermediates: readonly CertificateInfo[];
  readonly validator: PathValidator;
  readonly revocation: RevocationChecker;
  readonly crls: CrlStore;
  /** The sources in the order they are asked. */
  readonly sources: readonly CertificateSource[];
}

const CRL_MAX_BYTES = 64 * 1024 * 1024;

/**
 * Certificates from LDAP, DNS, harvested mail or imported into the shared
 * cache are used only while they validate, revocation included, at the time
 * of use: whoever can write to Redis must not be able to choose whose key we
 * encrypt to. The static directory (files on the milter host) is the
 * administrator's explicit choice and is taken as it is.
 */
function vetting(validator: PathValidator): CertificateVetting {
  return async (found, at) => {
    if (found.source === 'directory') return undefined;
    const verdict = await validator.validate(found.certificate, [], at);
    if (verdict.trusted) return undefined;
    return { reason: verdict.reason ?? 'not trusted', temporary: verdict.temporary === true };
  };
}

export async function loadPki(settings: PkiSettings, services: PkiServices): Promise<Pki> {
  const anchors = settings.trustAnchors ? await loadPemCertificates(settings.trustAnchors) : [];
  const intermediates = settings.intermediateCerts
    ? await loadPemCertificates(settings.intermediateCerts)
    : [];
  const timeoutMs = settings.lookupTimeoutMs;
  const crls = new CrlStore({
    fetch: crlFetcher({ timeoutMs, maxBytes: CRL_MAX_BYTES }),
    maxAgeMs: settings.cacheMaxTtlSeconds * 1000,
  });
  const revocation = new RevocationChecker({
    methods: settings.revocation,
    cache: services.cache,
    crls,
    fetch: httpFetch,
    timeoutMs,
    maxTtlSeconds: settings.cacheMaxTtlSeconds,
    negativeTtlSeconds: settings.cacheNegativeTtlSeconds,
    ...(services.observeRevocation ? { observe: services.observeRevocation } : {}),
  });
  const validator = new PathValidator({
    anchors,
    intermediates,
    revocation,
    policy: settings.revocationPolicy,
  });
  const cached = (source: CertificateSource) =>
    new CachedSource(source, services.cache, {
      maxTtlSeconds: settings.cacheMaxTtlSeconds,
      negativeTtlSeconds: settings.cacheNegativeTtlSeconds,
    });
  const note = services.note ?? (() => {});
  const warn = services.warn ?? note;

  const sources: CertificateSource[] = [];
  for (const name of settings.partnerSources) {
    if (name === 'directory' && settings.partnerCerts) {
      sources.push(await StaticCertificateDirectory.load(settings.partnerCerts));
    } else if (name === 'ldap' && settings.ldapUrls.length > 0) {
      const ldap = new LdapCertificateSource(settings.ldapUrls, {
        timeoutMs,
        connectTimeoutMs: timeoutMs,
        validator,
        onNote: (n) =>
          note(n.message, { source: 'ldap', directory: n.directory, domain: n.domain }),
      });
      sources.push(cached(ldap));
    } else if (name === 'smimea') {
      const server = settings.dnsResolver ?? (await systemResolver());
      if (!server) {
        note(
          'SMIMEA look-ups disabled: DOMSEC_DNS_RESOLVER unset and no nameserver in /etc/resolv.conf',
          {
            source: 'smimea',
          },
        );
        continue;
      }
      const options = { server, timeoutMs: Math.min(timeoutMs, 2000), attempts: 2 };
      const dns = services.dnsClient ? services.dnsClient(options) : new DnsClient(options);
      const address = parseServerAddress(server);
      const validating = settings.dnsValidatingResolver;
      if (settings.smimeaRequireDnssec && adBitTrust(address, validating) === 'refused') {
        const from = settings.dnsResolver ? '' : ' (first nameserver of /etc/resolv.conf)';
        warn(
          `SMIMEA: resolver ${server}${from} is not on loopback and DOMSEC_DNS_VALIDATING_RESOLVER is not set: DANE usages need DNSSEC and are refused`,
          { source: 'smimea', resolver: server },
        );
      }
      const smimea = new SmimeaCertificateSource(dns, validator, {
        requireDnssec: settings.smimeaRequireDnssec,
        resolver: { address, validating },
        onSkip: (domain, reason) => note(reason, { source: 'smimea', domain }),
      });
      sources.push(cached(smimea));
    } else if (name === 'harvested' && services.harvested) {
      sources.push(services.harvested);
    }
  }
  return {
    partners: new PartnerCertificates(sources, services.observeLookup, vetting(validator)),
    anchors,
    intermediates,
    validator,
    revocation,
    crls,
    sources,
  };
}

/** Every key of every local domain: inbound mail may be encrypted to any of them. */
export function allDecryptionKeys(identities: ReadonlyMap<string, DomainIdentity>) {
  return [...identities.values()].flatMap((id) => id.decryptionKeys);
}
