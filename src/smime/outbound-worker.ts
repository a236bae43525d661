/**
 * The worker thread that transforms large outbound messages (see
 * outbound-offload.ts). It runs below the event loop's priority: while it
 * encrypts 25 MB, small messages keep their latency. A new body stays here
 * until the event loop fetches it, a piece at a time, as the MTA takes it;
 * an encrypted one is kept as its ciphertext and each piece of its base64
 * written when asked for.
 */

import { base64LinePieces, base64LinesLength, bodyOf } from '../mime/index.js';
import { transformOutboundDeferred } from './outbound.js';
import {
  BODY_PIECE_BYTES,
  type BodyPiece,
  type BodyRequest,
  contextOf,
  type OutboundJob,
  type OutboundJobResult,
} from './outbound-job.js';
import type { EncodeLater } from './types.js';
import { own, workerThread } from './worker-thread.js';

const { port, collectGarbage } = workerThread();

/** New bodies not fetched yet, by job id, each as its pieces to come. */
const bodies = new Map<number, Iterator<Uint8Array>>();

function* copiedPieces(body: Buffer): Generator<Uint8Array> {
  for (let at = 0; at < body.length; at += BODY_PIECE_BYTES)
    yield own(body.subarray(at, at + BODY_PIECE_BYTES));
}

/** The header block and the body still to be handed over, or no body when it did not change. */
function output(
  message: Buffer | EncodeLater,
  original: Buffer,
): { head: Uint8Array; body?: { length: number; pieces: Iterator<Uint8Array> } } {
  if (!Buffer.isBuffer(message)) {
    // Encrypted: the base64 body is written a piece at a time, as it is fetched.
    const octets = message.der.reduce((n, d) => n + d.length, 0);
    return {
      head: own(message.head),
      body: {
        length: base64LinesLength(octets),
        pieces: base64LinePieces(message.der, BODY_PIECE_BYTES),
      },
    };
  }
  const body = bodyOf(message);
  const head = own(message.subarray(0, message.length - body.length));
  if (body.equals(bodyOf(original))) return { head };
  return { head, body: { length: body.length, pieces: copiedPieces(body) } };
}

async function run(job: OutboundJob): Promise<void> {
  const m = job.message;
  const message = Buffer.from(m.buffer, m.byteOffset, m.byteLength);
  const result = await transformOutboundDeferred(message, contextOf(job));
  if (!result.ok) {
    port.postMessage({ id: job.id, result } satisfies OutboundJobResult);
  } else {
    const { head, body } = output(result.message, message);
    if (body) bodies.set(job.id, body.pieces);
    const reply: OutboundJobResult = {
      id: job.id,
      result: { ...result, message: Buffer.from(head.buffer) },
      ...(body ? { bodyLength: body.length } : {}),
    };
    port.postMessage(reply, [head.buffer as ArrayBuffer]);
  }
  collectGarbage();
}

function answer(request: BodyRequest): void {
  const next = request.body === 'next' ? bodies.get(request.id)?.next() : undefined;
  if (!next || next.done) {
    if (bodies.delete(request.id)) collectGarbage();
    if (request.body === 'next')
      port.postMessage({ id: request.id, piece: new Uint8Array(0) } satisfies BodyPiece);
    return;
  }
  // Each piece owns its ArrayBuffer (made for it): transferred, not copied.
  const piece = next.value;
  port.postMessage({ id: request.id, piece } satisfies BodyPiece, [piece.buffer as ArrayBuffer]);
}

port.on('message', (m: OutboundJob | BodyRequest) => {
  if ('body' in m) answer(m);
  else void run(m);
});
