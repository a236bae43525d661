import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  Cmd,
  type Decision,
  decodeCommand,
  decodeFilterPacket,
  encodeCommand,
  encodeFilterPacket,
  encodeFrame,
  type FilterPacket,
  type Frame,
  FrameDecoder,
  formatReplyCode,
  MilterProtocolError,
  MilterUsageError,
  type MtaCommand,
  replyCode,
} from '../../protocol/index.js';

/** Every command the MTA can send, with awkward values. */
const COMMANDS: MtaCommand[] = [
  { type: 'optneg', version: 6, actions: 0x1ff, steps: 0x1fffff },
  { type: 'optneg', version: 2, actions: 0x3, steps: 0 },
  {
    type: 'macro',
    stage: Cmd.CONNECT,
    macros: [
      ['j', 'mx.example.org'],
      ['{daemon_name}', 'smtpd'],
    ],
  },
  { type: 'macro', stage: Cmd.MAIL, macros: [] },
  {
    type: 'connect',
    hostname: 'client.example.net',
    family: 'inet',
    port: 25025,
    address: '192.0.2.7',
  },
  { type: 'connect', hostname: '[2001:db8::1]', family: 'inet6', port: 1, address: '2001:db8::1' },
  { type: 'connect', hostname: 'localhost', family: 'unix', port: 0, address: '/var/run/sock' },
  { type: 'connect', hostname: 'unknown', family: 'unknown' },
  { type: 'helo', name: 'client.example.net' },
  { type: 'mail', address: '<alice@example.org>', args: ['SIZE=1000', 'BODY=8BITMIME'] },
  { type: 'mail', address: '<>', args: [] },
  { type: 'rcpt', address: '<bob@example.net>', args: ['NOTIFY=NEVER'] },
  { type: 'data' },
  { type: 'header', name: 'Subject', value: Buffer.from('caf\xe9 \n\tfolded', 'latin1') },
  { type: 'header', name: 'X-Empty', value: Buffer.alloc(0) },
  { type: 'eoh' },
  { type: 'body', chunk: Buffer.from('line one\r\n.line two\r\n\0binary\xff', 'latin1') },
  { type: 'body', chunk: Buffer.alloc(0) },
  { type: 'eom', chunk: Buffer.alloc(0) },
  { type: 'eom', chunk: Buffer.from('last chunk\r\n') },
  { type: 'abort' },
  { type: 'quit' },
  { type: 'quitNewConnection' },
  { type: 'unknown', command: 'XYZZY plugh' },
];

const PACKETS: FilterPacket[] = [
  { type: 'continue' },
  { type: 'accept' },
  { type: 'reject' },
  { type: 'tempfail' },
  { type: 'discard' },
  { type: 'skip' },
  { type: 'connectionFail' },
  { type: 'shutdown' },
  replyCode(550, '5.7.1', 'no certificate for example.net'),
  replyCode(451, undefined, 'try again'),
  replyCode(452, '4.5.3', ['too many recipients', 'send the rest again', '100% sure']),
  { type: 'addHeader', name: 'X-Test', value: 'value' },
  { type: 'insertHeader', index: 0, name: 'Authentication-Results', value: 'mx; smime=pass' },
  { type: 'changeHeader', name: 'Subject', index: 2, value: 'new\n\tfolded' },
  { type: 'changeHeader', name: 'Subject', index: 1, value: '' },
  { type: 'addRecipient', address: '<carol@example.org>' },
  { type: 'addRecipient', address: '<carol@example.org>', args: 'NOTIFY=NEVER' },
  { type: 'deleteRecipient', address: '<bob@example.net>' },
  { type: 'changeFrom', address: '<bounce@example.org>' },
  { type: 'changeFrom', address: '<bounce@example.org>', args: 'RET=HDRS' },
  { type: 'replaceBody', chunk: Buffer.from('new body\r\n') },
  { type: 'quarantine', reason: 'undecryptable' },
  { type: 'progress' },
  { type: 'optneg', version: 6, actions: 0x13, steps: 0x3f },
  {
    type: 'optneg',
    version: 6,
    actions: 0x113,
    steps: 0x1000,
    macros: { connect: 'j {daemon_name}', mail: '{auth_authen}' },
  },
];

