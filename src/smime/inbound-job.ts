/**
 * An inbound transform as messages between threads. Certificates travel as
 * DER wherever they are (context, chain verdicts, the report) and are
 * loaded again on the other side (from its cache: the same few partner
 * certificates every time); private keys as KeyObjects, each sent to a
 * worker once and named by a number after that; the message in a
 * SharedArrayBuffer, copied into it a slice per turn of the event loop, and
 * the new message transferred back. Path validation (revocation, network,
 * cache) stays on the event loop: the worker asks for each verdict.
 */

import { type KeyObject, X509Certificate } from 'node:crypto';
import { type CertificateInfo, loadCertificate } from '../cms/certificate.js';
import { eachSlice, nextTurn } from '../util/slices.js';
import { asBuffer, own } from './worker-thread.js';

/** One of our decryption keys: its certificate, and its private key the first time the worker sees it. */
export interface KeyRef {
  readonly certificate: Uint8Array;
  readonly key: number;
  readonly privateKey?: KeyObject;
}

export interface InboundJob {
  readonly id: number;
  /** Over a SharedArrayBuffer: read by the worker, never written. */
  readonly message: Uint8Array;
  readonly keys: readonly KeyRef[];
  /** Whether signer certificates are validated (through ValidateRequest). */
  readonly validate: boolean;
  /** The rest of the InboundContext, in wire form (toWire). */
  readonly context: unknown;
}

/** The worker asks the event loop to validate a signer's certificate for job `id`. */
export interface ValidateRequest {
  readonly id: number;
  readonly validate: number;
  readonly leaf: Uint8Array;
  readonly pool: readonly Uint8Array[];
  readonly at: Date;
}

/** The ChainVerdict (wire form), or why the validator threw. */
export interface ValidateAnswer {
  readonly validated: number;
  readonly verdict?: unknown;
  readonly error?: string;
}

export interface InboundJobResult {
  readonly id: number;
  /** The TransformResult in wire form, without its message. */
  readonly result: unknown;
  /** The new message (transferred); absent when failed or when it is the one sent in. */
  readonly message?: Uint8Array;
}

/** A certificate in wire form. */
interface WireCertificate {
  readonly $certificate: Uint8Array;
}

function isCertificate(v: object): v is CertificateInfo {
  const c = v as Partial<CertificateInfo>;
  return c.x509 instanceof X509Certificate && Buffer.isBuffer(c.der);
}

/**
 * `v` with every CertificateInfo in it as its DER, and bytes copied out of
 * whatever larger buffer they are a view of (a clone would carry all of it):
 * the rest is what the structured clone carries (plain data, Dates).
 */
export function toWire(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || v instanceof Date) return v;
  if (v instanceof Uint8Array) return own(v);
  if (Array.isArray(v)) return v.map(toWire);
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, toWire(x)]));
  if (isCertificate(v)) return { $certificate: own(v.der) } satisfies WireCertificate;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toWire(x)]));
}

type Load = (der: Uint8Array) => CertificateInfo;

const load: Load = (der) => loadCertificate(asBuffer(der));

/** toWire undone: certificates loaded, bytes as Buffers again. */
export function fromWire<T>(v: unknown): T {
  return revive(v, load) as T;
}

/**
 * fromWire on the event loop: a new certificate is a parse of about a
 * millisecond, and a report may name 32 of them (a message's certificate
 * set, chosen by its sender): one is loaded per turn.
 */
export async function fromWireSliced<T>(v: unknown): Promise<T> {
  const loaded = new Map<Uint8Array, CertificateInfo>();
  for (const der of certificatesIn(v, [])) {
    loaded.set(der, load(der));
    await nextTurn();
  }
  return revive(v, (der) => loaded.get(der) ?? load(der)) as T;
}

function certificatesIn(v: unknown, out: Uint8Array[]): Uint8Array[] {
  if (typeof v !== 'object' || v === null || v instanceof Date || v instanceof Uint8Array)
    return out;
  if ('$certificate' in v) out.push((v as WireCertificate).$certificate);
  else for (const x of v instanceof Map ? v.values() : Object.values(v)) certificatesIn(x, out);
  return out;
}

function revive(v: unknown, load: Load): unknown {
  if (typeof v !== 'object' || v === null || v instanceof Date) return v;
  if (v instanceof Uint8Array) return asBuffer(v);
  if (Array.isArray(v)) return v.map((x) => revive(x, load));
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, revive(x, load)]));
  if ('$certificate' in v) return load((v as WireCertificate).$certificate);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, revive(x, load)]));
}

/** `message` copied into shared memory a slice per turn (one 64 MB copy would stall the loop). */
export async function sharedCopy(message: Buffer): Promise<Uint8Array> {
  const shared = new Uint8Array(new SharedArrayBuffer(message.length));
  let at = 0;
  await eachSlice(message, (slice) => {
    shared.set(slice, at);
    at += slice.length;
  });
  return shared;
}
