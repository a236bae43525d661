/**
 * The worker thread that transforms large outbound messages (see
 * outbound-offload.ts). It runs below the event loop's priority: while it
 * encrypts 25 MB, small messages keep their latency. A new body stays here
 * until the event loop fetches it, a piece at a time, as the MTA takes it.
 */

import { setPriority } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { bodyOf } from '../mime/index.js';
import { transformOutbound } from './outbound.js';
import {
  BODY_PIECE_BYTES,
  type BodyPiece,
  type BodyRequest,
  contextOf,
  type OutboundJob,
  type OutboundJobResult,
} from './outbound-job.js';

try {
  // On Linux this is the calling thread's niceness only: the event loop keeps its own.
  setPriority(10);
} catch {
  // Not permitted here: the worker still keeps the work off the event loop.
}

/**
 * V8 collects a thread's garbage when that thread allocates; this one is
 * idle between messages and would keep the last message's buffers (input,
 * ciphertext, encodings: several times its size) until the next one came.
 * A collection here never pauses the event loop (another isolate), so the
 * worker collects after every message. `gc` exists only in contexts made
 * after the flag is set: hence the new context.
 */
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** New bodies not fetched yet, by job id, with how many bytes went. */
const bodies = new Map<number, { readonly body: Buffer; sent: number }>();

/** A copy with an ArrayBuffer of its own: a view would carry its whole buffer across. */
function own(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

const port = parentPort!;

async function run(job: OutboundJob): Promise<void> {
  const m = job.message;
  const message = Buffer.from(m.buffer, m.byteOffset, m.byteLength);
  const result = await transformOutbound(message, contextOf(job));
  if (!result.ok) {
    port.postMessage({ id: job.id, result } satisfies OutboundJobResult);
  } else {
    const body = bodyOf(result.message);
    const head = own(result.message.subarray(0, result.message.length - body.length));
    const changed = !body.equals(bodyOf(message));
    if (changed) bodies.set(job.id, { body, sent: 0 });
    const reply: OutboundJobResult = {
      id: job.id,
      result: { ...result, message: Buffer.from(head.buffer) },
      ...(changed ? { bodyLength: body.length } : {}),
    };
    port.postMessage(reply, [head.buffer as ArrayBuffer]);
  }
  collectGarbage();
}

function answer(request: BodyRequest): void {
  const kept = bodies.get(request.id);
  if (request.body === 'release' || !kept || kept.sent >= kept.body.length) {
    if (bodies.delete(request.id)) collectGarbage();
    if (request.body === 'next')
      port.postMessage({ id: request.id, piece: new Uint8Array(0) } satisfies BodyPiece);
    return;
  }
  const piece = own(kept.body.subarray(kept.sent, kept.sent + BODY_PIECE_BYTES));
  kept.sent += piece.length;
  port.postMessage({ id: request.id, piece } satisfies BodyPiece, [piece.buffer as ArrayBuffer]);
}

port.on('message', (m: OutboundJob | BodyRequest) => {
  if ('body' in m) answer(m);
  else void run(m);
});
