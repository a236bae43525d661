/**
 * The thread side of a transform worker (outbound-worker.ts,
 * inbound-worker.ts): below the event loop's priority, so that while it
 * works on a large message small messages keep their latency, and
 * collecting its garbage after each message. And how both sides hand bytes
 * over: transferred when a Buffer owns its memory, copied out of a larger
 * one otherwise.
 */

import { setPriority } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type MessagePort, parentPort } from 'node:worker_threads';

export interface WorkerThread {
  /** To and from the event loop. */
  readonly port: MessagePort;
  /** A full collection of this thread's heap (never pauses the event loop: another isolate). */
  collectGarbage(): void;
}

export function workerThread(): WorkerThread {
  if (!parentPort) throw new Error('a transform worker runs in a worker thread');
  try {
    // On Linux this is the calling thread's niceness only: the event loop keeps its own.
    setPriority(10);
  } catch {
    // Not permitted here: the worker still keeps the work off the event loop.
  }
  /*
   * V8 collects a thread's garbage when that thread allocates; a worker is
   * idle between messages and would keep the last message's buffers (input,
   * ciphertext, encodings: several times its size) until the next one came.
   * `gc` exists only in contexts made after the flag is set: hence the new
   * context.
   */
  setFlagsFromString('--expose-gc');
  const collectGarbage = runInNewContext('gc') as () => void;
  return { port: parentPort, collectGarbage };
}

/** A copy with an ArrayBuffer of its own: a view would carry its whole buffer across. */
export function own(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** A Buffer again after the structured clone (which delivers a Uint8Array). */
export function asBuffer(m: Uint8Array): Buffer {
  return Buffer.from(m.buffer, m.byteOffset, m.byteLength);
}

/** The ArrayBuffer to transfer when `b` owns all of it; otherwise it is copied. */
export function transferable(b: Uint8Array): ArrayBuffer[] {
  const ab = b.buffer;
  return ab instanceof ArrayBuffer && b.byteOffset === 0 && b.byteLength === ab.byteLength
    ? [ab]
    : [];
}
