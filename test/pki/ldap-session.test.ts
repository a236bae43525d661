// The framer between a socket and ldapts, on real loopback sockets: what the
// 'data' listener sees is whole LDAP messages, however the bytes arrive.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AnswerFramer } from '../../src/pki/ldap-session.js';
import { until } from '../helpers/wait.js';

/** An LDAP-shaped message: SEQUENCE with `size` content octets (long form when needed). */
function message(size: number, fill: number): Buffer {
  const length =
    size < 0x80
      ? Buffer.from([size])
      : size < 0x10000
        ? Buffer.from([0x82, size >> 8, size & 0xff])
        : Buffer.from([0x84, size >>> 24, (size >> 16) & 0xff, (size >> 8) & 0xff, size & 0xff]);
  return Buffer.concat([Buffer.from([0x30]), length, Buffer.alloc(size, fill)]);
}

interface Seen {
  readonly chunks: Buffer[];
  readonly framer: AnswerFramer;
  readonly socket: net.Socket;
  closed: boolean;
}

describe('AnswerFramer', () => {
  let server: net.Server;
  let port: number;
  /** What the server writes to the next connection, piece by piece, with a pause between. */
  let script: { pieces: Buffer[]; pauseMs: number } = { pieces: [], pauseMs: 0 };

  before(async () => {
    server = net.createServer(async (socket) => {
      socket.on('error', () => {});
      const { pieces, pauseMs } = script;
      for (const p of pieces) {
        if (socket.destroyed) return;
        socket.write(p);
        await sleep(pauseMs);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });

  after(() => new Promise<void>((r) => server.close(() => r())));

  async function receive(pieces: Buffer[], maxBytes: number, pauseMs = 2): Promise<Seen> {
    script = { pieces, pauseMs };
    const framer = new AnswerFramer(maxBytes);
    const socket = framer.attach(net.connect(port, '127.0.0.1'));
    const seen: Seen = { chunks: [], framer, socket, closed: false };
    socket.on('data', (c: Buffer) => seen.chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      seen.closed = true;
    });
    return seen;
  }

  /** Cuts `bytes` into pieces of the given sizes, repeated. */
  function cut(bytes: Buffer, sizes: number[]): Buffer[] {
    const out: Buffer[] = [];
    for (let at = 0, i = 0; at < bytes.length; i++) {
      const n = sizes[i % sizes.length]!;
      out.push(bytes.subarray(at, at + n));
      at += n;
    }
    return out;
  }

  it('messages cut anywhere, headers included, come out whole and in order', async () => {
    const messages = [message(3, 1), message(200, 2), message(70_000, 3), message(0, 4)];
    const all = Buffer.concat(messages);
    const seen = await receive(cut(all, [1, 2, 5, 1, 3, 40_000]), 1 << 20);
    await until(() => seen.chunks.length === messages.length, 5000, 'every message');
    assert.deepEqual(seen.chunks, messages);
    assert.equal(seen.framer.problem, undefined);
    seen.socket.destroy();
  });

  it('several messages in one chunk are handed on one by one', async () => {
    const messages = [message(10, 1), message(300, 2), message(5, 3)];
    const seen = await receive([Buffer.concat(messages)], 1 << 20);
    await until(() => seen.chunks.length === 3, 5000, 'three messages');
    assert.deepEqual(seen.chunks, messages);
    seen.socket.destroy();
  });

  it('a large message arrives as one chunk, after all its pieces', async () => {
    const big = message(8 << 20, 7);
    const seen = await receive(cut(big, [64 * 1024]), 16 << 20, 0);
    await until(() => seen.chunks.length === 1, 10_000, 'the message');
    assert.ok(seen.chunks[0]!.equals(big));
    seen.socket.destroy();
  });

  it('a second message that is not LDAP stops the connection, the first delivered', async () => {
    const seen = await receive([message(4, 1), Buffer.from('garbage')], 1 << 20);
    await until(() => seen.closed, 5000, 'closed');
    assert.equal(seen.chunks.length, 1);
    assert.equal(seen.framer.problem, 'the answer is not LDAP');
  });

  it('an indefinite length (0x80) is not LDAP', async () => {
    const seen = await receive([Buffer.from('3080020101', 'hex')], 1 << 20);
    await until(() => seen.closed, 5000, 'closed');
    assert.equal(seen.framer.problem, 'the answer is not LDAP');
    assert.equal(seen.chunks.length, 0);
  });

  it('the byte budget counts every message', async () => {
    const seen = await receive([message(600, 1), message(600, 2)], 1000, 50);
    await until(() => seen.closed, 5000, 'closed');
    assert.equal(seen.framer.problem, 'the answer exceeds 1000 bytes');
    assert.equal(seen.chunks.length, 1);
  });
});
