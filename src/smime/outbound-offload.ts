/**
 * Large outbound messages are transformed in a worker thread of lower
 * priority: even sliced (src/util/slices.ts), 250 ms of hashing, encryption
 * and encoding on the event loop raised small messages' p99 latency fourfold
 * while 25 MB messages went through. The result is the same transform's:
 * the worker runs transformOutboundDeferred on the same context and writes
 * an encrypted body's base64 a piece at a time, as the pieces are fetched.
 */

import type { Worker } from 'node:worker_threads';
import { OffloadWorker, workerFailure } from './offload.js';
import { type BodyPiece, type BodyRequest, jobOf, type OutboundJobResult } from './outbound-job.js';
import type { OutboundContext, TransformResult } from './types.js';
import { asBuffer, transferable } from './worker-thread.js';

export class OutboundWorker extends OffloadWorker<OffloadedResult> {
  /** Who waits for the next piece of which job's body. */
  private readonly pieceWaiters = new Map<number, PieceWaiter>();

  constructor() {
    super(new URL('./outbound-worker.js', import.meta.url));
  }

  /**
   * transformOutbound in the worker. The message is transferred, not copied:
   * the caller's Buffer is emptied. Never rejects: a dead worker is an
   * 'internal' failure.
   */
  transform(message: Buffer, ctx: OutboundContext): Promise<OffloadedResult> {
    return this.submit((worker, id) =>
      worker.postMessage(jobOf(id, message, ctx), transferable(message)),
    );
  }

  protected override received(w: Worker, message: unknown): void {
    const m = message as OutboundJobResult | BodyPiece;
    if ('piece' in m) {
      const waiter = this.pieceWaiters.get(m.id);
      this.pieceWaiters.delete(m.id);
      this.refresh();
      waiter?.resolve(asBuffer(m.piece));
      return;
    }
    this.finish(m.id, {
      result: revive(m.result),
      ...(m.bodyLength !== undefined ? { body: this.bodyIn(w, m.id, m.bodyLength) } : {}),
    });
  }

  protected override failed(err: unknown): OffloadedResult {
    return { result: workerFailure('outbound', err) };
  }

  protected override awaited(): number {
    return this.pieceWaiters.size;
  }

  protected override lost(err: unknown): void {
    const reading = [...this.pieceWaiters.values()];
    this.pieceWaiters.clear();
    for (const w of reading) w.reject(err);
  }

  /** A new body kept in worker `w`, fetched a piece at a time. */
  private bodyIn(w: Worker, id: number, length: number): OffloadedBody {
    let open = true;
    const release = () => {
      if (open && this.isCurrent(w)) w.postMessage({ id, body: 'release' } satisfies BodyRequest);
      open = false;
    };
    const next = (): Promise<Buffer> => {
      if (!open || !this.isCurrent(w))
        return Promise.reject(new Error('the transform worker lost the message body'));
      return new Promise((resolve, reject) => {
        this.pieceWaiters.set(id, { resolve, reject });
        this.refresh();
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

function revive(r: TransformResult): TransformResult {
  return r.ok ? { ...r, message: asBuffer(r.message) } : r;
}
