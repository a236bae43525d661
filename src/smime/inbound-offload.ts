/**
 * Large inbound messages are decrypted and verified in a worker thread of
 * lower priority, as large outbound ones are protected (outbound-offload.ts):
 * a 6 MB message carrying 5 000 certificates held the event loop for
 * 7.8 s, and hashing, decrypting and parsing tens of megabytes still take
 * tens of milliseconds however well bounded. The result is the in-process
 * transform's: the worker runs transformInbound on the same context, and
 * every signer certificate is judged here, by the context's validator
 * (path building, revocation with its network look-ups and cache), at the
 * worker's request.
 */

import type { KeyObject } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import type { CertificateInfo } from '../cms/certificate.js';
import type { DecryptionKey } from '../cms/decrypt.js';
import type { CertificateValidator } from '../cms/verify.js';
import {
  fromWireSliced,
  type InboundJob,
  type InboundJobResult,
  type KeyRef,
  sharedCopy,
  toWire,
  type ValidateAnswer,
  type ValidateRequest,
} from './inbound-job.js';
import { OffloadWorker, workerFailure } from './offload.js';
import type { InboundContext, TransformResult } from './types.js';
import { asBuffer, own } from './worker-thread.js';

/** Each private key's number, the same for every worker. */
const keyNumbers = new WeakMap<KeyObject, number>();
let nextKeyNumber = 1;

function keyNumber(key: KeyObject): number {
  let n = keyNumbers.get(key);
  if (n === undefined) {
    n = nextKeyNumber++;
    keyNumbers.set(key, n);
  }
  return n;
}

interface RunningJob {
  /** What the job was given: its result when the worker left the message as it was. */
  readonly message: Buffer;
  readonly validator: CertificateValidator | undefined;
}

export class InboundWorker extends OffloadWorker<TransformResult> {
  private readonly jobs = new Map<number, RunningJob>();
  /** Numbers of the private keys the current worker holds. */
  private readonly keysSent = new Set<number>();

  constructor() {
    super(new URL('./inbound-worker.js', import.meta.url));
  }

  /**
   * transformInbound in the worker. The message is copied (the caller keeps
   * it, unchanged) unless it is in shared memory already; the result's
   * message comes back by transfer. Never rejects: a dead worker is an
   * 'internal' failure.
   */
  async transform(message: Buffer, ctx: InboundContext): Promise<TransformResult> {
    const { keys, validator, ...rest } = ctx;
    let shared: Uint8Array;
    try {
      // A message taken into shared memory (ReceivedMessage.take) is read there.
      shared = message.buffer instanceof SharedArrayBuffer ? message : await sharedCopy(message);
    } catch (err) {
      return workerFailure('inbound', err);
    }
    return this.submit((worker, id) => {
      const sending = keys.map((k) => this.keyRef(k));
      const job: InboundJob = {
        id,
        message: shared,
        keys: sending,
        validate: validator !== undefined,
        context: toWire(rest),
      };
      worker.postMessage(job);
      for (const k of sending) this.keysSent.add(k.key);
      this.jobs.set(id, { message, validator });
    });
  }

  protected override received(w: Worker, message: unknown): void {
    const m = message as InboundJobResult | ValidateRequest;
    if ('validate' in m) void this.validate(w, m);
    else void this.done(m);
  }

  protected override failed(err: unknown): TransformResult {
    return workerFailure('inbound', err);
  }

  protected override lost(): void {
    this.jobs.clear();
    this.keysSent.clear();
  }

  private keyRef(k: DecryptionKey): KeyRef {
    const key = keyNumber(k.privateKey);
    return {
      certificate: own(k.certificate.der),
      key,
      ...(this.keysSent.has(key) ? {} : { privateKey: k.privateKey }),
    };
  }

  private async done(m: InboundJobResult): Promise<void> {
    const job = this.jobs.get(m.id);
    this.jobs.delete(m.id);
    if (!job) return;
    let r: TransformResult;
    try {
      r = await fromWireSliced<TransformResult>(m.result);
    } catch (err) {
      r = workerFailure('inbound', err);
    }
    this.finish(m.id, r.ok ? { ...r, message: m.message ? asBuffer(m.message) : job.message } : r);
  }

  /** The verdict on a signer certificate, asked for by the worker. */
  private async validate(w: Worker, request: ValidateRequest): Promise<void> {
    let answer: ValidateAnswer;
    try {
      const validator = this.jobs.get(request.id)?.validator;
      if (!validator) throw new Error('no validator for this message');
      const [leaf, ...pool] = await fromWireSliced<CertificateInfo[]>(
        [request.leaf, ...request.pool].map((c) => ({ $certificate: c })),
      );
      const verdict = await validator.validate(leaf!, pool, request.at);
      answer = { validated: request.validate, verdict: toWire(verdict) };
    } catch (err) {
      answer = {
        validated: request.validate,
        error: err instanceof Error ? err.message : String(err),
      };
    }
    if (this.isCurrent(w)) w.postMessage(answer);
  }
}
