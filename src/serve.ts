/**
 * Composition root of `domsec-milter serve`: wires config, logger and the
 * milter application together, and drains on SIGTERM.
 */

import { MilterServer } from '../protocol/index.js';
import { formatListenSpec } from '../protocol/listen.js';
import type { Config } from './config.js';
import { passThroughApplication } from './gateway/passthrough.js';
import type { Logger } from './log.js';

export interface RunningService {
  readonly milter: MilterServer;
  /** Stops accepting, drains open messages, closes. */
  stop(): Promise<void>;
}

export async function startService(config: Config, log: Logger): Promise<RunningService> {
  const milter = new MilterServer(passThroughApplication(), {
    logger: log,
    maxConnections: config.maxConnections,
  });
  const bound = await milter.listen(config.listen);
  log.info({ listen: formatListenSpec(bound), domains: config.localDomains }, 'milter listening');
  return {
    milter,
    async stop() {
      log.info({ open: milter.connectionCount }, 'draining milter connections');
      await milter.close(config.drainTimeoutMs);
      log.info('milter stopped');
    },
  };
}
