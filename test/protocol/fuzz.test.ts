import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import {
  Cmd,
  Decisions,
  decodeCommand,
  encodeCommand,
  encodeFrame,
  FrameDecoder,
  type MilterApplication,
  MilterProtocolError,
  type MtaCommand,
  POSTFIX_OFFER,
} from '../../protocol/index.js';
import { startTestMilter } from '../helpers/milter.js';

const MAX_FRAME = 4096;

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
    macros: fc.array(fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 20 })), {
      maxLength: 4,
    }),
  }),
  fc.record({
    type: fc.constant('connect' as const),
    hostname: fc.string({ maxLength: 30 }),
    family: fc.constantFrom('inet' as const, 'inet6' as const, 'unix' as const),
    port: fc.nat(65535),
    address: fc.string({ maxLength: 40 }),
  }),
  fc.record({ type: fc.constant('helo' as const), name: fc.string({ maxLength: 30 }) }),
  fc.record({
    type: fc.constant('mail' as const),
    address: fc.string({ maxLength: 30 }),
    args: fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
  }),
  fc.record({
    type: fc.constant('rcpt' as const),
    address: fc.string({ maxLength: 30 }),
    args: fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
  }),
  fc.constantFrom<MtaCommand>(
    { type: 'data' },
    { type: 'eoh' },
    { type: 'abort' },
    { type: 'quitNewConnection' },
  ),
  fc.record({
    type: fc.constant('header' as const),
    name: fc.stringMatching(/^[A-Za-z-]{1,12}$/),
    value: fc.uint8Array({ maxLength: 60 }).map(Buffer.from),
  }),
  fc.record({
    type: fc.constant('body' as const),
    chunk: fc.uint8Array({ maxLength: 300 }).map(Buffer.from),
  }),
  fc.record({
    type: fc.constant('eom' as const),
    chunk: fc.uint8Array({ maxLength: 30 }).map(Buffer.from),
  }),
);

/** Valid commands, sometimes with a byte flipped, cut short or extended. */
const wireArb = fc
  .array(
    fc.tuple(commandArb, fc.nat(), fc.nat(255), fc.constantFrom('keep', 'flip', 'cut', 'junk')),
    { minLength: 1, maxLength: 25 },
  )
  .map((items) =>
    Buffer.concat(
      items.map(([cmd, pos, byte, how]) => {
        const wire = Buffer.from(encodeCommand(cmd));
        if (how === 'flip') wire[pos % wire.length] = byte;
        if (how === 'cut') return wire.subarray(0, pos % wire.length);
        if (how === 'junk') return Buffer.concat([wire, Buffer.from([byte, byte])]);
        return wire;
      }),
    ),
  );

describe('fuzzing', () => {
  test('the frame decoder only ever raises protocol errors and never holds more than one frame', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2000 }),
        fc.array(fc.nat(2000), { maxLength: 8 }),
        (bytes, cuts) => {
          const d = new FrameDecoder(MAX_FRAME);
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort(
            (a, b) => a - b,
          );
          let prev = 0;
          try {
            for (const p of [...points, bytes.length]) {
              for (const f of d.push(Buffer.from(bytes.subarray(prev, p)))) {
                try {
                  decodeCommand(f);
                } catch (err) {
                  if (!(err instanceof MilterProtocolError)) throw err;
                }
              }
              prev = p;
              assert.ok(d.pendingBytes <= MAX_FRAME + 4);
            }
          } catch (err) {
            if (!(err instanceof MilterProtocolError)) throw err;
          }
        },
      ),
      { numRuns: 20_000 },
    );
  });

  test('mutated command streams: only MilterProtocolError, whatever the split', () => {
    fc.assert(
      fc.property(wireArb, fc.nat(), (wire, cut) => {
        const d = new FrameDecoder(MAX_FRAME);
        const at = cut % (wire.length + 1);
        try {
          for (const part of [wire.subarray(0, at), wire.subarray(at)]) {
            for (const f of d.push(part)) {
              try {
                decodeCommand(f);
              } catch (err) {
                if (!(err instanceof MilterProtocolError)) throw err;
              }
            }
          }
        } catch (err) {
          if (!(err instanceof MilterProtocolError)) throw err;
        }
      }),
      { numRuns: 5_000 },
    );
  });

  describe('live server', () => {
    const app: MilterApplication = {
      capabilities: { optionalActions: ['ADDHDRS', 'CHGBODY'] },
      openConnection: () => ({
        transaction: () => ({
          header: () => undefined,
          body: () => undefined,
          endOfMessage: async (eom) => {
            await eom.addHeader('X-Fuzz', 'seen');
            return Decisions.accept;
          },
        }),
      }),
    };
    let milter: Awaited<ReturnType<typeof startTestMilter>>;
    const errors: unknown[] = [];
    const onUncaught = (err: unknown) => errors.push(err);
    after(async () => {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUncaught);
      await milter?.close();
    });

    test('random and mutated streams never crash the server; a bystander connection keeps working', async () => {
      process.on('uncaughtException', onUncaught);
      process.on('unhandledRejection', onUncaught);
      milter = await startTestMilter(app, {
        maxFrameLength: MAX_FRAME,
        stageTimeoutMs: 500,
        eomTimeoutMs: 500,
      });
      const bystander = await milter.client();
      const samples = fc.sample(wireArb, 300);
      for (let i = 0; i < samples.length; i += 30) {
        await Promise.all(
          samples.slice(i, i + 30).map(async (wire) => {
            const c = await milter.client(false);
            c.writeRaw(encodeCommand({ type: 'optneg', ...POSTFIX_OFFER }));
            c.writeRaw(wire);
            await sleep(5);
            c.destroy();
          }),
        );
        await bystander.mail('<a@example.org>');
        await bystander.header('Subject', `round ${i}`);
        const eom = await bystander.endOfMessage();
        assert.deepEqual(eom.decision, Decisions.accept);
        assert.deepEqual(eom.modifications, [{ type: 'addHeader', name: 'X-Fuzz', value: 'seen' }]);
      }
      // Closed sockets are reaped asynchronously; on a loaded machine that takes a moment.
      for (let waited = 0; milter.server.connectionCount > 1 && waited < 5000; waited += 50)
        await sleep(50);
      assert.deepEqual(errors, []);
      assert.ok(
        milter.server.connectionCount <= 1,
        `connections left: ${milter.server.connectionCount}`,
      );
    });

    test('an oversized announcement is refused without buffering it', async () => {
      const c = await milter.client();
      const before = process.memoryUsage().arrayBuffers;
      c.writeRaw(encodeFrame(Cmd.BODY, Buffer.alloc(MAX_FRAME + 10)));
      await sleep(50);
      assert.ok(c.closed);
      assert.ok(process.memoryUsage().arrayBuffers - before < 1024 * 1024);
    });
  });
});
