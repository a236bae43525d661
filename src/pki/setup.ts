/** The PKI pieces a running gateway (or the transform command) needs, from configuration. */

import type { CertificateInfo } from '../cms/certificate.js';
import type { CertificateValidator } from '../cms/verify.js';
import { AnchorValidator } from './anchor-validator.js';
import type { DomainIdentity } from './identities.js';
import { type CertificateSource, type LookupObserver, PartnerCertificates } from './partners.js';
import { loadPemCertificates, StaticCertificateDirectory } from './static-directory.js';

export interface PkiSettings {
  readonly partnerCerts: string | undefined;
  readonly trustAnchors: string | undefined;
}

export interface Pki {
  readonly partners: PartnerCertificates;
  readonly anchors: readonly CertificateInfo[];
  readonly validator: CertificateValidator;
}

/** `extra` sources are asked after the static directory (e.g. harvested certificates). */
export async function loadPki(
  settings: PkiSettings,
  observe?: LookupObserver,
  extra: readonly CertificateSource[] = [],
): Promise<Pki> {
  const sources: CertificateSource[] = [];
  if (settings.partnerCerts)
    sources.push(await StaticCertificateDirectory.load(settings.partnerCerts));
  sources.push(...extra);
  const anchors = settings.trustAnchors ? await loadPemCertificates(settings.trustAnchors) : [];
  return {
    partners: new PartnerCertificates(sources, observe),
    anchors,
    validator: new AnchorValidator(anchors),
  };
}

/** Every key of every local domain: inbound mail may be encrypted to any of them. */
export function allDecryptionKeys(identities: ReadonlyMap<string, DomainIdentity>) {
  return [...identities.values()].flatMap((id) => id.decryptionKeys);
}
