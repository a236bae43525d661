/**
 * The milter's own bounds, at the limit and one past it: the frame size
 * (DEFAULT_MAX_FRAME), a length field of 2^31 (refused before anything is
 * buffered), the session's read-ahead (maxQueuedBytes: the socket is paused)
 * and the gateway's message size (maxMessageBytes: the body is dropped as it
 * arrives, the message ends as an internal error).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import {
  Cmd,
  DEFAULT_MAX_FRAME,
  Decisions,
  decodeFilterPacket,
  encodeCommand,
  encodeFrame,
  type Frame,
  FrameDecoder,
  type MilterApplication,
  MilterProtocolError,
  POSTFIX_OFFER,
} from '../../protocol/index.js';
import { ReceivedMessage } from '../../src/gateway/message.js';
import { DEFAULT_MIME_LIMITS } from '../../src/mime/index.js';
import { type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { runMessage, startGatewayMilter } from '../helpers/gateway-app.js';
import { startTestMilter, type TestMilter } from '../helpers/milter.js';

const MiB = 1024 * 1024;
const protocolError = (e: unknown) => e instanceof MilterProtocolError;

/** A frame header announcing `length` (command byte included), then the command byte. */
function header(length: number, cmd: number = Cmd.BODY): Buffer {
  const b = Buffer.alloc(5);
  b.writeUInt32BE(length >>> 0, 0);
  b[4] = cmd;
  return b;
}

/** A raw connection: write, collect reply frames, see whether the server closed. */
async function raw(milter: TestMilter) {
  assert.ok(milter.spec.kind === 'inet');
  const socket = net.connect(milter.spec.port, '127.0.0.1');
  const decoder = new FrameDecoder(1 << 24);
  const replies: Frame[] = [];
  let closed = false;
  socket.on('data', (c: Buffer) => replies.push(...decoder.push(c)));
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
  });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return {
    socket,
    replies,
    get closed() {
      return closed;
    },
    /** Writes, waiting for the kernel to take it when Node's buffer is full. */
    async write(bytes: Buffer): Promise<void> {
      if (!socket.write(bytes)) await new Promise((r) => socket.once('drain', r));
    },
    async waitFor(test: () => boolean, ms = 5000): Promise<boolean> {
      for (let waited = 0; !test() && waited < ms; waited += 10) await sleep(10);
      return test();
    },
  };
}

describe('bounds: milter frames and session', () => {
  let released: () => void = () => {};
  const app: MilterApplication = {
    capabilities: {},
    openConnection: () => ({
      transaction: () => ({
        body: (chunk) =>
          chunk[0] === 0x77
            ? new Promise<undefined>((r) => (released = () => r(undefined)))
            : undefined,
        endOfMessage: () => Decisions.accept,
      }),
    }),
  };
  let milter: TestMilter;
  before(async () => {
    milter = await startTestMilter(app, { stageTimeoutMs: 30_000 });
  });
  after(async () => {
    released();
    await milter?.close();
  });

  test('decoder: DEFAULT_MAX_FRAME (1 MiB + 1 KiB) is accepted, one byte more refused at its header', () => {
    assert.equal(DEFAULT_MAX_FRAME, 1024 * 1024 + 1024);
    const d = new FrameDecoder();
    const at = encodeFrame(Cmd.BODY, Buffer.alloc(DEFAULT_MAX_FRAME - 1));
    const frames = d.push(at);
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.data.length, DEFAULT_MAX_FRAME - 1);
    assert.throws(() => new FrameDecoder().push(header(DEFAULT_MAX_FRAME + 1)), protocolError);
  });

  test('decoder: a length of 2^31 or 2^32-1 is refused from its 4 bytes, nothing allocated', () => {
    for (const length of [2 ** 31, 2 ** 32 - 1]) {
      const d = new FrameDecoder();
      const before = process.memoryUsage().arrayBuffers;
      assert.throws(
        () => d.push(header(length).subarray(0, 4)),
        (e: unknown) => protocolError(e) && /exceeds the limit of 1049600 bytes/.test(String(e)),
      );
      assert.ok(d.pendingBytes <= 4);
      assert.ok(process.memoryUsage().arrayBuffers - before < MiB);
    }
  });

  test('socket: a frame of exactly the limit is answered, one byte more closes the connection', async () => {
    const c = await raw(milter);
    await c.write(encodeCommand({ type: 'optneg', ...POSTFIX_OFFER }));
    await c.write(encodeCommand({ type: 'mail', address: '<a@b>', args: [] }));
    await c.write(encodeFrame(Cmd.BODY, Buffer.alloc(DEFAULT_MAX_FRAME - 1)));
    assert.ok(await c.waitFor(() => c.replies.length >= 3), `${c.replies.length} replies`);
    assert.deepEqual(decodeFilterPacket(c.replies[2]!), Decisions.continue);
    await c.write(header(DEFAULT_MAX_FRAME + 1));
    assert.ok(await c.waitFor(() => c.closed), 'closed by the server');
  });

  test('socket: a 2^31 length field closes the connection at once, without buffering', async () => {
    const c = await raw(milter);
    await c.write(encodeCommand({ type: 'optneg', ...POSTFIX_OFFER }));
    const before = process.memoryUsage().arrayBuffers;
    await c.write(header(2 ** 31));
    assert.ok(await c.waitFor(() => c.closed), 'closed by the server');
    assert.ok(process.memoryUsage().arrayBuffers - before < MiB);
  });

  test('session: while a handler works, read-ahead stops near maxQueuedBytes (4 MiB)', async (t) => {
    const c = await raw(milter);
    await c.write(encodeCommand({ type: 'optneg', ...POSTFIX_OFFER }));
    await c.write(encodeCommand({ type: 'mail', address: '<a@b>', args: [] }));
    await c.write(encodeFrame(Cmd.BODY, Buffer.from('w'))); // blocks in the handler
    // Write 64 KiB body frames until the writes stop draining: the server stopped reading.
    const chunk = encodeFrame(Cmd.BODY, Buffer.alloc(65535, 'x'));
    let written = 0;
    for (; written < 256 * MiB; written += chunk.length) {
      if (!c.socket.write(chunk)) {
        const drained = await Promise.race([
          new Promise((r) => c.socket.once('drain', () => r(true))),
          sleep(500).then(() => false),
        ]);
        if (!drained) break;
      }
    }
    t.diagnostic(
      `the client could write ${(written / MiB).toFixed(1)} MiB before the server stopped reading`,
    );
    // 4 MiB queued, plus what the kernel buffers on both ends of a loopback socket.
    assert.ok(written < 40 * MiB, `${(written / MiB).toFixed(0)} MiB accepted while blocked`);
    released();
    c.socket.destroy();
  });
});

