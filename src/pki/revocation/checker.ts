/**
 * Is this certificate revoked? Methods in the configured order
 * (DOMSEC_REVOCATION), the first definite answer (good or revoked) wins.
 * Answers are cached (the shared cache, so Redis serves every replica) until
 * the answer's nextUpdate, capped by a maximum; failures are cached briefly
 * so a dead responder is not asked for every message.
 */

import { createHash, type KeyObject } from 'node:crypto';
import type { Cache } from '../../cache/cache.js';
import type { CertificateInfo } from '../../cms/certificate.js';
import { pointersOf } from '../cert-pointers.js';
import type { HttpFetcher } from '../http-fetch.js';
import { coverageProblem } from './crl.js';
import type { CrlStore } from './crl-store.js';
import { judgeOcspResponse, ocspRequest } from './ocsp.js';

export type RevocationMethod = 'ocsp' | 'crl';

export type RevocationStatus =
  | {
      readonly status: 'good';
      readonly method: RevocationMethod;
      readonly source: string;
    }
  | {
      readonly status: 'revoked';
      readonly method: RevocationMethod;
      readonly source: string;
      readonly revokedAt: string;
      readonly reason?: string;
    }
  /**
   * Asked, and nobody knew the certificate: OCSP `unknown`, or CRLs that do
   * not cover it (another partition, CA certificates only), none to say more.
   */
  | { readonly status: 'unknown'; readonly detail: string }
  /** Could not find out: responders down, answers unusable. */
  | { readonly status: 'unavailable'; readonly detail: string }
  /** The certificate names no source for the enabled methods. */
  | { readonly status: 'not-published'; readonly detail: string };

export type RevocationObserver = (method: RevocationMethod | 'cache', result: string) => void;

export interface RevocationOptions {
  readonly methods: readonly RevocationMethod[];
  readonly cache: Cache;
  readonly crls: CrlStore;
  readonly fetch: HttpFetcher;
  readonly timeoutMs: number;
  /** Longest an answer is cached, whatever its nextUpdate says. */
  readonly maxTtlSeconds: number;
  /** How long an unknown/unavailable answer is cached. */
  readonly negativeTtlSeconds: number;
  /** Tolerated clock difference with responders and CRL issuers. */
  readonly skewMs?: number;
  /** A nonce-less OCSP answer without nextUpdate older than this is stale. */
  readonly maxOcspAgeMs?: number;
  readonly observe?: RevocationObserver;
}

interface Attempt {
  readonly result: RevocationStatus;
  readonly nextUpdate?: Date;
}

const CACHE_PREFIX = 'revocation:';

/**
 * A good CRL that does not answer for this certificate (another partition,
 * CA certificates only): the point has not spoken, it has not failed.
 */
class NotCovered extends Error {}

// Exporting and hashing an RSA key costs ~0.2 ms: once per issuer key, not per check.
const keyIds = new WeakMap<KeyObject, string>();
function issuerKeyId(key: KeyObject): string {
  let id = keyIds.get(key);
  if (!id) {
    id = createHash('sha256')
      .update(key.export({ type: 'spki', format: 'der' }))
      .digest('hex')
      .slice(0, 32);
    keyIds.set(key, id);
  }
  return id;
}

export class RevocationChecker {
  private readonly skewMs: number;

  constructor(private readonly opts: RevocationOptions) {
    this.skewMs = opts.skewMs ?? 5 * 60_000;
  }

  get enabled(): boolean {
    return this.opts.methods.length > 0;
  }

  async check(cert: CertificateInfo, issuer: CertificateInfo, at: Date): Promise<RevocationStatus> {
    const key = `${CACHE_PREFIX}${issuerKeyId(issuer.publicKey)}:${cert.serial.toString('hex')}`;
    const cached = await this.opts.cache.get(key);
    if (cached) {
      const status = JSON.parse(cached) as RevocationStatus;
      this.opts.observe?.('cache', status.status);
      return status;
    }
    const attempt = await this.ask(cert, issuer, at);
    await this.opts.cache.set(key, JSON.stringify(attempt.result), this.ttlFor(attempt, at));
    return attempt.result;
  }

  private ttlFor(attempt: Attempt, at: Date): number {
    const { status } = attempt.result;
    if (status !== 'good' && status !== 'revoked' && status !== 'not-published')
      return this.opts.negativeTtlSeconds;
    const untilNext = attempt.nextUpdate
      ? Math.floor((attempt.nextUpdate.getTime() - at.getTime()) / 1000)
      : this.opts.maxTtlSeconds;
    return Math.max(1, Math.min(untilNext, this.opts.maxTtlSeconds));
  }

