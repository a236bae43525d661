/**
 * How many inputs each fuzz target gets, and the measuring around it.
 *
 * `npm test` runs every property with its small count; `npm run test:fuzz`
 * sets FUZZ_RUNS=1 and the same files run their full counts. FUZZ_RUNS is a
 * factor on the full count (0.1: a tenth, 10: ten times). FUZZ_SEED replays a
 * failure that fast-check reported (with FUZZ_PATH for its shrunk case).
 */

import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import fc from 'fast-check';

/** The number of inputs for one target: `quick` in npm test, `full` x FUZZ_RUNS otherwise. */
export function fuzzRuns(full: number, quick: number): number {
  const scale = process.env['FUZZ_RUNS'];
  if (scale === undefined || scale === '') return quick;
  const factor = Number(scale);
  if (!(factor > 0)) throw new Error(`FUZZ_RUNS must be a positive number, got ${scale}`);
  return Math.max(1, Math.round(full * factor));
}

export const fullRun = (): boolean => (process.env['FUZZ_RUNS'] ?? '') !== '';

/**
 * A single input taking longer than this counts as a hang. Generous: the
 * machine is shared, and garbage collection of earlier inputs lands on
 * whichever input runs next.
 */
export const HANG_MS = 3000;

function replay(): Pick<fc.Parameters<unknown>, 'seed' | 'path'> {
  const seed = process.env['FUZZ_SEED'];
  const path = process.env['FUZZ_PATH'];
  return {
    ...(seed ? { seed: Number(seed) } : {}),
    ...(path ? { path } : {}),
  };
}

/** Per-input timing: the slowest input is reported, and one over HANG_MS fails the target. */
export class Stopwatch {
  slowestMs = 0;
  count = 0;
  time<T>(f: () => T): T {
    const start = performance.now();
    try {
      return f();
    } finally {
      this.record(performance.now() - start);
    }
  }
  async timeAsync<T>(f: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await f();
    } finally {
      this.record(performance.now() - start);
    }
  }
  private record(ms: number): void {
    this.count++;
    if (ms > this.slowestMs) this.slowestMs = ms;
    assert.ok(ms < HANG_MS, `one input took ${ms.toFixed(0)} ms (hang bound ${HANG_MS} ms)`);
  }
}

function report(t: TestContext, name: string, runs: number, started: number, sw: Stopwatch): void {
  const seconds = (performance.now() - started) / 1000;
  t.diagnostic(
    `fuzz ${name}: ${runs} inputs in ${seconds.toFixed(1)} s, slowest input ${sw.slowestMs.toFixed(1)} ms`,
  );
}

/** Runs a synchronous property `runs` times, timing each input. */
export function fuzz<Ts extends [unknown, ...unknown[]]>(
  t: TestContext,
  name: string,
  runs: number,
  arbs: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> },
  predicate: (...args: Ts) => void,
): Stopwatch {
  const sw = new Stopwatch();
  const started = performance.now();
  fc.assert(
    fc.property(...arbs, (...args: Ts) => sw.time(() => predicate(...args))),
    { numRuns: runs, includeErrorInReport: true, ...replay() },
  );
  report(t, name, runs, started, sw);
  return sw;
}

/** Runs an asynchronous property `runs` times, timing each input. */
export async function fuzzAsync<Ts extends [unknown, ...unknown[]]>(
  t: TestContext,
  name: string,
  runs: number,
  arbs: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> },
  predicate: (...args: Ts) => Promise<void>,
): Promise<Stopwatch> {
  const sw = new Stopwatch();
  const started = performance.now();
  await fc.assert(
    fc.asyncProperty(...arbs, (...args: Ts) => sw.timeAsync(() => predicate(...args))),
    { numRuns: runs, includeErrorInReport: true, ...replay() },
  );
  report(t, name, runs, started, sw);
  return sw;
}

/**
 * Bytes from a seed, fast: a 10^6-input run cannot afford fast-check
 * building every byte as a shrinkable value. Shrinking still works on the
 * seed and the length.
 */
export function seededBytes(seed: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed | 0 || 0x9e3779b9;
  for (let i = 0; i < length; i++) {
    // xorshift32
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Random bytes with a shrinkable length, from a seed. */
export const bytesArb = (maxLength: number): fc.Arbitrary<Buffer> =>
  fc.tuple(fc.integer(), fc.nat(maxLength)).map(([seed, length]) => seededBytes(seed, length));

/**
 * CPU seconds the process spent while `f` ran: unlike wall time, hardly
 * changed by other tests or processes competing for the same cores.
 */
export async function cpuSeconds<T>(
  f: () => T | Promise<T>,
): Promise<{ value: T; seconds: number }> {
  const before = process.cpuUsage();
  const value = await f();
  const used = process.cpuUsage(before);
  return { value, seconds: (used.user + used.system) / 1e6 };
}
