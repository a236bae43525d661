import { connect, createServer } from 'node:net';

/**
 * Ask the kernel for an unused TCP port on loopback.
 *
 * There is an unavoidable race between closing this socket and the real
 * listener binding the port; callers that can retry (startPostfix does) should.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: listener has no TCP address'));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** Whether something accepts on 127.0.0.1:`port`, or on the unix socket at `port` when it is a path. */
export function acceptsConnections(port: number | string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = typeof port === 'string' ? connect(port) : connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