  private async ask(cert: CertificateInfo, issuer: CertificateInfo, at: Date): Promise<Attempt> {
    const pointers = pointersOf(cert);
    const problems: string[] = [];
    let unknown: string | undefined;
    let asked = false;
    for (const method of this.opts.methods) {
      const urls = method === 'ocsp' ? pointers.ocsp : pointers.crl;
      for (const url of urls) {
        asked = true;
        try {
          const a =
            method === 'ocsp'
              ? await this.askOcsp(url, cert, issuer, at)
              : await this.askCrl(url, cert, issuer, at);
          this.opts.observe?.(method, a.result.status);
          if (a.result.status === 'unknown') {
            unknown ??= a.result.detail;
            break; // this method has spoken; the next method may know more
          }
          return a;
        } catch (err) {
          if (err instanceof NotCovered) {
            // Another point of the certificate may serve the right CRL.
            this.opts.observe?.(method, 'unknown');
            unknown ??= `${method} ${url}: ${err.message}`;
            continue;
          }
          this.opts.observe?.(method, 'error');
          problems.push(`${method} ${url}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
    if (!asked) {
      const names = { ocsp: 'OCSP responder', crl: 'CRL distribution point' };
      const wanted = this.opts.methods.map((m) => names[m]).join(' or ');
      return { result: { status: 'not-published', detail: `names no ${wanted}` } };
    }
    if (unknown) return { result: { status: 'unknown', detail: unknown } };
    return { result: { status: 'unavailable', detail: problems.join('; ') } };
  }

  private async askOcsp(
    url: string,
    cert: CertificateInfo,
    issuer: CertificateInfo,
    at: Date,
  ): Promise<Attempt> {
    const request = ocspRequest(cert, issuer);
    const body = await this.opts.fetch(url, {
      method: 'POST',
      body: request.der,
      contentType: 'application/ocsp-request',
      accept: 'application/ocsp-response',
      timeoutMs: this.opts.timeoutMs,
      maxBytes: 256 * 1024,
    });
    const answer = judgeOcspResponse(body, {
      cert,
      issuer,
      nonce: request.nonce,
      at,
      skewMs: this.skewMs,
    });
    const maxAge = this.opts.maxOcspAgeMs ?? 7 * 24 * 3600_000;
    if (
      !answer.nonceEchoed &&
      !answer.nextUpdate &&
      at.getTime() - answer.thisUpdate.getTime() > maxAge
    )
      throw new Error('response without nonce or nextUpdate is too old');
    const nextUpdate = answer.nextUpdate ? { nextUpdate: answer.nextUpdate } : {};
    if (answer.status === 'unknown')
      return {
        result: {
          status: 'unknown',
          detail: `OCSP responder ${url} does not know the certificate`,
        },
      };
    if (answer.status === 'revoked')
      return {
        result: {
          status: 'revoked',
          method: 'ocsp',
          source: url,
          revokedAt: answer.revokedAt.toISOString(),
          ...(answer.reason ? { reason: answer.reason } : {}),
        },
        ...nextUpdate,
      };
    return { result: { status: 'good', method: 'ocsp', source: url }, ...nextUpdate };
  }

  private async askCrl(
    url: string,
    cert: CertificateInfo,
    issuer: CertificateInfo,
    at: Date,
  ): Promise<Attempt> {
    const crl = await this.opts.crls.get(url);
    if (!crl.issuerDer.equals(cert.issuerDer)) throw new Error('CRL is from another issuer');
    if (!crl.signedBy(issuer.publicKey)) throw new Error('CRL signature does not verify');
    if (crl.thisUpdate.getTime() > at.getTime() + this.skewMs)
      throw new Error('CRL thisUpdate is in the future');
    if (crl.nextUpdate && crl.nextUpdate.getTime() < at.getTime() - this.skewMs)
      throw new Error(`CRL is stale (nextUpdate ${crl.nextUpdate.toISOString()})`);
    const point = pointersOf(cert).crlPoints.get(url) ?? [url];
    const notCovered = coverageProblem(crl, point, cert.x509.ca);
    if (notCovered) throw new NotCovered(notCovered);
    const nextUpdate = crl.nextUpdate ? { nextUpdate: crl.nextUpdate } : {};
    const entry = crl.lookup(cert.serial.toString('hex'));
    if (entry)
      return {
        result: {
          status: 'revoked',
          method: 'crl',
          source: url,
          revokedAt: entry.revokedAt.toISOString(),
          ...(entry.reason ? { reason: entry.reason } : {}),
        },
        ...nextUpdate,
      };
    return { result: { status: 'good', method: 'crl', source: url }, ...nextUpdate };
  }
}
