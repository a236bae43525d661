/**
 * HTTP for revocation data (CRLs, OCSP) and issuer certificates: plain
 * http:// as PKIX publishes them (RFC 5280 4.2.1.13, RFC 6960 A.1), one
 * request per connection, a deadline for the whole exchange and a cap on the
 * body, so that a hanging or hostile server costs a bounded time and memory.
 */

import http from 'node:http';

export class FetchError extends Error {
  override readonly name = 'FetchError';
}

export interface FetchOptions {
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly method?: 'GET' | 'POST';
  readonly body?: Uint8Array;
  readonly contentType?: string;
  readonly accept?: string;
}

export type HttpFetcher = (url: string, opts: FetchOptions) => Promise<Buffer>;

/** GET or POST `url`; the body of a 200 answer, or a FetchError saying why not. */
export const httpFetch: HttpFetcher = (url, opts) =>
  new Promise<Buffer>((resolve, reject) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      reject(new FetchError(`not a URL: ${url}`));
      return;
    }
    if (target.protocol !== 'http:') {
      reject(new FetchError(`${url}: only http:// is fetched`));
      return;
    }
    const headers: Record<string, string | number> = { connection: 'close' };
    if (opts.accept) headers.accept = opts.accept;
    if (opts.body) {
      headers['content-type'] = opts.contentType ?? 'application/octet-stream';
      headers['content-length'] = opts.body.length;
    }
    let settled = false;
    const finish = (err: Error | undefined, body?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      if (err) reject(err);
      else resolve(body!);
    };
    const req = http.request(
      target,
      { method: opts.method ?? 'GET', headers, agent: false },
      (res) => {
        if (res.statusCode !== 200) {
          finish(new FetchError(`${url}: HTTP ${res.statusCode}`));
          return;
        }
        const declared = Number(res.headers['content-length'] ?? 0);
        if (declared > opts.maxBytes) {
          finish(new FetchError(`${url}: body of ${declared} bytes exceeds ${opts.maxBytes}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > opts.maxBytes) {
            finish(new FetchError(`${url}: body exceeds ${opts.maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => finish(undefined, Buffer.concat(chunks)));
        res.on('error', (err) => finish(new FetchError(`${url}: ${err.message}`)));
      },
    );
    const timer = setTimeout(
      () => finish(new FetchError(`${url}: no answer within ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
    req.on('error', (err: NodeJS.ErrnoException) =>
      finish(new FetchError(`${url}: ${err.code ?? err.message}`)),
    );
    req.end(opts.body);
  });
