/**
 * TCP peers that misbehave on purpose: one that never answers, one that answers
 * nonsense, one that resets every connection; and a counting proxy.
 */

import net from 'node:net';

export interface FakeServer {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Stops listening and drops every connection it still holds. */
  close(): Promise<void>;
}

/**
 * What to write back to each chunk received (nothing when undefined, a TCP
 * reset for 'reset'); one per connection.
 */
export type Responder = (chunk: Buffer) => Buffer | 'reset' | undefined;

/** Listens on a free loopback port; `connection()` makes the responder of each connection. */
export function fakeServer(connection: () => Responder): Promise<FakeServer> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const onData = connection();
    socket.on('data', (chunk: Buffer) => {
      const reply = onData(chunk);
      if (reply === 'reset') socket.resetAndDestroy();
      else if (reply && !socket.destroyed) socket.write(reply);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address() as net.AddressInfo;
      resolve({
        port: address.port,
        get accepted() {
          return accepted;
        },
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/** Accepts, reads, never says a word. */
export const hangingServer = () => fakeServer(() => () => undefined);

/** Answers whatever it is sent with `reply`. */
export const garbageServer = (reply: Buffer) => fakeServer(() => () => reply);

/** Accepts, reads the request, then resets the connection (RST): a peer that crashes on it. */
export const resettingServer = () => fakeServer(() => () => 'reset');

/** Forwards every connection to 127.0.0.1:`target`, counting them (who asked, and how often). */
export function tcpProxy(target: number): Promise<FakeServer> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        get accepted() {
          return accepted;
        },
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