describe('bounds: gateway message size (maxMessageBytes)', () => {
  let netPki: DomainPki;
  const LIMIT = 256 * 1024;
  let milter: TestMilter;
  let accepting: TestMilter;
  before(async () => {
    netPki = await generateDomainPki('example.net');
    // Set as an administrator would: DOMSEC_MAX_MESSAGE_BYTES, with a unit.
    const env = {
      DOMSEC_TRUSTED_NETWORKS: '192.0.2.0/24',
      DOMSEC_AUTHSERV_ID: 'mx.example.net',
      DOMSEC_MAX_MESSAGE_BYTES: '256k',
    };
    milter = await startGatewayMilter('example.net', netPki, env);
    accepting = await startGatewayMilter('example.net', netPki, {
      ...env,
      DOMSEC_ON_INTERNAL_ERROR: 'accept',
    });
  });
  after(async () => {
    await milter?.close();
    await accepting?.close();
  });

  /** A plain message of exactly `size` bytes, with a spoofed Authentication-Results of ours. */
  function message(size: number): Buffer {
    const head = Buffer.from(
      'From: a@example.org\r\nTo: b@example.net\r\nAuthentication-Results: mx.example.net; smime=pass\r\nSubject: size\r\n\r\n',
    );
    const body = Buffer.alloc(size - head.length, 'x');
    for (let i = 998; i < body.length; i += 1000) body.write('\r\n', i);
    return Buffer.concat([head, body]);
  }
  const inbound = { from: '<a@example.org>', rcpts: ['<b@example.net>'], address: '198.51.100.7' };
  const outbound = { from: '<b@example.net>', rcpts: ['<a@example.org>'], address: '192.0.2.5' };

  test('ReceivedMessage keeps nothing of the body past its limit, however much arrives', () => {
    const m = new ReceivedMessage(1000, true);
    m.addHeader('Subject', Buffer.from(' x'));
    m.addBody(Buffer.alloc(986)); // "Subject: x" CRLF (12) + blank line (2) + 986
    assert.equal(m.size, 1000);
    assert.equal(m.oversized, false);
    assert.equal(m.assemble().length, 1000);
    m.addBody(Buffer.alloc(1));
    assert.equal(m.oversized, true);
    for (let i = 0; i < 100; i++) m.addBody(Buffer.alloc(MiB));
    assert.equal(m.heldBytes, 0);
    assert.equal(m.size, 1001 + 100 * MiB);
    assert.throws(() => m.assemble());
    assert.equal(DEFAULT_MIME_LIMITS.maxSize, 64 * MiB, 'the default limit');
  });

  test('ReceivedMessage counts exactly the bytes it assembles (any header values, line ends)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.stringMatching(/^[A-Za-z-]{1,12}$/),
            fc.array(fc.constantFrom(' ', 'v', '\n', '\r\n', '\r', '\t', '\xe9')),
          ),
          { maxLength: 8 },
        ),
        fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 4 }),
        fc.boolean(),
        (fields, chunks, leadingSpace) => {
          const m = new ReceivedMessage(Number.MAX_SAFE_INTEGER, leadingSpace);
          for (const [name, value] of fields)
            m.addHeader(name, Buffer.from(value.join(''), 'latin1'));
          for (const c of chunks) m.addBody(Buffer.from(c));
          assert.equal(m.assemble().length, m.size);
        },
      ),
      { numRuns: 500 },
    );
  });

  test('inbound at the limit is processed; one byte more ends as an internal error (tempfail)', async () => {
    const at = await runMessage(milter, message(LIMIT), inbound);
    assert.deepEqual(at.decision, Decisions.accept);
    assert.ok(
      at.edits.some((e) => e.type === 'insertHeader' && /smime=none/.test(String(e.value))),
    );
    const past = await runMessage(milter, message(LIMIT + 1), inbound);
    assert.equal(past.decision?.type, 'replyCode');
    assert.match(
      JSON.stringify(past.decision),
      new RegExp(
        `451.*internal-error: message of ${LIMIT + 1} bytes exceeds the limit of ${LIMIT} bytes`,
      ),
    );
    assert.deepEqual(past.edits, []);
  });

  test('inbound past the limit with ON_INTERNAL_ERROR=accept: delivered, spoofed results replaced by temperror', async () => {
    const past = await runMessage(accepting, message(LIMIT + 1), inbound);
    assert.deepEqual(past.decision, Decisions.accept);
    assert.ok(
      past.edits.some(
        (e) => e.type === 'changeHeader' && e.name === 'Authentication-Results' && e.value === '',
      ),
      JSON.stringify(past.edits),
    );
    const ar = past.edits.find((e) => e.type === 'insertHeader');
    assert.match(String(ar && 'value' in ar ? ar.value : ''), /smime=temperror/);
    assert.ok(!past.edits.some((e) => e.type === 'replaceBody'));
  });

  test('outbound past the limit ends as an internal error too', async () => {
    const past = await runMessage(milter, message(LIMIT + 1), outbound);
    assert.match(JSON.stringify(past.decision), /451.*exceeds the limit/);
  });

  test('a 256 MiB body past a 256 KiB limit: the gateway holds none of it', async (t) => {
    // Raw protocol, written with back-pressure, so the client side buffers nothing either.
    assert.ok(milter.spec.kind === 'inet');
    const c = net.connect(milter.spec.port, '127.0.0.1');
    c.on('error', () => {});
    const decoder = new FrameDecoder(1 << 24);
    const replies: Frame[] = [];
    c.on('data', (b: Buffer) => replies.push(...decoder.push(b)));
    await new Promise<void>((r) => c.once('connect', () => r()));
    const write = async (b: Buffer) => {
      if (!c.write(b)) await new Promise((r) => c.once('drain', r));
    };
    await write(encodeCommand({ type: 'optneg', ...POSTFIX_OFFER }));
    await write(
      encodeCommand({
        type: 'connect',
        hostname: 'x',
        family: 'inet',
        port: 25,
        address: '198.51.100.7',
      }),
    );
    await write(encodeCommand({ type: 'mail', address: '<a@example.org>', args: [] }));
    await write(encodeCommand({ type: 'rcpt', address: '<b@example.net>', args: [] }));
    await write(encodeCommand({ type: 'header', name: 'Subject', value: Buffer.from(' big') }));
    await write(encodeCommand({ type: 'eoh' }));
    const chunk = encodeCommand({ type: 'body', chunk: Buffer.alloc(65535, 'x') });
    const base = process.memoryUsage().arrayBuffers;
    let peak = 0;
    for (let sent = 0; sent < 256 * MiB; sent += 65535) {
      await write(chunk);
      if (sent % (8 * MiB) < 65535) {
        await sleep(1);
        peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
      }
    }
    await write(encodeCommand({ type: 'eom', chunk: Buffer.alloc(0) }));
    for (let waited = 0; waited < 10_000; waited += 20) {
      if (replies.some((f) => decodeFilterPacket(f).type === 'replyCode')) break;
      await sleep(20);
    }
    c.destroy();
    const last = replies.map(decodeFilterPacket).at(-1);
    assert.match(JSON.stringify(last), /451.*exceeds the limit of 262144 bytes/);
    t.diagnostic(`peak growth while 256 MiB streamed: ${(peak / MiB).toFixed(1)} MiB`);
    assert.ok(peak < 48 * MiB, `grew by ${(peak / MiB).toFixed(0)} MiB`);
  });
});
