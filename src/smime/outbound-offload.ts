/**
 * Large outbound messages are transformed in a worker thread of lower
 * priority: even sliced (src/util/slices.ts), 250 ms of hashing, encryption
 * and encoding on the event loop raised small messages' p99 latency fourfold
 * while 25 MB messages went through. The result is the same transform's:
 * the worker runs transformOutboundDeferred on the same context and writes
 * an encrypted body's base64 a piece at a time, as the pieces are fetched.
 */

import { Worker } from 'node:worker_threads';
import {
  type BodyPiece,
  type BodyRequest,
  jobOf,
  type OutboundJobResult,
  transferable,
} from './outbound-job.js';
import { failure, reportBuilder } from './results.js';
import type { OutboundContext, TransformResult } from './types.js';

const WORKER = new URL('./outbound-worker.js', import.meta.url);

/** Messages from this size go to the worker; below it, the event loop is quicker. */
export const OFFLOAD_BYTES = 1024 * 1024;

export class OutboundWorker {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, (r: OffloadedResult) => void>();
  /** Who waits for the next piece of which job's body. */
  private readonly pieceWaiters = new Map<number, PieceWaiter>();

  /**
   * transformOutbound in the worker. The message is transferred, not copied:
   * the caller's Buffer is emptied. Never rejects: a dead worker is an
   * 'internal' failure.
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
        resolve({ result: workerFailure(err) });
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
    w.on('message', (m: OutboundJobResult | BodyPiece) => {
      if ('piece' in m) {
        const waiter = this.pieceWaiters.get(m.id);
        this.pieceWaiters.delete(m.id);
        waiter?.resolve(asBuffer(m.piece));
        return;
      }
      const done = this.pending.get(m.id);
      this.pending.delete(m.id);
      done?.({
        result: revive(m.result),
        ...(m.bodyLength !== undefined ? { body: this.bodyIn(w, m.id, m.bodyLength) } : {}),
      });
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

  /** A new body kept in worker `w`, fetched a piece at a time. */
  private bodyIn(w: Worker, id: number, length: number): OffloadedBody {
    let open = true;
    const release = () => {
      if (open && this.worker === w) w.postMessage({ id, body: 'release' } satisfies BodyRequest);
      open = false;
    };
    const next = (): Promise<Buffer> => {
      if (!open || this.worker !== w)
        return Promise.reject(new Error('the transform worker lost the message body'));
      return new Promise((resolve, reject) => {
        this.pieceWaiters.set(id, { resolve, reject });
        w.postMessage({ id, body: 'next' } satisfies BodyRequest);
      });
    };
    return {
      length,
      release,
      async *pieces() {
        try {
          for (;;) {
            const piece = await next();
            // The worker lets the body go once it sent the last piece.
            if (piece.length === 0) open = false;
            if (!open) return;
            yield piece;
          }
        } finally {
          release();
        }
      },
    };
  }

  private failAll(err: unknown): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const done of waiting) done({ result: workerFailure(err) });
    const reading = [...this.pieceWaiters.values()];
    this.pieceWaiters.clear();
    for (const w of reading) w.reject(err);
  }
}

interface PieceWaiter {
  resolve(piece: Buffer): void;
  reject(err: unknown): void;
}

/** A new body in the worker. */
export interface OffloadedBody {
  readonly length: number;
  /** The body in order, each piece fetched once the one before was taken. */
  pieces(): AsyncIterable<Buffer>;
  /** Lets the worker drop what was not fetched; a no-op once all was. */
  release(): void;
}

export interface OffloadedResult {
  /** When ok, `message` is the output's header block (blank line included). */
  readonly result: TransformResult;
  /** The new body; absent when the body is the one sent in. */
  readonly body?: OffloadedBody;
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
