import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { PacketWriter } from '../../protocol/packet-writer.js';
import { encodeFilterPacket, type FilterPacket } from '../../protocol/replies.js';

/** A connected loopback pair: what `writer` writes arrives at `received()`. */
async function pair(): Promise<{ socket: Socket; received: () => Buffer; close(): void }> {
  const chunks: Buffer[] = [];
  const server = createServer((s) => s.on('data', (d: Buffer) => chunks.push(d)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', r));
  return {
    socket,
    received: () => Buffer.concat(chunks),
    close() {
      socket.destroy();
      server.close();
    },
  };
}

const packets: FilterPacket[] = [
  { type: 'addHeader', name: 'X-One', value: ' 1' },
  { type: 'replaceBody', chunk: Buffer.alloc(70_000, 0x61).subarray(0, 65_535) },
  { type: 'replaceBody', chunk: Buffer.from('tail\r\n') },
  { type: 'accept' },
];

describe('PacketWriter', () => {
  test('packets of one event-loop turn are corked together and arrive as encodeFilterPacket would write them', async () => {
    const p = await pair();
    try {
      const writer = new PacketWriter(p.socket, () => false);
      for (const packet of packets) writer.write(packet);
      assert.equal(p.socket.writableCorked, 1, 'held until the turn ends');
      await new Promise((r) => setImmediate(r));
      assert.equal(p.socket.writableCorked, 0);
      const expected = Buffer.concat(packets.map((x) => encodeFilterPacket(x)));
      for (let i = 0; i < 200 && p.received().length < expected.length; i++)
        await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(p.received(), expected);
    } finally {
      p.close();
    }
  });

  test('nothing is written once closed; writeAndWait then rejects', async () => {
    const p = await pair();
    try {
      let closed = false;
      const writer = new PacketWriter(p.socket, () => closed);
      closed = true;
      assert.equal(writer.write({ type: 'accept' }), true);
      await assert.rejects(writer.writeAndWait({ type: 'accept' }), /connection closed/);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(p.received().length, 0);
    } finally {
      p.close();
    }
  });
});
