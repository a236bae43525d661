/**
 * The event loop's side of a transform worker thread (outbound-offload.ts,
 * inbound-offload.ts): the thread started on first use, keeping the process
 * alive only while something waits for it; jobs by id; and a lost thread
 * (crashed, exited, stopped) failing every job it held, never leaving one
 * waiting. The next job starts a new thread.
 */

import { Worker } from 'node:worker_threads';
import { failure, reportBuilder } from './results.js';
import type { TransformResult } from './types.js';

/** Messages from this size go to a worker; below it, the event loop is quicker. */
export const OFFLOAD_BYTES = 1024 * 1024;

export abstract class OffloadWorker<Result> {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, (r: Result) => void>();

  constructor(private readonly script: URL) {}

  /** What the worker thread posted; `from` is that thread. */
  protected abstract received(from: Worker, message: unknown): void;

  /** The result of a job its thread did not finish. */
  protected abstract failed(err: unknown): Result;

  /** The thread was lost or stopped (its jobs have failed): forget what it held. */
  protected lost(_err: unknown): void {}

  /** Answers awaited from the thread besides the jobs' results (they keep the process alive too). */
  protected awaited(): number {
    return 0;
  }

  /**
   * The thread keeps the process alive while something waits for it, and
   * only then: an idle worker must not (the server does that).
   */
  protected refresh(): void {
    if (this.pending.size > 0 || this.awaited() > 0) this.worker?.ref();
    else this.worker?.unref();
  }

  /**
   * A new job: `post` sends it to the thread under `id`, and the promise is
   * what `finish(id, ...)` gives or a failure; it never rejects.
   */
  protected submit(post: (worker: Worker, id: number) => void): Promise<Result> {
    const worker = this.started();
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.refresh();
      try {
        post(worker, id);
      } catch (err) {
        this.pending.delete(id);
        this.refresh();
        resolve(this.failed(err));
      }
    });
  }

  /** Ends job `id` with `result` (a no-op when it already ended). */
  protected finish(id: number, result: Result): void {
    const done = this.pending.get(id);
    this.pending.delete(id);
    this.refresh();
    done?.(result);
  }

  /** Whether `w` is still the thread in use (not one lost since). */
  protected isCurrent(w: Worker): boolean {
    return this.worker === w;
  }

  /** Stops the thread; jobs still in it end as failures (the MTA keeps those messages). */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.failAll(new Error('the transform worker was stopped'));
    if (w) await w.terminate();
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(this.script);
    w.on('message', (m: unknown) => this.received(w, m));
    const lost = (err: Error) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      this.failAll(err);
    };
    w.on('error', lost);
    w.on('exit', (code) => lost(new Error(`the transform worker exited with code ${code}`)));
    // After the listeners (adding a 'message' listener refs the worker again).
    this.worker = w;
    this.refresh();
    return w;
  }

  private failAll(err: unknown): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const done of waiting) done(this.failed(err));
    this.lost(err);
  }
}

/** The 'internal' failure of a job its worker did not finish. */
export function workerFailure(direction: 'outbound' | 'inbound', err: unknown): TransformResult {
  const message = err instanceof Error ? err.message : String(err);
  return failure(reportBuilder(direction), 'internal', `transform worker: ${message}`);
}
