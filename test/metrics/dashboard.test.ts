// The dashboard JSON without Prometheus: structure, metric names against the
// registry, and Grafana's variable interpolation as the end-to-end test uses it
// (test/e2e/prometheus-panels.test.ts runs every panel on real data).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createMetrics } from '../../src/metrics/registry.js';
import {
  type DashboardJson,
  type GrafanaTime,
  interpolate,
  type PanelQuery,
  panelQueries,
  rateIntervalSeconds,
  readDashboard,
  shownLabels,
} from '../helpers/grafana.js';
import { promtool } from '../helpers/prometheus.js';

const time: GrafanaTime = {
  scrapeIntervalSeconds: 15,
  intervalSeconds: 30,
  rangeSeconds: 3600,
  variables: { datasource: 'prom', instance: 'mx1' },
};

/** Every series name the service can export, histogram series included. */
async function exportedNames(): Promise<Set<string>> {
  const metrics = createMetrics();
  // Registered on its first state report only (absent without Redis).
  metrics.redisUp.set(1);
  const names = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') {
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${m.name}${suffix}`);
    }
  }
  return names;
}

const query = (expr: string, legendFormat = ''): PanelQuery => ({
  title: 't',
  type: 'timeseries',
  refId: 'A',
  expr,
  legendFormat,
});

describe('Grafana variables', () => {
  test('$__rate_interval is max($__interval + scrape interval, 4 x scrape interval)', () => {
    assert.equal(rateIntervalSeconds(time), 60);
    assert.equal(rateIntervalSeconds({ ...time, intervalSeconds: 120 }), 135);
    assert.equal(interpolate('rate(x[$__rate_interval])', time), 'rate(x[60s])');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's ${name} syntax, not a JS template
    assert.equal(interpolate('rate(x[${__rate_interval}])', time), 'rate(x[60s])');
  });

  test('interval, range and template variables in every spelling', () => {
    assert.equal(
      interpolate('x[$__interval] $__interval_ms $__range $__range_s $__range_ms', time),
      'x[30s] 30000 3600s 3600 3600000',
    );
    assert.equal(
      interpolate(
        // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's ${name} syntax, not a JS template
        'up{instance="$instance",a="${instance}",b="${instance:raw}",c="[[instance]]"}',
        time,
      ),
      'up{instance="mx1",a="mx1",b="mx1",c="mx1"}',
    );
  });

  test('an unknown variable is an error, not a query Prometheus would reject', () => {
    assert.throws(
      () => interpolate('rate(x[$__rate_intervall])', time),
      /unknown Grafana variable \$__rate_intervall/,
    );
    assert.throws(() => interpolate('up{job="$job"}', time), /\$job/);
  });
});

describe('panel targets', () => {
  test('rows are walked, hidden targets skipped', () => {
    const dashboard: DashboardJson = {
      title: 'd',
      panels: [
        {
          title: 'top',
          type: 'stat',
          targets: [
            { refId: 'A', expr: 'a' },
            { refId: 'B', expr: 'b', hide: true },
          ],
        },
        {
          title: 'row',
          type: 'row',
          panels: [{ title: 'inner', type: 'timeseries', targets: [{ refId: 'A', expr: 'c' }] }],
        },
      ],
    };
    assert.deepEqual(
      panelQueries(dashboard).map((q) => [q.title, q.expr]),
      [
        ['top', 'a'],
        ['inner', 'c'],
      ],
    );
  });

  test("shown labels: the legend's, else the outermost by (...)", () => {
    assert.deepEqual(shownLabels(query('sum by (a, b) (rate(x[1m]))')), ['a', 'b']);
    assert.deepEqual(shownLabels(query('sum by (a, b) (rate(x[1m]))', '{{ b }}')), ['b']);
    assert.deepEqual(
      shownLabels(query('histogram_quantile(0.5, sum by (le, d) (rate(x[1m])))', 'p50 {{d}}')),
      ['d'],
    );
    assert.deepEqual(shownLabels(query('sum(x)')), []);
    assert.deepEqual(shownLabels(query('sum by (a) (x)', 'total')), []);
  });
});

describe('the domsec-milter dashboard', () => {
  const queries = panelQueries(readDashboard());

  test('every panel has a titled target with PromQL, titles unique', () => {
    const dashboard = readDashboard();
    assert.ok(dashboard.panels.length >= 12);
    for (const p of dashboard.panels) {
      assert.ok(p.title, JSON.stringify(p).slice(0, 80));
      assert.ok(
        queries.some((q) => q.title === p.title && q.expr.trim() !== ''),
        `${p.title} has no query`,
      );
    }
    const titles = dashboard.panels.map((p) => p.title);
    assert.equal(new Set(titles).size, titles.length);
  });

  test('every metric a panel reads is one the service exports', async () => {
    const names = await exportedNames();
    const unknown = queries.flatMap((q) =>
      [...q.expr.matchAll(/\bdomsec_\w+/g)]
        .map((m) => m[0])
        .filter((n) => !names.has(n))
        .map((n) => `${q.title}: ${n}`),
    );
    assert.deepEqual(unknown, []);
  });

  test('rate windows follow the dashboard ($__rate_interval), every query interpolates', () => {
    for (const q of queries) {
      for (const [, window] of q.expr.matchAll(/\[([^\]]+)\]/g)) {
        assert.equal(window, '$__rate_interval', `${q.title}: fixed window [${window}]`);
      }
      assert.doesNotMatch(interpolate(q.expr, time), /\$/);
    }
  });
});

/** Evaluates an expression on synthetic series with `promtool test rules`; its output when it differs. */
async function promqlCase(
  expr: string,
  series: Record<string, string>,
  expected: { labels: string; value: number }[],
): Promise<string | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'domsec-promql-'));
  try {
    const file = join(dir, 'case.test.yml');
    // JSON is YAML too.
    const input_series = Object.entries(series).map(([s, values]) => ({ series: s, values }));
    const promql_expr_test = [{ expr, eval_time: '5m', exp_samples: expected }];
    const tests = [{ interval: '15s', input_series, promql_expr_test }];
    await writeFile(file, JSON.stringify({ rule_files: [], tests }));
    const r = await promtool(['test', 'rules', file]);
    return r.code === 0 ? undefined : r.output;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('panel semantics on synthetic series (promtool)', () => {
  const hitRatio = panelQueries(readDashboard()).find((q) => q.title === 'Cache hit ratio');
  const expr = interpolate(hitRatio?.expr ?? '', {
    scrapeIntervalSeconds: 15,
    intervalSeconds: 15,
    rangeSeconds: 3600,
  });
  const miss = 'domsec_cache_requests_total{cache="redis",result="miss"}';
  const hit = 'domsec_cache_requests_total{cache="redis",result="hit"}';

  test('cache hit ratio: 0 when every request misses (not "no data")', async () => {
    assert.equal(
      await promqlCase(expr, { [miss]: '0+1x40' }, [{ labels: '{}', value: 0 }]),
      undefined,
    );
  });

  test('cache hit ratio: the share of hits', async () => {
    const series = { [miss]: '0+3x40', [hit]: '0+1x40' };
    assert.equal(await promqlCase(expr, series, [{ labels: '{}', value: 0.25 }]), undefined);
  });

  test('cache hit ratio: no data without cache requests; a wrong expectation fails', async () => {
    const other = { 'domsec_messages_total{direction="inbound"}': '0+1x40' };
    assert.equal(await promqlCase(expr, other, []), undefined);
    assert.match((await promqlCase(expr, other, [{ labels: '{}', value: 0 }])) ?? '', /FAILED/);
  });
});
