/**
 * The dashboard against reality: a private Prometheus scrapes two running
 * milters (example.org signing and encrypting outbound, example.net
 * decrypting and verifying inbound, with Redis and a real OCSP responder)
 * while mail flows through two Postfix instances; then every panel's PromQL
 * runs the way Grafana runs it and must return data.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  type GrafanaTime,
  interpolate,
  type PanelQuery,
  panelQueries,
  readDashboard,
  shownLabels,
} from '../helpers/grafana.js';
import { type MonitoredGateways, startMonitoredGateways } from '../helpers/monitored-gateways.js';
import { type RangeSeries, type RuleState, waitForQuery } from '../helpers/prometheus.js';
import { sendMail } from '../helpers/smtp-client.js';
import type { SinkMessage } from '../helpers/smtp-sink.js';

const ALERT_RULES = fileURLToPath(
  new URL('../../../deploy/prometheus/domsec-alerts.yml', import.meta.url),
);
const SCRAPE_SECONDS = 1;
const BODY = 'Hello Bob,\r\nthe figures are attached.\r\n';
const ROUNDS = 2;
/**
 * Per round: example.org sends two messages out; example.net takes four in
 * (the encrypted one twice, so the second finds the revocation answer in Redis).
 */
const OUTBOUND_PER_ROUND = 2;
const INBOUND_PER_ROUND = 4;

/** Panels whose metric the service does not produce yet (none). */
const NOT_WIRED_YET: string[] = [];

function message(id: string, to: string): string {
  return `From: Alice <alice@example.org>\r\nTo: <${to}>\r\nSubject: figures ${id}\r\nMessage-ID: <${id}@example.org>\r\n\r\n${BODY}`;
}

function byId(messages: SinkMessage[], id: string): SinkMessage {
  const m = messages.find((x) => x.header('message-id') === `<${id}@example.org>`);
  assert.ok(m, `message ${id} not delivered`);
  return m;
}

/** An empty milter packet: the milter counts a protocol error and closes the connection. */
function sendGarbage(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(Buffer.from([0, 0, 0, 0])));
    s.once('close', () => resolve());
    s.once('error', reject);
  });
}

