/**
 * The HTTP endpoint: /metrics (Prometheus text), /healthz (the process
 * answers), /readyz (keys loaded and the milter listening; 503 with the
 * reasons otherwise).
 */

import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface Readiness {
  /** Empty when ready; otherwise what is missing, one reason per entry. */
  problems(): string[];
}

export interface HttpEndpoint {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

export async function startHttpEndpoint(
  host: string,
  port: number,
  registry: Registry,
  readiness: Readiness,
): Promise<HttpEndpoint> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      const problems = readiness.problems();
      res
        .writeHead(problems.length === 0 ? 200 : 503, { 'content-type': 'text/plain' })
        .end(problems.length === 0 ? 'ready\n' : `${problems.join('\n')}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return {
    server,
    port: typeof address === 'object' && address ? address.port : port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
