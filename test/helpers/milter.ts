/** Starts an in-process milter server on a loopback port for tests. */

import {
  type ListenSpec,
  type MilterApplication,
  MilterClient,
  MilterServer,
  type ServerOptions,
} from '../../protocol/index.js';

export interface TestMilter {
  readonly server: MilterServer;
  readonly spec: ListenSpec;
  /** `inet:127.0.0.1:PORT`, for Postfix and miltertest. */
  readonly address: string;
  /** A connected client, already negotiated with the Postfix offer unless `negotiate` is false. */
  client(negotiate?: boolean): Promise<MilterClient>;
  close(): Promise<void>;
}

export async function startTestMilter(
  app: MilterApplication,
  options: ServerOptions = {},
): Promise<TestMilter> {
  const server = new MilterServer(app, options);
  const spec = await server.listen({ kind: 'inet', host: '127.0.0.1', port: 0 });
  const clients: MilterClient[] = [];
  return {
    server,
    spec,
    address: `inet:127.0.0.1:${spec.kind === 'inet' ? spec.port : 0}`,
    async client(negotiate = true) {
      const c = await MilterClient.connect(spec);
      clients.push(c);
      if (negotiate) await c.negotiate();
      return c;
    },
    async close() {
      for (const c of clients) c.destroy();
      await server.close(1000);
    },
  };
}
