/** Latency samples of one awaited operation at a time, and their percentiles. */

import { performance } from 'node:perf_hooks';

export interface Latency {
  readonly samples: number;
  /** Milliseconds. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** Nearest-rank percentile of ascending `sorted` (q in 0..1). */
function rank(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function summarize(ms: readonly number[]): Latency {
  if (ms.length === 0) throw new Error('no samples');
  const sorted = [...ms].sort((a, b) => a - b);
  return {
    samples: sorted.length,
    p50: rank(sorted, 0.5),
    p99: rank(sorted, 0.99),
    max: sorted[sorted.length - 1]!,
  };
}

/**
 * Runs `op` `warmUp` times untimed, then `count` times timed, one after the
 * other (never overlapping: this is latency, not throughput). `op` may check
 * its own answer and throw: a bench of a wrong answer is worthless.
 */
export async function timeEach(
  count: number,
  warmUp: number,
  op: (i: number) => Promise<unknown>,
): Promise<Latency> {
  for (let i = 0; i < warmUp; i++) await op(i);
  const ms = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await op(i);
    ms[i] = performance.now() - start;
  }
  return summarize(ms);
}

/** Synchronous variant for pure computations (parsing). */
export function timeEachSync(count: number, warmUp: number, op: () => unknown): Latency {
  for (let i = 0; i < warmUp; i++) op();
  const ms = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    op();
    ms[i] = performance.now() - start;
  }
  return summarize(ms);
}

/** "0.123" for ms under 10, fewer decimals above: the table stays readable. */
export function fmtMs(ms: number): string {
  return ms < 10 ? ms.toFixed(3) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0);
}
