/**
 * `npm run test:soak`: mixed mail through two Postfix instances and two
 * milters for SOAK_MINUTES (default 30): example.org's Postfix (its milter
 * signs, and encrypts to example.net) relays to example.net's Postfix (its
 * milter decrypts and verifies), which delivers to a sink; one message in
 * five goes to example.info (signed only, passed through unchanged at
 * example.net). First the maximum end-to-end rate is measured for
 * SOAK_MEASURE_SECONDS (20), then the soak runs at half of it, recording each
 * milter's RSS every 10 s. Exit 1 when RSS grew 10 % or more (mean of the last
 * window against the first after warm-up), or on any error or lost message.
 */

import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServingMilter } from '../helpers/cli.js';
import {
  BODY,
  type GatewayDomains,
  message,
  startGatewayDomains,
} from '../helpers/gateway-fixture.js';
import { deliverAll, type LoadMessage, type LoadReport } from '../helpers/mail-load.js';
import { sample, scrape } from '../helpers/metrics-scrape.js';
import { type PostfixInstance, startPostfix } from '../helpers/postfix.js';
import { type SinkMessage, type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

const MINUTES = Number(process.env['SOAK_MINUTES'] ?? 30);
const MEASURE_SECONDS = Number(process.env['SOAK_MEASURE_SECONDS'] ?? 20);
const SESSIONS = Number(process.env['SOAK_SESSIONS'] ?? 20);
const SAMPLE_MS = 10_000;
const GROWTH_LIMIT = 0.1;

const log = (line: string) =>
  process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

/** Resident set size of a process, in MiB. */
function rssMiB(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

/** Ids soak-0, soak-1, ...: four in five to example.net (encrypted), one to example.info. */
function* traffic(prefix: string): Generator<LoadMessage> {
  for (let i = 0; ; i++) {
    const id = `${prefix}-${i}`;
    const info = i % 5 === 4;
    const to = info ? 'dave@example.info' : 'bob@example.net';
    yield {
      id,
      from: 'alice@example.org',
      to: [to],
      data: message(id, info ? 'Dave <dave@example.info>' : 'Bob <bob@example.net>'),
    };
  }
}

/** What arrived at the sink, checked and counted as it comes (the messages are not kept). */
class Arrivals {
  readonly count = new Map<string, number>();
  readonly problems: string[] = [];
  total = 0;

  constructor(private readonly sink: SmtpSink) {}

  /** Takes whatever the sink holds now. */
  drain(): void {
    for (const m of this.sink.messages.splice(0)) this.check(m);
  }

  private check(m: SinkMessage): void {
    this.total++;
    const id = /^<(.+)@example\.org>$/.exec(m.header('message-id') ?? '')?.[1] ?? '(no id)';
    this.count.set(id, (this.count.get(id) ?? 0) + 1);
    const problem = m.rcptTo.includes('bob@example.net')
      ? /^mx\.example\.net;\s+smime=pass\s/.test(m.header('authentication-results') ?? '') &&
        m.body().toString().endsWith(BODY)
        ? undefined
        : `${id}: not decrypted and verified (${m.header('authentication-results') ?? 'no result'})`
      : /^multipart\/signed/.test(m.header('content-type') ?? '')
        ? undefined
        : `${id}: not signed (${m.header('content-type')})`;
    if (problem && this.problems.length < 20) this.problems.push(problem);
  }
}

interface Gateways {
  readonly domains: GatewayDomains;
  readonly sink: SmtpSink;
  readonly postfixA: PostfixInstance;
  readonly postfixB: PostfixInstance;
  stop(): Promise<void>;
}

async function startGateways(): Promise<Gateways> {
  // warn: one log line per message for an hour would only fill this process's memory.
  const domains = await startGatewayDomains({ DOMSEC_LOG_LEVEL: 'warn' });
  const sink = await startSmtpSink();
  const busy = { default_process_limit: '200' };
  // Distinct names: Postfix refuses to relay to a server greeting with its own.
  const postfixB = await startPostfix({
    relayPort: sink.port,
    milter: domains.milterB.address,
    mainCf: { ...busy, myhostname: 'mx.example.net' },
  });
  const postfixA = await startPostfix({
    relayPort: postfixB.smtpPort,
    milter: domains.milterA.address,
    mainCf: { ...busy, myhostname: 'mx.example.org' },
  });
  return {
    domains,
    sink,
    postfixA,
    postfixB,
    async stop() {
      await Promise.all([postfixA.stop(), postfixB.stop()]);
      await domains.stop();
      await sink.close();
    },
  };
}

/** Until every accepted id has arrived (queues flushed meanwhile), at most `timeoutMs`. */
async function settle(
  g: Gateways,
  arrivals: Arrivals,
  accepted: readonly string[],
  timeoutMs: number,
) {
  const deadline = Date.now() + timeoutMs;
  const missing = () => accepted.filter((id) => !arrivals.count.has(id));
  for (let round = 0; missing().length > 0 && Date.now() < deadline; round++) {
    if (round % 10 === 9) await Promise.all([g.postfixA.flush(), g.postfixB.flush()]);
    await sleep(200);
    arrivals.drain();
  }
  await sleep(1000); // a duplicate would come just after
  arrivals.drain();
  return missing();
}

/** The maximum end-to-end rate: unpaced, deliveries at the sink counted after a 5 s warm-up. */
async function measureMax(
  g: Gateways,
  arrivals: Arrivals,
): Promise<{ rate: number; report: LoadReport }> {
  const started = Date.now();
  const end = started + MEASURE_SECONDS * 1000;
  const warm = started + Math.min(5000, (MEASURE_SECONDS * 1000) / 4);
  let atWarm = 0;
  const timer = setTimeout(() => {
    arrivals.drain();
    atWarm = arrivals.total;
  }, warm - started);
  const report = await deliverAll(traffic('max'), {
    port: g.postfixA.smtpPort,
    concurrency: SESSIONS,
    stop: () => Date.now() >= end,
  });
  clearTimeout(timer);
  arrivals.drain();
  const rate = (arrivals.total - atWarm) / ((Date.now() - warm) / 1000);
  return { rate, report };
}

interface RssSample {
  readonly at: number;
  /** RSS of milter A and B, MiB. */
  readonly a: number;
  readonly b: number;
  /** V8 heap in use (domsec_process_nodejs_heap_size_used_bytes), MiB: apart from V8's reserve. */
  readonly heapA: number;
  readonly heapB: number;
}

function mean(xs: readonly number[]): number {
  return xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
}

/** Warm-up, then the first and the last window (5 min each in a 30 min run; shorter runs scale). */
function growth(samples: readonly RssSample[], started: number, minutes: number) {
  const total = minutes * 60_000;
  const warmUp = Math.max(30_000, total * 0.1);
  const window = Math.min(5 * 60_000, (total - warmUp) / 3);
  const first = samples.filter((s) => s.at - started >= warmUp && s.at - started < warmUp + window);
  const last = samples.filter((s) => s.at - started >= total - window);
  const of = (k: 'a' | 'b' | 'heapA' | 'heapB') => {
    const f = mean(first.map((s) => s[k]));
    const l = mean(last.map((s) => s[k]));
    return { first: f, last: l, growth: (l - f) / f };
  };
  return {
    warmUpS: warmUp / 1000,
    windowS: window / 1000,
    a: of('a'),
    b: of('b'),
    heapA: of('heapA'),
    heapB: of('heapB'),
  };
}

async function milterProblems(m: ServingMilter) {
  const s = await scrape(m.httpUrl);
  const lines = m
    .output()
    .split('\n')
    .filter((l) => l.trim() !== '');
  return {
    exited: m.process.exitCode !== null || m.process.signalCode !== null,
    errorLines: lines.filter((l) => /"level":(50|60)/.test(l)),
    warnLines: lines.filter((l) => /"level":40/.test(l)),
    failed: sample(s, 'domsec_messages_total', { outcome: 'failed' }) ?? 0,
    protocolErrors: sample(s, 'domsec_milter_errors_total') ?? 0,
  };
}

async function main(): Promise<number> {
  log(`soak: ${MINUTES} min after a ${MEASURE_SECONDS} s measurement, ${SESSIONS} SMTP sessions`);
  const g = await startGateways();
  try {
    const arrivals = new Arrivals(g.sink);
    const max = await measureMax(g, arrivals);
    const lostInMeasure = await settle(g, arrivals, max.report.accepted, 120_000);
    const rate = max.rate / 2;
    log(`maximum ${max.rate.toFixed(1)} msg/s end to end; soaking at ${rate.toFixed(1)} msg/s`);

    const pids = { a: g.domains.milterA.process.pid!, b: g.domains.milterB.process.pid! };
    const samples: RssSample[] = [];
    const started = Date.now();
    const end = started + MINUTES * 60_000;
    const heap = async (m: ServingMilter) =>
      (sample(await scrape(m.httpUrl), 'domsec_process_nodejs_heap_size_used_bytes') ?? 0) /
      (1 << 20);
    const take = async () => {
      arrivals.drain();
      try {
        const at = Date.now();
        const [a, b] = [rssMiB(pids.a), rssMiB(pids.b)];
        const [heapA, heapB] = await Promise.all([
          heap(g.domains.milterA),
          heap(g.domains.milterB),
        ]);
        samples.push({ at, a, b, heapA, heapB });
      } catch {
        // A milter that died shows in its exit state below.
      }
      const s = samples.at(-1);
      if (samples.length % 6 === 0 && s)
        log(
          `${((s.at - started) / 60_000).toFixed(1)} min: ${arrivals.total} delivered; ` +
            `RSS A ${s.a.toFixed(1)} MiB, B ${s.b.toFixed(1)} MiB; ` +
            `heap A ${s.heapA.toFixed(1)} MiB, B ${s.heapB.toFixed(1)} MiB`,
        );
    };
    const sampler = setInterval(() => void take(), SAMPLE_MS);
    const soak = await deliverAll(traffic('soak'), {
      port: g.postfixA.smtpPort,
      concurrency: SESSIONS,
      rate,
      stop: () => Date.now() >= end,
      deadlineMs: MINUTES * 60_000 + 120_000,
    });
    clearInterval(sampler);
    const lost = await settle(g, arrivals, soak.accepted, 120_000);
    const duplicated = [...arrivals.count].filter(([, n]) => n > 1).map(([id]) => id);

    const rss = growth(samples, started, MINUTES);
    const [pa, pb] = await Promise.all([
      milterProblems(g.domains.milterA),
      milterProblems(g.domains.milterB),
    ]);
    const errors =
      soak.temporaryRefusals +
      soak.refused.length +
      soak.unsent.length +
      max.report.temporaryRefusals +
      max.report.refused.length +
      arrivals.problems.length +
      duplicated.length +
      [pa, pb].reduce(
        (n, p) => n + p.errorLines.length + p.failed + p.protocolErrors + (p.exited ? 1 : 0),
        0,
      );
    const row = (name: string, r: LoadReport, missing: readonly string[]) =>
      `| ${name} | ${r.offered} | ${r.accepted.length - missing.length} | ${missing.length} |`;
    const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
    const lines = [
      '',
      `Soak: ${MINUTES} min at ${rate.toFixed(1)} msg/s (half the ${max.rate.toFixed(1)} msg/s measured over ${MEASURE_SECONDS} s), ${SESSIONS} sessions`,
      '',
      '| phase | messages sent | delivered | lost |',
      '|---|---|---|---|',
      row('maximum-rate measurement', max.report, lostInMeasure),
      row('soak', soak, lost),
      '',
      `RSS (MiB), mean of the first ${rss.windowS} s after a ${rss.warmUpS} s warm-up against the last ${rss.windowS} s, ${samples.length} samples:`,
      '',
      '| milter | first window | last window | growth |',
      '|---|---|---|---|',
      `| A (example.org, sign+encrypt) | ${rss.a.first.toFixed(1)} | ${rss.a.last.toFixed(1)} | ${pct(rss.a.growth)} |`,
      `| B (example.net, decrypt+verify) | ${rss.b.first.toFixed(1)} | ${rss.b.last.toFixed(1)} | ${pct(rss.b.growth)} |`,
      `| A, V8 heap in use | ${rss.heapA.first.toFixed(1)} | ${rss.heapA.last.toFixed(1)} | ${pct(rss.heapA.growth)} |`,
      `| B, V8 heap in use | ${rss.heapB.first.toFixed(1)} | ${rss.heapB.last.toFixed(1)} | ${pct(rss.heapB.growth)} |`,
      '',
      'The verdict is on RSS; the heap rows tell V8 reserving memory from a leak.',
      ...(MINUTES < 15
        ? [
            `Note: in ${MINUTES} min the windows are short and RSS may still be settling (V8 sizes its heap over the first minutes): judge growth on 30 min.`,
          ]
        : []),
      '',
      `Errors: ${errors} (temporary refusals ${soak.temporaryRefusals + max.report.temporaryRefusals}, ` +
        `refused ${soak.refused.length + max.report.refused.length}, unsent ${soak.unsent.length}, ` +
        `wrong at the sink ${arrivals.problems.length}, duplicated ${duplicated.length}, ` +
        `milter error lines ${pa.errorLines.length + pb.errorLines.length}, failed outcomes ${pa.failed + pb.failed}, ` +
        `protocol errors ${pa.protocolErrors + pb.protocolErrors}, milters exited ${[pa, pb].filter((p) => p.exited).length}); ` +
        `warnings logged ${pa.warnLines.length + pb.warnLines.length}`,
      ...arrivals.problems.map((p) => `  ${p}`),
      ...[...soak.temporaryReasons].map((r) => `  temporary: ${r}`),
      ...[...pa.errorLines, ...pb.errorLines].slice(0, 10).map((l) => `  ${l}`),
      `RSS every 10 s, A: ${samples.map((s) => s.a.toFixed(0)).join(' ')}`,
      `RSS every 10 s, B: ${samples.map((s) => s.b.toFixed(0)).join(' ')}`,
      `heap every 10 s, A: ${samples.map((s) => s.heapA.toFixed(0)).join(' ')}`,
      `heap every 10 s, B: ${samples.map((s) => s.heapB.toFixed(0)).join(' ')}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    const grew = Math.max(rss.a.growth, rss.b.growth) >= GROWTH_LIMIT;
    const ok = !grew && errors === 0 && lost.length === 0 && lostInMeasure.length === 0;
    log(ok ? 'soak passed' : 'soak FAILED');
    return ok ? 0 : 1;
  } finally {
    await g.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
