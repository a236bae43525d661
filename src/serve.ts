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
import { InboundWorker } from './smime/inbound-offload.js';
import { OFFLOAD_BYTES } from './smime/offload.js';
import { OutboundWorker } from './smime/outbound-offload.js';

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

export interface StartOptions {
  /**
   * `serve --dev` (npm start): local domains without a key get a development
   * identity under the default keys directory. Never otherwise: a production
   * host whose key went missing must not sign real mail with a new key.
   */
  readonly developmentIdentity?: boolean;
}

export async function startService(
  config: Config,
  log: Logger,
  opts: StartOptions = {},
): Promise<RunningService> {
  const dev = opts.developmentIdentity === true;
  const noKey = (domains: readonly string[]) =>
    new Error(
      `no key for ${domains.join(', ')} in ${config.keysDir}: put <domain>.key.pem and <domain>.crt.pem (or <domain>.p12) there for each local domain, or run \`serve --dev\` for a development identity`,
    );
  const { identities, created } = await loadOrCreateIdentities(
    config.keysDir,
    config.localDomains,
    dev && !config.keysDirExplicit,
    { passphrase: config.keysPassphrase },
  ).catch((err: NodeJS.ErrnoException) => {
    // No keys directory at all: the same one line as a directory without the keys.
    if (!dev && err.message.endsWith('ENOENT')) throw noKey(config.localDomains);
    throw err;
  });
  if (created.length > 0) {
    log.warn(
      { domains: created, dir: config.keysDir },
      'no domain key configured: created a development identity (not for production; set DOMSEC_KEYS_DIR)',
    );
  }
  const keyless = config.localDomains.filter((d) => !identities.has(d));
  if (keyless.length > 0 && !dev) throw noKey(keyless);
  for (const domain of keyless)
    log.warn({ domain, dir: config.keysDir }, 'no key for local domain');
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
    warn: (message, detail) => log.warn(detail, message),
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
  // Small S/MIME messages have a worker of their own: they do not queue behind large ones.
  const inboundWorkers = { large: new InboundWorker(), small: new InboundWorker() };
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
            transformInbound: (message, context) =>
              inboundWorkers[message.length >= OFFLOAD_BYTES ? 'large' : 'small'].transform(
                message,
                context,
              ),
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
      await Promise.all([
        outboundWorker.close(),
        inboundWorkers.large.close(),
        inboundWorkers.small.close(),
      ]);
      await http.close();
      await cache.close();
      log.info('milter stopped');
    },
  };
}
