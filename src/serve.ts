/**
 * Composition root of `domsec-milter serve`: wires config, logger, identities,
 * metrics, the HTTP endpoint and the milter application together, and drains
 * on SIGTERM.
 */

import { MilterServer } from '../protocol/index.js';
import { formatListenSpec } from '../protocol/listen.js';
import { createCache } from './cache/setup.js';
import type { Config } from './config.js';
import { gatewayApplication } from './gateway/application.js';
import { passThroughApplication } from './gateway/passthrough.js';
import { gatewayPolicyFrom } from './gateway/policy-from-config.js';
import type { Logger } from './log.js';
import { type HttpEndpoint, startHttpEndpoint } from './metrics/http.js';
import { createMetrics, type Metrics } from './metrics/registry.js';
import { loadOrCreateIdentities } from './pki/dev-identity.js';
import { HarvestedCertificates } from './pki/harvest.js';
import type { DomainIdentity } from './pki/identities.js';
import { loadPki } from './pki/setup.js';
import { OFFLOAD_BYTES, OutboundWorker } from './smime/outbound-offload.js';

export interface RunningService {
  readonly milter: MilterServer;
  readonly http: HttpEndpoint;
  readonly metrics: Metrics;
  readonly identities: ReadonlyMap<string, DomainIdentity>;
  /** Stops accepting, drains open messages, closes. */
  stop(): Promise<void>;
}

const EXPIRY_WARNING_DAYS = 30;

function watchExpiry(
  identities: ReadonlyMap<string, DomainIdentity>,
  metrics: Metrics,
  log: Logger,
): NodeJS.Timeout {
  const warned = new Set<string>();
  const update = () => {
    const now = Date.now();
    for (const [domain, id] of identities) {
      for (const key of id.keys) {
        const left = (key.certificate.notAfter.getTime() - now) / 1000;
        metrics.certificateExpiry.set({ domain, usage: key.label }, Math.round(left));
        const tag = `${domain}/${key.label}`;
        if (left < EXPIRY_WARNING_DAYS * 86_400 && !warned.has(tag)) {
          warned.add(tag);
          log.warn(
            { domain, key: key.label, notAfter: key.certificate.notAfter },
            'certificate expires within 30 days',
          );
        }
      }
    }
  };
  update();
  const timer = setInterval(update, 60_000);
  timer.unref();
  return timer;
}

export async function startService(config: Config, log: Logger): Promise<RunningService> {
  const { identities, created } = await loadOrCreateIdentities(
    config.keysDir,
    config.localDomains,
    !config.keysDirExplicit,
    { passphrase: config.keysPassphrase },
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
  const metrics = createMetrics();
  const expiryTimer = watchExpiry(identities, metrics, log);
  const observe = (cache: 'memory' | 'redis', result: 'hit' | 'miss' | 'error') =>
    metrics.cacheRequests.inc({ cache, result });
  const cache = createCache(config, {
    observe,
    onRedisState: (up) => metrics.redisUp.set(up ? 1 : 0),
    warn: (message, detail) => log.warn(detail, message),
  });
  const harvested = new HarvestedCertificates(cache);
  const pki = await loadPki(config, {
    cache,
    harvested,
    observeLookup: (source, result) => metrics.certificateLookups.inc({ source, result }),
    observeRevocation: (method, result) => metrics.revocationChecks.inc({ method, result }),
    note: (message, detail) => log.debug(detail, message),
  });
  log.info(
    {
      sources: pki.sources.map((s) => s.name),
      anchors: pki.anchors.length,
      intermediates: pki.intermediates.length,
      revocation: config.revocation.length > 0 ? config.revocation : 'off',
      policy: config.revocationPolicy,
    },
    'certificate sources ready',
  );
  const outboundWorker = new OutboundWorker();
  const app =
    config.mode === 'pass-through'
      ? passThroughApplication()
      : gatewayApplication({
          ...gatewayPolicyFrom(config),
          identities,
          pki,
          harvested,
          log,
          offload: {
            minBytes: OFFLOAD_BYTES,
            transform: (message, context) => outboundWorker.transform(message, context),
          },
          onMessage: (m) => {
            metrics.messages.inc({ direction: m.direction, action: m.action, outcome: m.outcome });
            metrics.messageSeconds.observe({ direction: m.direction }, m.seconds);
            if (m.smime) metrics.signatureResults.inc({ result: m.smime });
            if (m.decryptFailure) metrics.decryptFailures.inc({ reason: m.decryptFailure });
          },
        });
  const milter = new MilterServer(app, {
    logger: log,
    maxConnections: config.maxConnections,
    onConnectionCount: (n) => metrics.milterConnections.set(n),
    onFailure: (kind) => metrics.milterErrors.inc({ kind }),
  });
  const bound = await milter.listen(config.listen);
  const http = await startHttpEndpoint(
    config.httpListen.host,
    config.httpListen.port,
    metrics.registry,
    {
      problems: () =>
        config.localDomains.filter((d) => !identities.has(d)).map((d) => `no key for ${d}`),
    },
  );
  log.info(
    {
      listen: formatListenSpec(bound),
      http: `${config.httpListen.host}:${http.port}`,
      domains: config.localDomains,
    },
    'milter listening',
  );
  return {
    milter,
    http,
    metrics,
    identities,
    async stop() {
      clearInterval(expiryTimer);
      log.info({ open: milter.connectionCount }, 'draining milter connections');
      await milter.close(config.drainTimeoutMs);
      await outboundWorker.close();
      await http.close();
      await cache.close();
      log.info('milter stopped');
    },
  };
}
