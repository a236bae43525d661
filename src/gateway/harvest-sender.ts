/** Certificates of partners, taken from their verified mail. */

import { harvest } from '../pki/harvest.js';
import type { TransformReport } from '../smime/types.js';
import type { GatewayDeps } from './deps.js';

/** Keeps the sender domain's encryption certificate for our outbound mail to it. */
export async function harvestSenderCertificate(
  deps: Pick<GatewayDeps, 'harvested' | 'pki' | 'log'>,
  domain: string | undefined,
  report: TransformReport,
): Promise<void> {
  if (!domain || !deps.harvested) return;
  try {
    const found = await harvest(report, domain, deps.pki.validator);
    if (found) {
      await deps.harvested.store(domain, found.certificate, found.capabilities, new Date());
      deps.log.info(
        { domain, certificate: found.certificate.fingerprint },
        'partner certificate harvested',
      );
    }
  } catch (err) {
    // Harvesting is a bonus: it never fails the message.
    deps.log.warn({ domain, err: String(err) }, 'certificate harvesting failed');
  }
}
