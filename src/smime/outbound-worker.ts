/**
 * The worker thread that transforms large outbound messages (see
 * outbound-offload.ts). It runs below the event loop's priority: while it
 * encrypts 25 MB, small messages keep their latency.
 */

import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { transformOutbound } from './outbound.js';
import {
  contextOf,
  type OutboundJob,
  type OutboundJobResult,
  transferable,
} from './outbound-job.js';

try {
  // On Linux this is the calling thread's niceness only: the event loop keeps its own.
  setPriority(10);
} catch {
  // Not permitted here: the worker still keeps the work off the event loop.
}

const port = parentPort!;
port.on('message', async (job: OutboundJob) => {
  const message = Buffer.from(job.message.buffer, job.message.byteOffset, job.message.byteLength);
  const result = await transformOutbound(message, contextOf(job));
  const reply: OutboundJobResult = { id: job.id, result, original: message };
  const transfer = transferable(message);
  // The result may be the message itself (already protected): one transfer of it is enough.
  if (result.ok && result.message.buffer !== message.buffer)
    transfer.push(...transferable(result.message));
  port.postMessage(reply, transfer);
});
