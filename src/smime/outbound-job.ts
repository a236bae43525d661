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

/**
 * What the worker answers a job with. A successful result's `message` is
 * the output's header block (blank line included); a new body stays in the
 * worker and is fetched a piece at a time (BodyRequest) as the MTA takes
 * it: the event loop holds a piece per message, not the whole new body
 * (34 MB for a 25 MB message), however many large messages are under way.
 */
export interface OutboundJobResult {
  readonly id: number;
  readonly result: TransformResult;
  /** Bytes of the new body kept in the worker; absent when the body is the one sent in. */
  readonly bodyLength?: number;
}

/** Asks for the next piece of a job's new body, or (`release`) lets it go. */
export interface BodyRequest {
  readonly id: number;
  readonly body: 'next' | 'release';
}

/** A piece of a new body; empty once all was sent (the worker has then let it go). */
export interface BodyPiece {
  readonly id: number;
  readonly piece: Uint8Array;
}

/** Pieces of a new body cross between the threads in this size. */
export const BODY_PIECE_BYTES = 1024 * 1024;

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