function decodeAllSplits(wire: Buffer): Frame[][] {
  const results: Frame[][] = [];
  for (let split = 0; split <= wire.length; split++) {
    const d = new FrameDecoder();
    results.push([...d.push(wire.subarray(0, split)), ...d.push(wire.subarray(split))]);
    assert.equal(d.pendingBytes, 0);
  }
  return results;
}

function plain(v: unknown): unknown {
  return JSON.parse(
    JSON.stringify(v, (_k, x) => (x?.type === 'Buffer' ? Buffer.from(x.data).toString('hex') : x)),
  );
}

describe('frame codec', () => {
  test('one frame survives every split point, including inside the length', () => {
    const wire = encodeFrame(Cmd.BODY, Buffer.from('hello world'));
    for (const frames of decodeAllSplits(wire)) {
      assert.equal(frames.length, 1);
      assert.equal(frames[0]!.cmd, Cmd.BODY);
      assert.equal(frames[0]!.data.toString(), 'hello world');
    }
  });

  test('many frames in one read, and byte by byte', () => {
    const wire = Buffer.concat(COMMANDS.map(encodeCommand));
    const all = new FrameDecoder().push(wire);
    assert.equal(all.length, COMMANDS.length);
    const d = new FrameDecoder();
    const trickled: Frame[] = [];
    for (const byte of wire) trickled.push(...d.push(Buffer.from([byte])));
    assert.deepEqual(plain(trickled), plain(all));
  });

  test('a zero length is a protocol error', () => {
    assert.throws(() => new FrameDecoder().push(Buffer.from([0, 0, 0, 0])), MilterProtocolError);
  });

  test('an oversized length is refused from its 4 header bytes alone', () => {
    const d = new FrameDecoder(1000);
    assert.throws(() => d.push(Buffer.from([0, 0, 0x03, 0xea])), /exceeds the limit of 1000/);
    const header = Buffer.from([0x7f, 0xff, 0xff, 0xff]);
    const split = new FrameDecoder(1000);
    split.push(header.subarray(0, 2));
    assert.throws(() => split.push(header.subarray(2)), MilterProtocolError);
  });

  test('a frame exactly at the limit is accepted', () => {
    const d = new FrameDecoder(1001);
    const frames = d.push(encodeFrame(Cmd.BODY, Buffer.alloc(1000, 0x61)));
    assert.equal(frames[0]!.data.length, 1000);
  });
});

describe('MTA commands', () => {
  for (const c of COMMANDS) {
    test(`${c.type} round-trips at every split point`, () => {
      const wire = encodeCommand(c);
      for (const frames of decodeAllSplits(wire)) {
        assert.equal(frames.length, 1);
        const back = decodeCommand(frames[0]!);
        const expected =
          c.type === 'macro' ? { ...c, macros: c.macros.map(([k, v]) => [k, v]) } : c;
        assert.deepEqual(plain(back), plain(expected));
      }
    });
  }

  test('connect families are decoded from Postfix bytes', () => {
    const unix = Buffer.concat([
      Buffer.from('localhost\0L'),
      Buffer.from([0, 0]),
      Buffer.from('/tmp/s\0'),
    ]);
    assert.deepEqual(decodeCommand({ cmd: Cmd.CONNECT, data: unix }), {
      type: 'connect',
      hostname: 'localhost',
      family: 'unix',
      port: 0,
      address: '/tmp/s',
    });
    assert.deepEqual(decodeCommand({ cmd: Cmd.CONNECT, data: Buffer.from('unknown\0U') }), {
      type: 'connect',
      hostname: 'unknown',
      family: 'unknown',
    });
    assert.throws(
      () => decodeCommand({ cmd: Cmd.CONNECT, data: Buffer.from('host\0X') }),
      /unknown family/,
    );
    assert.throws(
      () => decodeCommand({ cmd: Cmd.CONNECT, data: Buffer.from('host\x004') }),
      /without port/,
    );
    assert.throws(
      () => decodeCommand({ cmd: Cmd.CONNECT, data: Buffer.from('host') }),
      /too short/,
    );
  });

  test('malformed packets are protocol errors, not crashes', () => {
    assert.throws(
      () => decodeCommand({ cmd: Cmd.OPTNEG, data: Buffer.alloc(11) }),
      MilterProtocolError,
    );
    assert.throws(
      () => decodeCommand({ cmd: Cmd.MACRO, data: Buffer.alloc(0) }),
      MilterProtocolError,
    );
    assert.throws(
      () => decodeCommand({ cmd: Cmd.HEADER, data: Buffer.from('NoNul') }),
      MilterProtocolError,
    );
    assert.throws(
      () => decodeCommand({ cmd: Cmd.MAIL, data: Buffer.alloc(0) }),
      MilterProtocolError,
    );
    assert.deepEqual(decodeCommand({ cmd: 0x7a, data: Buffer.from('z') }).type, 'unrecognised');
  });

  test('a macro list with an odd count keeps the complete pairs', () => {
    const c = decodeCommand({ cmd: Cmd.MACRO, data: Buffer.from('Mi\0ABC123\0{orphan}\0') });
    assert.deepEqual(c, { type: 'macro', stage: Cmd.MAIL, macros: [['i', 'ABC123']] });
  });
});

