/**
 * The milter frame decoder against 10^6 hostile inputs (full run): random
 * bytes, mutated command streams, valid streams, each fed in random splits.
 * A plain reference decoder (the whole input at once, no fast path, no
 * buffering) is the oracle: whatever the split, the real decoder returns a
 * prefix of the reference's frames, all of them when the reference finds no
 * error, throws MilterProtocolError exactly when the reference finds an
 * error, and never holds more than one frame's worth of bytes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  Cmd,
  decodeCommand,
  encodeCommand,
  encodeFrame,
  type Frame,
  FrameDecoder,
  MilterProtocolError,
  type MtaCommand,
} from '../../protocol/index.js';
import { bytesArb, fuzz, fuzzRuns } from './fuzz-budget.js';
import { mutated } from './mutate.js';

/** Small enough that random length fields often fall under it, so frames do complete. */
const MAX_FRAME = 4096;

interface Reference {
  readonly frames: Frame[];
  readonly error: boolean;
  /** Bytes of an incomplete last frame (when no error). */
  readonly pending: number;
}

function referenceDecode(bytes: Buffer, max: number): Reference {
  const frames: Frame[] = [];
  let at = 0;
  while (bytes.length - at >= 4) {
    const length = bytes.readUInt32BE(at);
    if (length === 0 || length > max) return { frames, error: true, pending: 0 };
    if (bytes.length - at - 4 < length) break;
    frames.push({ cmd: bytes[at + 4]!, data: bytes.subarray(at + 5, at + 4 + length) });
    at += 4 + length;
  }
  return { frames, error: false, pending: bytes.length - at };
}

