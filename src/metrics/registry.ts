/**
 * The one source of metric names (prefix domsec_). Labels take values from
 * small fixed sets only: never addresses, message ids or certificate names,
 * except `domain` for our own (configured) domains.
 */

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly messages: Counter<'direction' | 'action' | 'outcome'>;
  readonly messageSeconds: Histogram<'direction'>;
  readonly milterConnections: Gauge;
  readonly milterErrors: Counter<'kind'>;
  readonly signatureResults: Counter<'result'>;
  readonly decryptFailures: Counter<'reason'>;
  readonly certificateLookups: Counter<'source' | 'result'>;
  readonly cacheRequests: Counter<'cache' | 'result'>;
  readonly revocationChecks: Counter<'method' | 'result'>;
  readonly certificateExpiry: Gauge<'domain' | 'usage'>;
  readonly redisUp: SetOnlyGauge;
}

/** A gauge Prometheus sees only once it is set: absent, rather than 0, until then. */
export interface SetOnlyGauge {
  set(value: number): void;
}

// prom-client exports an unlabelled gauge as 0 from the start, which for
// domsec_redis_up would read "Redis down" on every process without Redis.
function registeredOnFirstSet(registry: Registry, name: string, help: string): SetOnlyGauge {
  const gauge = new Gauge({ name, help, registers: [] });
  return {
    set(value) {
      if (!registry.getSingleMetric(name)) registry.registerMetric(gauge);
      gauge.set(value);
    },
  };
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'domsec_process_' });
  const r = { registers: [registry] };
  return {
    registry,
    messages: new Counter({
      ...r,
      name: 'domsec_messages_total',
      help: 'Messages handled, by direction (outbound, inbound, pass), action taken and outcome.',
      labelNames: ['direction', 'action', 'outcome'],
    }),
    messageSeconds: new Histogram({
      ...r,
      name: 'domsec_message_seconds',
      help: 'Time from end of message to the final reply, by direction.',
      labelNames: ['direction'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    }),
    milterConnections: new Gauge({
      ...r,
      name: 'domsec_milter_connections',
      help: 'Open MTA connections.',
    }),
    milterErrors: new Counter({
      ...r,
      name: 'domsec_milter_errors_total',
      help: 'Milter protocol errors, handler failures and timeouts.',
      labelNames: ['kind'],
    }),
    signatureResults: new Counter({
      ...r,
      name: 'domsec_signature_results_total',
      help: 'Inbound signature verification results (pass, fail, untrusted, ...).',
      labelNames: ['result'],
    }),
    decryptFailures: new Counter({
      ...r,
      name: 'domsec_decrypt_failures_total',
      help: 'Inbound messages that could not be decrypted, by reason.',
      labelNames: ['reason'],
    }),
    certificateLookups: new Counter({
      ...r,
      name: 'domsec_certificate_lookups_total',
      help: 'Partner certificate lookups by source and result.',
      labelNames: ['source', 'result'],
    }),
    cacheRequests: new Counter({
      ...r,
      name: 'domsec_cache_requests_total',
      help: 'Cache requests by cache and result (hit, miss, error).',
      labelNames: ['cache', 'result'],
    }),
    revocationChecks: new Counter({
      ...r,
      name: 'domsec_revocation_checks_total',
      help: 'Revocation checks by method (ocsp, crl) and result (good, revoked, unknown, error).',
      labelNames: ['method', 'result'],
    }),
    certificateExpiry: new Gauge({
      ...r,
      name: 'domsec_certificate_expiry_seconds',
      help: 'Seconds until our own certificates expire, by domain and usage.',
      labelNames: ['domain', 'usage'],
    }),
    redisUp: registeredOnFirstSet(
      registry,
      'domsec_redis_up',
      '1 when the Redis cache is reachable, 0 when not, absent without Redis.',
    ),
  };
}
