/**
 * Composition root of `domsec-milter serve`: wires config, logger and the
 * milter application together, and drains on SIGTERM.
 */

import { MilterServer } from '../protocol/index.js';
import { formatListenSpec } from '../protocol/listen.js';
import type { Config } from './config.js';
import { passThroughApplication } from './gateway/passthrough.js';
import type { Logger } from './log.js';
import { loadOrCreateIdentities } from './pki/dev-identity.js';
import type { DomainIdentity } from './pki/identities.js';

export interface RunningService {
  readonly milter: MilterServer;
  readonly identities: ReadonlyMap<string, DomainIdentity>;
  /** Stops accepting, drains open messages, closes. */
  stop(): Promise<void>;
}

export async function startService(config: Config, log: Logger): Promise<RunningService> {
  const { identities, created } = await loadOrCreateIdentities(
    config.keysDir,
    config.localDomains,
    !config.keysDirExplicit,
  );
  if (created.length > 0) {
    log.warn(
      { domains: created, dir: config.keysDir },
      'no domain key configured: created a development identity (not for production; set DOMSEC_KEYS_DIR)',
    );
  }
  for (const domain of config.localDomains) {
    if (!identities.has(domain))
      log.warn({ domain, dir: config.keysDir }, 'no key for local domain');
  }
  const milter = new MilterServer(passThroughApplication(), {
    logger: log,
    maxConnections: config.maxConnections,
  });
  const bound = await milter.listen(config.listen);
  log.info({ listen: formatListenSpec(bound), domains: config.localDomains }, 'milter listening');
  return {
    milter,
    identities,
    async stop() {
      log.info({ open: milter.connectionCount }, 'draining milter connections');
      await milter.close(config.drainTimeoutMs);
      log.info('milter stopped');
    },
  };
}