/** Cut points (sorted, within the input) from arbitrary numbers. */
function pieces(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

/** Counts how far each kind of input got, so a fuzzer that only ever errors is noticed. */
const reached = { frames: 0, commands: 0, protocolErrors: 0 };

function checkAgainstReference(bytes: Buffer, cuts: readonly number[], max = MAX_FRAME): void {
  const ref = referenceDecode(bytes, max);
  const d = new FrameDecoder(max);
  const got: Frame[] = [];
  let threw = false;
  for (const piece of pieces(bytes, cuts)) {
    try {
      got.push(...d.push(piece));
    } catch (err) {
      assert.ok(err instanceof MilterProtocolError, `escaped: ${String(err)}`);
      assert.match(err.message, /packet/);
      threw = true;
      break;
    }
    assert.ok(d.pendingBytes <= max + 4, `holds ${d.pendingBytes} bytes`);
  }
  assert.equal(threw, ref.error, 'error exactly when the reference decoder finds one');
  assert.ok(got.length <= ref.frames.length);
  if (!threw) {
    assert.equal(got.length, ref.frames.length);
    assert.equal(d.pendingBytes, ref.pending);
  }
  for (const [i, f] of got.entries()) {
    assert.equal(f.cmd, ref.frames[i]!.cmd);
    assert.ok(f.data.equals(ref.frames[i]!.data));
    assert.ok(f.data.length < max);
    try {
      decodeCommand(f);
      reached.commands++;
    } catch (err) {
      assert.ok(err instanceof MilterProtocolError, `decodeCommand escaped: ${String(err)}`);
      reached.protocolErrors++;
    }
  }
  reached.frames += got.length;
}

const cutsArb = fc.array(fc.nat(), { maxLength: 12 });

const commandArb: fc.Arbitrary<MtaCommand> = fc.oneof(
  fc.record({
    type: fc.constant('optneg' as const),
    version: fc.nat(8),
    actions: fc.nat(0x1ff),
    steps: fc.nat(0x3fffff),
  }),
  fc.record({
    type: fc.constant('macro' as const),
    stage: fc.constantFrom(...Object.values(Cmd)),
    macros: fc.array(fc.tuple(fc.string({ maxLength: 6 }), fc.string({ maxLength: 12 })), {
      maxLength: 3,
    }),
  }),
  fc.record({
    type: fc.constant('connect' as const),
    hostname: fc.string({ maxLength: 20 }),
    family: fc.constantFrom('inet' as const, 'inet6' as const, 'unix' as const, 'unknown' as const),
    port: fc.nat(65535),
    address: fc.string({ maxLength: 20 }),
  }),
  fc.record({ type: fc.constant('helo' as const), name: fc.string({ maxLength: 20 }) }),
  fc.record({
    type: fc.constantFrom('mail' as const, 'rcpt' as const),
    address: fc.string({ maxLength: 20 }),
    args: fc.array(fc.string({ maxLength: 8 }), { maxLength: 2 }),
  }),
  fc.record({
    type: fc.constant('header' as const),
    name: fc.stringMatching(/^[A-Za-z-]{1,10}$/),
    value: bytesArb(40),
  }),
  fc.record({ type: fc.constantFrom('body' as const, 'eom' as const), chunk: bytesArb(600) }),
  fc.constantFrom<MtaCommand>(
    { type: 'data' },
    { type: 'eoh' },
    { type: 'abort' },
    { type: 'quit' },
    { type: 'quitNewConnection' },
  ),
  fc.record({ type: fc.constant('unknown' as const), command: fc.string({ maxLength: 20 }) }),
);

/** Encoded commands: the corpus the mutations start from. */
const streamArb = fc
  .array(commandArb, { minLength: 1, maxLength: 12 })
  .map((cs) => Buffer.concat(cs.map(encodeCommand)));

const TOKENS = [
  Buffer.from([0, 0, 0, 0]),
  Buffer.from([0, 0, 0, 1]),
  Buffer.from([0x80, 0, 0, 0]),
  Buffer.from([0xff, 0xff, 0xff, 0xff]),
  Buffer.from([0, 0, 0x10, 0x00]),
  Buffer.from([0, 0, 0x10, 0x01]),
  encodeFrame(Cmd.BODY, Buffer.alloc(MAX_FRAME - 1)).subarray(0, 5),
  Buffer.from([0]),
];

describe('fuzz: milter frame decoder (10^6 inputs in the full run)', () => {
  test('random bytes in random splits: the reference decoder is matched', (t) => {
    const runs = fuzzRuns(400_000, 2000);
    fuzz(t, 'frames/random-bytes', runs, [bytesArb(3000), cutsArb], (bytes, cuts) =>
      checkAgainstReference(bytes, cuts),
    );
  });

  test('random bytes behind plausible length fields: frames complete and decode', (t) => {
    // Pure random length fields are almost always over the bound: this makes them fit.
    const runs = fuzzRuns(200_000, 1000);
    const framed = fc
      .array(fc.tuple(fc.nat(MAX_FRAME + 2), bytesArb(MAX_FRAME + 8)), { maxLength: 6 })
      .map((fs) =>
        Buffer.concat(
          fs.flatMap(([length, bytes]) => {
            const head = Buffer.alloc(4);
            head.writeUInt32BE(length);
            return [head, bytes.subarray(0, length)];
          }),
        ),
      );
    fuzz(t, 'frames/random-framed', runs, [framed, cutsArb], (bytes, cuts) =>
      checkAgainstReference(bytes, cuts),
    );
  });

  test('mutated command streams in random splits: the reference decoder is matched', (t) => {
    const runs = fuzzRuns(300_000, 2000);
    const corpus = fc.sample(streamArb, { numRuns: 200, seed: 7 });
    const arb = fc.oneof(mutated(corpus, TOKENS), streamArb);
    fuzz(t, 'frames/mutated-streams', runs, [arb, cutsArb], (bytes, cuts) =>
      checkAgainstReference(bytes, cuts),
    );
  });

  test('valid frames up to the bound, any split: exactly the frames sent, nothing left', (t) => {
    const runs = fuzzRuns(100_000, 500);
    const frame = fc.tuple(fc.nat(255), fc.nat(MAX_FRAME - 1), fc.integer());
    fuzz(
      t,
      'frames/valid-roundtrip',
      runs,
      [fc.array(frame, { maxLength: 8 }), cutsArb],
      (frames, cuts) => {
        const sent = frames.map(([cmd, length, seed]) => ({
          cmd,
          data: Buffer.alloc(length, seed & 0xff),
        }));
        const bytes = Buffer.concat(sent.map((f) => encodeFrame(f.cmd, f.data)));
        const d = new FrameDecoder(MAX_FRAME);
        const got = pieces(bytes, cuts).flatMap((p) => d.push(p));
        assert.equal(d.pendingBytes, 0);
        assert.deepEqual(
          got.map((f) => [f.cmd, f.data.length, f.data[0]]),
          sent.map((f) => [f.cmd, f.data.length, f.data[0]]),
        );
        for (const [i, f] of got.entries()) assert.ok(f.data.equals(sent[i]!.data));
      },
    );
    // The fuzzers above must have got past the framing often, or they proved little.
    assert.ok(reached.frames > 0 && reached.commands > 0 && reached.protocolErrors > 0);
  });
});
