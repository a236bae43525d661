/**
 * "Which certificate encrypts to domain D": sources tried in order, first
 * usable answer wins. A source that fails temporarily does not stop the
 * search, but if nothing is found the failure is reported as temporary (the
 * gateway then answers 4xx instead of 5xx).
 */

import type { CertificateInfo } from '../cms/certificate.js';

export type LookupResult =
  | {
      readonly status: 'found';
      readonly certificate: CertificateInfo;
      readonly source: string;
      /** SMIMECapabilities known for the partner (e.g. harvested from its signed mail). */
      readonly capabilities?: readonly string[];
    }
  | { readonly status: 'not-found' }
  | { readonly status: 'temporary-failure'; readonly reason: string };

export interface CertificateSource {
  readonly name: string;
  lookup(domain: string, at: Date): Promise<LookupResult>;
}

export type LookupObserver = (source: string, result: LookupResult['status']) => void;

/**
 * A last check of a certificate a source found, at the time of use (its
 * revocation status may have changed since it was cached): undefined to use
 * it, or why not. `temporary` makes the whole look-up a temporary failure.
 */
export type CertificateVetting = (
  found: Extract<LookupResult, { status: 'found' }>,
  at: Date,
) => Promise<{ readonly reason: string; readonly temporary: boolean } | undefined>;

export class PartnerCertificates {
  constructor(
    private readonly sources: readonly CertificateSource[],
    private readonly observe: LookupObserver = () => {},
    private readonly vet?: CertificateVetting,
  ) {}

  async lookup(domain: string, at: Date = new Date()): Promise<LookupResult> {
    let failure: string | undefined;
    for (const source of this.sources) {
      let r: LookupResult;
      try {
        r = await source.lookup(domain.toLowerCase(), at);
      } catch (err) {
        r = {
          status: 'temporary-failure',
          reason: `${source.name}: ${err instanceof Error ? err.message : String(err)}`,
        };
      }
      if (r.status === 'found' && this.vet) {
        const refusal = await this.vet(r, at);
        if (refusal) {
          r = refusal.temporary
            ? { status: 'temporary-failure', reason: `${source.name}: ${refusal.reason}` }
            : { status: 'not-found' };
        }
      }
      this.observe(source.name, r.status);
      if (r.status === 'found') return r;
      if (r.status === 'temporary-failure') failure ??= r.reason;
    }
    return failure ? { status: 'temporary-failure', reason: failure } : { status: 'not-found' };
  }
}
