/**
 * A dashboard JSON read the way Grafana reads it: every query target of every
 * panel (rows included), with Grafana's variables interpolated to concrete
 * values so Prometheus can run the PromQL.
 */

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const DASHBOARD_PATH = fileURLToPath(
  new URL('../../../grafana/domsec-milter.json', import.meta.url),
);

export interface PanelQuery {
  readonly title: string;
  readonly type: string;
  readonly refId: string;
  readonly expr: string;
  readonly legendFormat: string;
}

interface PanelJson {
  readonly title?: string;
  readonly type?: string;
  readonly panels?: readonly PanelJson[];
  readonly targets?: readonly {
    readonly refId?: string;
    readonly expr?: string;
    readonly legendFormat?: string;
    readonly hide?: boolean;
  }[];
}

export interface DashboardJson {
  readonly title: string;
  readonly panels: readonly PanelJson[];
  readonly templating?: { readonly list: readonly { readonly name: string }[] };
}

export function readDashboard(path = DASHBOARD_PATH): DashboardJson {
  return JSON.parse(readFileSync(path, 'utf8')) as DashboardJson;
}

/** Every visible Prometheus target, rows (collapsed or not) included. */
export function panelQueries(dashboard: DashboardJson): PanelQuery[] {
  const walk = (panels: readonly PanelJson[]): PanelQuery[] =>
    panels.flatMap((p) => [
      ...(p.targets ?? [])
        .filter((t) => !t.hide)
        .map((t) => ({
          title: p.title ?? '(untitled)',
          type: p.type ?? '',
          refId: t.refId ?? '',
          expr: t.expr ?? '',
          legendFormat: t.legendFormat ?? '',
        })),
      ...walk(p.panels ?? []),
    ]);
  return walk(dashboard.panels);
}

export interface GrafanaTime {
  /** The datasource's scrape interval ("Scrape interval" setting), seconds. */
  readonly scrapeIntervalSeconds: number;
  /** $__interval: the step of the panel's range query, at least the scrape interval. */
  readonly intervalSeconds: number;
  /** The dashboard's time range, seconds. */
  readonly rangeSeconds: number;
  /** Values of the dashboard's template variables. */
  readonly variables?: Readonly<Record<string, string>>;
}

/** Grafana's $__rate_interval: max($__interval + scrape interval, 4 x scrape interval). */
export function rateIntervalSeconds(t: GrafanaTime): number {
  return Math.max(t.intervalSeconds + t.scrapeIntervalSeconds, 4 * t.scrapeIntervalSeconds);
}

/**
 * Replaces $name, ${name}, ${name:format} and [[name]] the way Grafana does
 * for a Prometheus query; an unknown variable is an error, since Grafana
 * would send it to Prometheus literally and the panel would fail.
 */
export function interpolate(expr: string, t: GrafanaTime): string {
  const builtins: Record<string, string> = {
    __rate_interval: `${rateIntervalSeconds(t)}s`,
    __interval: `${t.intervalSeconds}s`,
    __interval_ms: String(t.intervalSeconds * 1000),
    __range: `${t.rangeSeconds}s`,
    __range_s: String(t.rangeSeconds),
    __range_ms: String(t.rangeSeconds * 1000),
  };
  const values = { ...builtins, ...t.variables };
  return expr.replace(
    /\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)/g,
    (whole, braced?: string, bracketed?: string, bare?: string) => {
      const name = braced ?? bracketed ?? bare ?? '';
      const value = values[name];
      if (value === undefined) throw new Error(`unknown Grafana variable ${whole} in: ${expr}`);
      return value;
    },
  );
}

/**
 * Labels a panel shows: those its legend names ({{label}}) and, without a
 * legend, those of its outermost `agg by (...)` (Grafana then prints the
 * label set). Series without them would be drawn as one unlabelled line.
 */
export function shownLabels(q: PanelQuery): string[] {
  const legend = [...q.legendFormat.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]!);
  if (legend.length > 0 || q.legendFormat !== '') return legend;
  const outer = /^\s*(?:sum|min|max|avg|count|group|stddev|stdvar)\s+by\s*\(([^)]*)\)/.exec(q.expr);
  return (outer?.[1] ?? '')
    .split(',')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}