describe('filter packets', () => {
  for (const p of PACKETS) {
    test(`${p.type} round-trips at every split point`, () => {
      const wire = encodeFilterPacket(p);
      for (const frames of decodeAllSplits(wire)) {
        assert.equal(frames.length, 1);
        assert.deepEqual(plain(decodeFilterPacket(frames[0]!)), plain(p));
      }
    });
  }

  test('reply codes are formatted as libmilter does', () => {
    const fmt = (d: Decision) => formatReplyCode(d as Extract<Decision, { type: 'replyCode' }>);
    assert.equal(fmt(replyCode(550, '5.7.1', 'nope')), '550 5.7.1 nope');
    assert.equal(fmt(replyCode(450, undefined, '100% busy')), '450 100%% busy');
    assert.equal(fmt(replyCode(452, '4.5.3', ['a', 'b'])), '452-4.5.3 a\r\n452 4.5.3 b');
    const wire = encodeFilterPacket(replyCode(550, '5.7.1', 'x'));
    assert.equal(wire.subarray(5).toString('latin1'), '550 5.7.1 x\0');
  });

  test('invalid replies are refused with a clear error', () => {
    assert.throws(() => encodeFilterPacket(replyCode(250, undefined, 'ok')), /not a 4xx or 5xx/);
    assert.throws(() => encodeFilterPacket(replyCode(550, '4.7.1', 'x')), /does not match/);
    assert.throws(() => encodeFilterPacket(replyCode(550, '5.7.1', 'a\r\nb')), MilterUsageError);
    assert.throws(
      () => encodeFilterPacket(replyCode(550, '5.7.1', 'x'.repeat(981))),
      /longer than 980/,
    );
    assert.throws(
      () => encodeFilterPacket(replyCode(550, '5.7.1', Array(33).fill('x'))),
      /33 lines/,
    );
    assert.throws(
      () => encodeFilterPacket({ type: 'addHeader', name: 'Bad Name', value: 'x' }),
      /invalid header/,
    );
    assert.throws(
      () => encodeFilterPacket({ type: 'changeHeader', name: 'X', index: 0, value: 'x' }),
      /1-based/,
    );
  });

  test('header values are folded with bare LF on the wire', () => {
    const wire = encodeFilterPacket({ type: 'addHeader', name: 'X-F', value: 'a\r\n\tb' });
    assert.equal(wire.subarray(5).toString('latin1'), 'X-F\0a\n\tb\0');
    assert.throws(
      () => encodeFilterPacket({ type: 'addHeader', name: 'X', value: 'a\rb' }),
      /bare CR/,
    );
  });
});
