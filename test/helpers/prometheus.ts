/**
 * A real Prometheus (Debian package `prometheus`), private to one test: its
 * own config, TSDB directory and loopback port, scraping the given targets
 * every second. Never the system instance on :9090.
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.js';

export const PROMETHEUS = '/usr/bin/prometheus';
export const PROMTOOL = '/usr/bin/promtool';

export function prometheusAvailable(): boolean {
  return existsSync(PROMETHEUS) && existsSync(PROMTOOL);
}

export interface PrometheusOptions {
  /** `host:port` of every endpoint to scrape at /metrics. */
  readonly targets: readonly string[];
  /** Default 'domsec-milter', the job name the alert rules select. */
  readonly job?: string;
  /** Scrape and rule evaluation interval; default 1 s. */
  readonly intervalSeconds?: number;
  /** Absolute paths of rule files to load. */
  readonly ruleFiles?: readonly string[];
}

export interface Sample {
  readonly metric: Readonly<Record<string, string>>;
  /** NaN and ±Inf as Prometheus sends them ("NaN", "+Inf"). */
  readonly value: number;
}

export interface RangeSeries {
  readonly metric: Readonly<Record<string, string>>;
  /** One value per step where the series has one. */
  readonly values: readonly number[];
}

export interface RuleState {
  readonly name: string;
  readonly type: 'alerting' | 'recording';
  readonly health: string;
  readonly lastError?: string;
  /** inactive, pending or firing (alerting rules only). */
  readonly state?: string;
  /** RFC 3339; year 1 before the first evaluation. */
  readonly lastEvaluation: string;
}

export interface ActiveAlert {
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** pending or firing */
  readonly state: string;
}

export interface PrivatePrometheus {
  readonly port: number;
  readonly url: string;
  /** An instant query at the current time; rejects on a PromQL error. */
  query(promql: string): Promise<Sample[]>;
  /** A range query, as Grafana runs a time series panel: start and end in Unix seconds. */
  queryRange(
    promql: string,
    start: number,
    end: number,
    stepSeconds: number,
  ): Promise<RangeSeries[]>;
  /** Every loaded rule with its health and state. */
  rules(): Promise<RuleState[]>;
  /** Alerts pending or firing now. */
  alerts(): Promise<ActiveAlert[]>;
  /** Everything it logged so far. */
  output(): string;
  stop(): Promise<void>;
}

interface ApiAnswer<T> {
  readonly status: 'success' | 'error';
  readonly data?: T;
  readonly error?: string;
}

async function api<T>(base: string, path: string): Promise<T> {
  const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as ApiAnswer<T>;
  if (body.status !== 'success' || body.data === undefined) {
    throw new Error(`Prometheus ${path}: ${res.status} ${body.error ?? 'no data'}`);
  }
  return body.data;
}

type VectorData =
  | { resultType: 'vector'; result: { metric: Record<string, string>; value: [number, string] }[] }
  | { resultType: 'scalar'; result: [number, string] }
  | { resultType: 'matrix' | 'string'; result: unknown };

interface MatrixResult {
  readonly metric: Record<string, string>;
  readonly values: [number, string][];
}

function samplesOf(promql: string, data: VectorData): Sample[] {
  if (data.resultType === 'vector') {
    return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }
  if (data.resultType === 'scalar') return [{ metric: {}, value: Number(data.result[1]) }];
  throw new Error(`${promql}: unexpected result type ${data.resultType}`);
}

async function ready(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/** The config as JSON, which is YAML too: no quoting rules to get wrong. */
function configText(o: PrometheusOptions): string {
  const interval = `${o.intervalSeconds ?? 1}s`;
  return JSON.stringify(
    {
      global: { scrape_interval: interval, evaluation_interval: interval },
      rule_files: o.ruleFiles ?? [],
      scrape_configs: [
        { job_name: o.job ?? 'domsec-milter', static_configs: [{ targets: o.targets }] },
      ],
    },
    null,
    2,
  );
}

async function startOnce(dir: string, configPath: string): Promise<PrivatePrometheus> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    PROMETHEUS,
    [
      `--config.file=${configPath}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let out = '';
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 20_000;
  while (!(await ready(url))) {
    if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}: ${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`prometheus not ready on ${port} within 20 s: ${out}`);
    }
    await sleep(50);
  }
  return {
    port,
    url,
    output: () => out,
    query: async (promql) =>
      samplesOf(
        promql,
        await api<VectorData>(url, `/api/v1/query?query=${encodeURIComponent(promql)}`),
      ),
    queryRange: async (promql, start, end, step) => {
      const params = new URLSearchParams({
        query: promql,
        start: String(start),
        end: String(end),
        step: String(step),
      });
      const data = await api<{ resultType: string; result: MatrixResult[] }>(
        url,
        `/api/v1/query_range?${params}`,
      );
      if (data.resultType !== 'matrix')
        throw new Error(`${promql}: unexpected result type ${data.resultType}`);
      return data.result.map((r) => ({
        metric: r.metric,
        values: r.values.map((v) => Number(v[1])),
      }));
    },
    rules: async () => {
      const data = await api<{ groups: { rules: RuleState[] }[] }>(url, '/api/v1/rules');
      return data.groups.flatMap((g) => g.rules);
    },
    alerts: async () => (await api<{ alerts: ActiveAlert[] }>(url, '/api/v1/alerts')).alerts,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(5000)]);
        if (child.exitCode === null) child.kill('SIGKILL');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function startPrometheus(o: PrometheusOptions): Promise<PrivatePrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'domsec-prometheus-'));
  const configPath = join(dir, 'prometheus.yml');
  await writeFile(configPath, configText(o));
  // freePort races other tests for the port: try again when it was taken.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(dir, configPath);
    } catch (err) {
      if (!/address already in use/i.test(String(err)) || attempt >= 3) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
}

export interface PromtoolResult {
  readonly code: number;
  readonly output: string;
}

/** Runs `promtool <args>`; the exit code and stdout+stderr, never a rejection. */
export function promtool(args: string[]): Promise<PromtoolResult> {
  return new Promise((resolve) => {
    execFile(PROMTOOL, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

/** Polls a query until `accept` holds for its samples; fails after timeoutMs with the last answer. */
export async function waitForQuery(
  prometheus: PrivatePrometheus,
  promql: string,
  accept: (samples: Sample[]) => boolean,
  timeoutMs = 30_000,
): Promise<Sample[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const samples = await prometheus.query(promql);
    if (accept(samples)) return samples;
    if (Date.now() > deadline) {
      throw new Error(
        `${promql} not as expected within ${timeoutMs} ms: ${JSON.stringify(samples)}`,
      );
    }
    await sleep(250);
  }
}
