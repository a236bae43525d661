/**
 * Large outbound messages are transformed in a worker thread of lower
 * priority: even sliced (src/util/slices.ts), 250 ms of hashing, encryption
 * and encoding on the event loop raised small messages' p99 latency fourfold
 * while 25 MB messages went through. The result is the same transform's:
 * the worker runs transformOutbound on the same context.
 */

import { Worker } from 'node:worker_threads';
import { jobOf, type OutboundJobResult, transferable } from './outbound-job.js';
import { failure, reportBuilder } from './results.js';
import type { OutboundContext, TransformResult } from './types.js';

const WORKER = new URL('./outbound-worker.js', import.meta.url);

/** Messages from this size go to the worker; below it, the event loop is quicker. */
export const OFFLOAD_BYTES = 1024 * 1024;

export class OutboundWorker {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, (r: OffloadedResult) => void>();

  /**
   * transformOutbound in the worker. The message is transferred, not copied:
   * the caller's Buffer is emptied and `original` gives it back. Never
   * rejects: a dead worker is an 'internal' failure.
   */
  transform(message: Buffer, ctx: OutboundContext): Promise<OffloadedResult> {
    const worker = this.started();
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      try {
        worker.postMessage(jobOf(id, message, ctx), transferable(message));
      } catch (err) {
        this.pending.delete(id);
        resolve({ result: workerFailure(err), original: message });
      }
    });
  }

  /** Stops the worker; messages still in it end as 'internal' failures (the MTA keeps them). */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.failAll(new Error('the transform worker was stopped'));
    if (w) await w.terminate();
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WORKER);
    // An idle worker must not keep the process alive; the server does that.
    w.unref();
    w.on('message', (m: OutboundJobResult) => {
      const done = this.pending.get(m.id);
      this.pending.delete(m.id);
      done?.({ result: revive(m.result), original: asBuffer(m.original) });
    });
    const lost = (err: Error) => {
      if (this.worker === w) this.worker = undefined;
      this.failAll(err);
    };
    w.on('error', lost);
    w.on('exit', (code) => lost(new Error(`the transform worker exited with code ${code}`)));
    this.worker = w;
    return w;
  }

  private failAll(err: unknown): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    // The message is in the dead worker: the caller gets an empty one and must not deliver it.
    for (const done of waiting) done({ result: workerFailure(err), original: Buffer.alloc(0) });
  }
}

export interface OffloadedResult {
  readonly result: TransformResult;
  /** The message given to transform(), back from the worker (empty if the worker died). */
  readonly original: Buffer;
}

/** A Buffer again after the structured clone (which delivers a Uint8Array). */
function asBuffer(m: Uint8Array): Buffer {
  return Buffer.from(m.buffer, m.byteOffset, m.byteLength);
}

function revive(r: TransformResult): TransformResult {
  return r.ok ? { ...r, message: asBuffer(r.message) } : r;
}

function workerFailure(err: unknown): TransformResult {
  const message = err instanceof Error ? err.message : String(err);
  return failure(reportBuilder('outbound'), 'internal', `transform worker: ${message}`);
}
