/**
 * A small real HTTP server on loopback for tests: serves the bytes put under
 * a path, and can be told to hang or answer garbage on a path.
 */

import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Route = Buffer | 'hang' | ((body: Buffer) => Buffer);

export interface HttpFiles {
  readonly port: number;
  url(path: string): string;
  set(path: string, route: Route): void;
  /** Requests seen per path. */
  readonly hits: Map<string, number>;
  stop(): Promise<void>;
}

export async function startHttpFiles(port = 0): Promise<HttpFiles> {
  const routes = new Map<string, Route>();
  const hits = new Map<string, number>();
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const route = routes.get(path);
      if (route === 'hang') return; // never answers
      if (!route) {
        res.writeHead(404).end();
        return;
      }
      const body = typeof route === 'function' ? route(Buffer.concat(chunks)) : route;
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = (server.address() as AddressInfo).port;
  return {
    port: actual,
    url: (path) => `http://127.0.0.1:${actual}${path}`,
    set: (path, route) => routes.set(path, route),
    hits,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
