/**
 * CRLs by distribution-point URL: fetched once, parsed once, kept until their
 * nextUpdate (capped), shared by concurrent look-ups while in flight. The
 * parsed index lives in this process only; the per-certificate answers go
 * to the shared cache (Redis) from the checker.
 */

import { type ParsedCrl, parseCrl } from './crl.js';

export type CrlFetcher = (url: string) => Promise<Buffer>;

interface Held {
  readonly crl: ParsedCrl;
  readonly expires: number;
}

export interface CrlStoreOptions {
  readonly fetch: CrlFetcher;
  /** Longest a CRL is kept, whatever its nextUpdate says. */
  readonly maxAgeMs: number;
  /** Most CRLs kept at once (least recently used leave first). */
  readonly capacity?: number;
  readonly now?: () => number;
}

export class CrlStore {
  private readonly held = new Map<string, Held>();
  private readonly inFlight = new Map<string, Promise<ParsedCrl>>();
  private readonly now: () => number;

  constructor(private readonly opts: CrlStoreOptions) {
    this.now = opts.now ?? Date.now;
  }

  async get(url: string): Promise<ParsedCrl> {
    const held = this.held.get(url);
    if (held && held.expires > this.now()) {
      this.held.delete(url);
      this.held.set(url, held); // most recently used last
      return held.crl;
    }
    let pending = this.inFlight.get(url);
    if (!pending) {
      pending = this.load(url).finally(() => this.inFlight.delete(url));
      this.inFlight.set(url, pending);
    }
    return pending;
  }

  /** Forget every CRL (the `certs purge` command, tests). */
  clear(): void {
    this.held.clear();
  }

  private async load(url: string): Promise<ParsedCrl> {
    const body = await this.opts.fetch(url);
    let crl: ParsedCrl;
    try {
      crl = parseCrl(body);
    } catch (err) {
      // The parser speaks of DER offsets; say first that what came was no usable CRL.
      const why = err instanceof Error ? err.message : String(err);
      throw new Error(`not a usable CRL (${body.length} bytes): ${why}`);
    }
    const now = this.now();
    const until = crl.nextUpdate ? crl.nextUpdate.getTime() : now + this.opts.maxAgeMs;
    this.held.set(url, { crl, expires: Math.min(until, now + this.opts.maxAgeMs) });
    const capacity = this.opts.capacity ?? 64;
    while (this.held.size > capacity) this.held.delete(this.held.keys().next().value!);
    return crl;
  }
}
