/**
 * An outbound transform as a message between threads: certificates travel
 * as DER (parsed again, from a cache, on the other side), keys as KeyObjects
 * (which postMessage clones), the message bytes transferred, not copied.
 */

import type { KeyObject } from 'node:crypto';
import { loadCertificate } from '../cms/certificate.js';
import type { MimeLimits } from '../mime/index.js';
import type { OutboundContext, OutboundOptions, TransformResult } from './types.js';

export interface OutboundJob {
  readonly id: number;
  readonly message: Buffer;
  readonly signer?: {
    readonly certificate: Buffer;
    readonly chain: readonly Buffer[];
    readonly privateKey: KeyObject;
    readonly extraCertificates?: readonly Buffer[];
  };
  readonly recipients: readonly {
    readonly certificate: Buffer;
    readonly capabilities?: readonly string[];
  }[];
  readonly options: OutboundOptions;
  readonly limits?: MimeLimits;
}

export interface OutboundJobResult {
  readonly id: number;
  readonly result: TransformResult;
  /** The message as sent in (it was transferred, so the sender no longer has it). */
  readonly original: Buffer;
}

export function jobOf(id: number, message: Buffer, ctx: OutboundContext): OutboundJob {
  const s = ctx.signer;
  return {
    id,
    message,
    ...(s
      ? {
          signer: {
            certificate: s.certificate.der,
            chain: s.chain.map((c) => c.der),
            privateKey: s.privateKey,
            ...(s.extraCertificates
              ? { extraCertificates: s.extraCertificates.map((c) => c.der) }
              : {}),
          },
        }
      : {}),
    recipients: ctx.recipients.map((r) => ({
      certificate: r.certificate.der,
      ...(r.capabilities ? { capabilities: r.capabilities } : {}),
    })),
    options: ctx.options,
    ...(ctx.limits ? { limits: ctx.limits } : {}),
  };
}

export function contextOf(job: OutboundJob): OutboundContext {
  const s = job.signer;
  return {
    ...(s
      ? {
          signer: {
            certificate: loadCertificate(Buffer.from(s.certificate)),
            chain: s.chain.map((d) => loadCertificate(Buffer.from(d))),
            privateKey: s.privateKey,
            ...(s.extraCertificates
              ? {
                  extraCertificates: s.extraCertificates.map((d) =>
                    loadCertificate(Buffer.from(d)),
                  ),
                }
              : {}),
          },
        }
      : {}),
    recipients: job.recipients.map((r) => ({
      certificate: loadCertificate(Buffer.from(r.certificate)),
      ...(r.capabilities ? { capabilities: r.capabilities } : {}),
    })),
    options: job.options,
    ...(job.limits ? { limits: job.limits } : {}),
  };
}

/** The ArrayBuffer to transfer when `b` owns all of it; otherwise it is copied. */
export function transferable(b: Buffer): ArrayBuffer[] {
  const ab = b.buffer;
  return ab instanceof ArrayBuffer && b.byteOffset === 0 && b.byteLength === ab.byteLength
    ? [ab]
    : [];
}