describe('every Grafana panel has data from a real Prometheus scraping milters under real mail', () => {
  let g: MonitoredGateways;
  let trafficDone: number;

  before(async () => {
    g = await startMonitoredGateways({ scrapeSeconds: SCRAPE_SECONDS, ruleFiles: [ALERT_RULES] });
    await waitForQuery(
      g.prometheus,
      'count(up{job="domsec-milter"} == 1)',
      (s) => s[0]?.value === 2,
    );
    for (let n = 1; n <= ROUNDS; n++) {
      await mailRound(n);
      // Rates need a series to rise between scrapes: the next round starts
      // only once Prometheus holds every series this round created.
      const messages = n * (OUTBOUND_PER_ROUND + INBOUND_PER_ROUND);
      await waitForQuery(
        g.prometheus,
        'sum(domsec_messages_total)',
        (s) => s[0]?.value === messages,
      );
      await waitForQuery(
        g.prometheus,
        'sum(domsec_milter_errors_total)',
        (s) => s[0]?.value === 2 * n,
      );
    }
    trafficDone = Date.now();
  });

  after(() => g?.stop());

  /** Outbound through A; A's output (intact, tampered, and mail for someone else) inbound through B. */
  async function mailRound(n: number): Promise<void> {
    const sentA = await Promise.all([
      sendMail({
        port: g.postfixA.smtpPort,
        from: 'alice@example.org',
        to: ['bob@example.net'],
        data: message(`r${n}-encrypted`, 'bob@example.net'),
      }),
      sendMail({
        port: g.postfixA.smtpPort,
        from: 'alice@example.org',
        to: ['dave@example.info'],
        data: message(`r${n}-signed`, 'dave@example.info'),
      }),
    ]);
    for (const r of sentA) assert.equal(r.dataReply?.code, 250, JSON.stringify(r.replies));
    const outA = await g.sinkA.waitFor(n * OUTBOUND_PER_ROUND, 30_000);
    const encrypted = byId(outA, `r${n}-encrypted`);
    assert.match(encrypted.header('content-type') ?? '', /enveloped-data/);
    const signed = byId(outA, `r${n}-signed`);
    assert.match(signed.header('content-type') ?? '', /^multipart\/signed/);
    const tampered = Buffer.from(
      signed.data.toString('latin1').replace('figures are attached', 'figures are ATTACHED'),
      'latin1',
    );
    const foreign = Buffer.concat([
      Buffer.from(
        `From: <alice@example.org>\r\nTo: <bob@example.net>\r\nSubject: not for us\r\nMessage-ID: <r${n}-foreign@example.org>\r\n`,
      ),
      g.foreignEncrypted,
    ]);
    // One after the other: Postfix B's milter has finished a message when its DATA is answered,
    // so the second copy finds the first one's revocation answer in the cache.
    for (const data of [encrypted.data, encrypted.data, tampered, foreign]) {
      const r = await sendMail({
        port: g.postfixB.smtpPort,
        from: 'alice@example.org',
        to: ['bob@example.net'],
        data,
      });
      assert.equal(r.dataReply?.code, 250, JSON.stringify(r.replies));
    }
    const inB = await g.sinkB.waitFor(n * INBOUND_PER_ROUND, 30_000);
    const results = Object.fromEntries(
      ['encrypted', 'signed', 'foreign'].map((k) => [
        k,
        byId(inB, `r${n}-${k}`).header('authentication-results') ?? '',
      ]),
    );
    assert.match(results['encrypted']!, /smime=pass/);
    assert.match(results['signed']!, /smime=fail/);
    assert.match(results['foreign']!, /smime=permerror\s+\(encrypted content not decrypted\)/);
    await Promise.all([sendGarbage(g.milterA.port), sendGarbage(g.milterB.port)]);
  }

  /** A panel target as Grafana runs it: a range query over the test, step $__interval. */
  function runPanel(q: PanelQuery): Promise<RangeSeries[]> {
    const t: GrafanaTime = {
      scrapeIntervalSeconds: SCRAPE_SECONDS,
      intervalSeconds: SCRAPE_SECONDS,
      rangeSeconds: Math.ceil((Date.now() - g.started) / 1000) + 1,
      variables: { datasource: 'prometheus' },
    };
    const end = Date.now() / 1000;
    return g.prometheus.queryRange(
      interpolate(q.expr, t),
      end - t.rangeSeconds,
      end,
      t.intervalSeconds,
    );
  }

  test('every panel target returns data with the labels it shows', async () => {
    const queries = panelQueries(readDashboard());
    assert.ok(queries.length >= 12, `${queries.length} targets`);
    const empty: PanelQuery[] = [];
    const unlabelled: string[] = [];
    for (const q of queries) {
      const series = await runPanel(q);
      if (!series.some((s) => s.values.some(Number.isFinite))) {
        empty.push(q);
        continue;
      }
      for (const label of shownLabels(q)) {
        const bare = series.filter((s) => !s.metric[label]);
        if (bare.length > 0)
          unlabelled.push(`${q.title}: no "${label}" on ${JSON.stringify(bare[0]!.metric)}`);
      }
    }
    assert.deepEqual(unlabelled, []);
    assert.deepEqual(
      [...new Set(empty.map((q) => q.title))],
      NOT_WIRED_YET,
      `panels without data:\n${empty.map((q) => `${q.title} [${q.refId}]: ${q.expr}`).join('\n')}\n` +
        '(expected exactly NOT_WIRED_YET: remove a panel from it once its metric has data)',
    );
  });

  /** A panel's series over the test: the labels it shows, and its finite values. */
  async function panelSeries(title: string): Promise<{ labels: string; values: number[] }[]> {
    const q = panelQueries(readDashboard()).find((x) => x.title === title);
    assert.ok(q, `no panel "${title}"`);
    return (await runPanel(q)).map((s) => ({
      labels: shownLabels(q)
        .map((l) => s.metric[l])
        .join(' '),
      values: s.values.filter(Number.isFinite),
    }));
  }

  const labelSets = async (title: string) => (await panelSeries(title)).map((s) => s.labels).sort();

  test('the panels name what the traffic did', async () => {
    assert.deepEqual(await labelSets('Messages per second by direction and outcome'), [
      // The message encrypted to another domain's key: delivered as it came, a decrypt failure.
      'inbound failed',
      'inbound ok',
      'outbound ok',
    ]);
    assert.deepEqual(await labelSets('Signature verification results'), [
      'fail',
      'pass',
      'permerror',
    ]);
    assert.deepEqual(await labelSets('Certificate lookups by source and result'), [
      'directory found',
      'directory not-found',
      'harvested not-found',
    ]);
    assert.deepEqual(await labelSets('Revocation checks by method and result'), [
      'cache good',
      'ocsp good',
    ]);
    assert.deepEqual(await labelSets('Milter errors by kind'), ['protocol-error']);
    const p99 = await panelSeries('Processing time p50 / p95 / p99');
    assert.deepEqual(p99.map((s) => s.labels).sort(), ['inbound', 'outbound']);
    const days = await panelSeries('Days until our certificates expire');
    assert.deepEqual(days.map((s) => s.labels).sort(), [
      'example.net encrypt',
      'example.net sign',
      'example.org encrypt',
      'example.org sign',
    ]);
    for (const d of days)
      assert.ok(
        d.values.every((v) => v > 300 && v < 366),
        String(d.values),
      );
    // The second copy of each encrypted message found its revocation answer in Redis.
    const hitRatio = (await panelSeries('Cache hit ratio'))[0]?.values ?? [];
    assert.ok(
      hitRatio.some((v) => v > 0 && v <= 1),
      String(hitRatio),
    );
    // Only example.net has Redis; example.org reports no Redis state at all rather than "down".
    const redis = await panelSeries('Redis reachable');
    assert.equal(redis.length, 1);
    assert.ok(redis[0]!.values.length > 0 && redis[0]!.values.every((v) => v === 1));
  });

  test('the alert rules load into Prometheus and evaluate on live data without error, none active', async () => {
    const rules = await g.prometheus.rules();
    assert.deepEqual(rules.map((r) => r.name).sort(), [
      'DomsecCertificateExpiringSoon',
      'DomsecDecryptFailuresRising',
      'DomsecMilterDown',
      'DomsecRevocationUnknown',
    ]);
    const deadline = Date.now() + 10_000;
    const evaluatedSinceTraffic = (r: RuleState) => Date.parse(r.lastEvaluation) > trafficDone;
    let current = rules;
    while (!current.every(evaluatedSinceTraffic)) {
      assert.ok(Date.now() < deadline, JSON.stringify(current));
      await sleep(250);
      current = await g.prometheus.rules();
    }
    for (const r of current) {
      assert.equal(r.health, 'ok', `${r.name}: ${r.lastError}`);
      assert.equal(r.state, 'inactive', r.name);
    }
  });

  test('a milter that stops: DomsecMilterDown goes pending for that instance', async () => {
    assert.equal(await g.milterB.stop(), 0);
    const deadline = Date.now() + 20_000;
    let alerts = await g.prometheus.alerts();
    while (!alerts.some((a) => a.labels['alertname'] === 'DomsecMilterDown')) {
      assert.ok(Date.now() < deadline, JSON.stringify(alerts));
      await sleep(250);
      alerts = await g.prometheus.alerts();
    }
    assert.deepEqual(
      alerts.map((a) => [a.labels['alertname'], a.labels['instance'], a.state]),
      [['DomsecMilterDown', g.endpointB, 'pending']],
    );
  });
});
