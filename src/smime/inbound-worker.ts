/**
 * The worker thread that decrypts and verifies large inbound messages (see
 * inbound-offload.ts), below the event loop's priority. Each signer
 * certificate's verdict is asked of the event loop, where the validator
 * and its revocation look-ups live.
 */

import type { KeyObject } from 'node:crypto';
import { type CertificateInfo, loadCertificate } from '../cms/certificate.js';
import type { DecryptionKey } from '../cms/decrypt.js';
import type { CertificateValidator, ChainVerdict } from '../cms/verify.js';
import { transformInbound } from './inbound.js';
import {
  fromWire,
  type InboundJob,
  type InboundJobResult,
  type KeyRef,
  toWire,
  type ValidateAnswer,
  type ValidateRequest,
} from './inbound-job.js';
import { failure, reportBuilder } from './results.js';
import type { InboundContext, TransformResult } from './types.js';
import { asBuffer, own, transferable, workerThread } from './worker-thread.js';

const { port, collectGarbage } = workerThread();

/** Our private keys by number, as the event loop sent them (once each). */
const privateKeys = new Map<number, KeyObject>();

/** Verdicts asked for and not answered yet. */
const asked = new Map<number, { resolve(v: ChainVerdict): void; reject(err: Error): void }>();
let nextQuestion = 1;

/**
 * The certificates of `pool` a path from `leaf` can use: its issuer's,
 * theirs, and so on. Both validators (AnchorValidator, the path builder of
 * PathValidator) link a certificate to its issuer by the DER of the names,
 * so no other one can be on a path; the event loop parses only these (a
 * message may carry 32 certificates of its sender's choosing).
 */
function issuersIn(leaf: CertificateInfo, pool: readonly CertificateInfo[]): CertificateInfo[] {
  const out: CertificateInfo[] = [];
  const names = [leaf.issuerDer];
  for (let i = 0; i < names.length; i++) {
    for (const c of pool) {
      if (out.includes(c) || !c.subjectDer.equals(names[i]!)) continue;
      out.push(c);
      names.push(c.issuerDer);
    }
  }
  return out;
}

function validatorFor(id: number): CertificateValidator {
  return {
    validate: (leaf, pool, at) =>
      new Promise((resolve, reject) => {
        const validate = nextQuestion++;
        asked.set(validate, { resolve, reject });
        port.postMessage({
          id,
          validate,
          leaf: own(leaf.der),
          pool: issuersIn(leaf, pool).map((c) => own(c.der)),
          at,
        } satisfies ValidateRequest);
      }),
  };
}

function keysOf(refs: readonly KeyRef[]): DecryptionKey[] {
  return refs.map((r) => {
    if (r.privateKey) privateKeys.set(r.key, r.privateKey);
    const privateKey = privateKeys.get(r.key);
    if (!privateKey) throw new Error(`private key ${r.key} was never sent to the worker`);
    return { certificate: loadCertificate(asBuffer(r.certificate)), privateKey };
  });
}

async function transform(job: InboundJob): Promise<{ result: TransformResult; input: Buffer }> {
  // A copy of its own, off the shared memory the event loop filled.
  const input = Buffer.from(job.message);
  try {
    const ctx: InboundContext = {
      ...fromWire<Omit<InboundContext, 'keys' | 'validator'>>(job.context),
      keys: keysOf(job.keys),
      ...(job.validate ? { validator: validatorFor(job.id) } : {}),
    };
    return { result: await transformInbound(input, ctx), input };
  } catch (err) {
    return { result: failure(reportBuilder('inbound'), err), input };
  }
}

async function run(job: InboundJob): Promise<void> {
  const { result, input } = await transform(job);
  // The message travels beside the rest (transferred), or not at all.
  const reply = toWire(result.ok ? { ...result, message: undefined } : result);
  if (!result.ok || result.message === input) {
    // Failed, or left as it came: the event loop has that message.
    port.postMessage({ id: job.id, result: reply } satisfies InboundJobResult);
  } else {
    const out = result.message;
    const message = transferable(out).length > 0 ? out : own(out);
    port.postMessage(
      { id: job.id, result: reply, message } satisfies InboundJobResult,
      transferable(message),
    );
  }
  collectGarbage();
}

function answered(a: ValidateAnswer): void {
  const waiter = asked.get(a.validated);
  asked.delete(a.validated);
  if (a.error !== undefined) waiter?.reject(new Error(a.error));
  else waiter?.resolve(fromWire<ChainVerdict>(a.verdict));
}

port.on('message', (m: InboundJob | ValidateAnswer) => {
  if ('validated' in m) answered(m);
  else void run(m);
});
