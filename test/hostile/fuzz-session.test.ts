/**
 * The milter session over real loopback sockets with random command streams.
 * Valid streams (any order of commands after negotiation) must get exactly
 * the replies the protocol prescribes, in order; mutated streams must end in
 * replies or a closed connection, never a crash, a hang or a leaked
 * connection, and a bystander connection keeps working throughout.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import {
  Cmd,
  Decisions,
  decodeFilterPacket,
  encodeCommand,
  type Frame,
  FrameDecoder,
  type MilterApplication,
  type MtaCommand,
  POSTFIX_OFFER,
} from '../../protocol/index.js';
import { startTestMilter, type TestMilter } from '../helpers/milter.js';
import { bytesArb, fuzzRuns, HANG_MS } from './fuzz-budget.js';
import { mutations } from './mutate.js';

const MAX_FRAME = 64 * 1024;
const OPTNEG: MtaCommand = { type: 'optneg', ...POSTFIX_OFFER };

/** Continues everywhere, except: a header named Throw fails (tempfail), a slow RCPT, EOM edits. */
const app: MilterApplication = {
  capabilities: { optionalActions: ['ADDHDRS'] },
  openConnection: () => ({
    connect: () => undefined,
    helo: () => undefined,
    unknown: () => undefined,
    transaction: () => ({
      mail: () => undefined,
      rcpt: async (address) => {
        if (address === 'slow') await sleep(1);
        return undefined;
      },
      data: () => undefined,
      header: (name) => {
        if (name === 'Throw') throw new Error('handler failure');
        return undefined;
      },
      endOfHeaders: () => undefined,
      body: () => undefined,
      endOfMessage: async (eom) => {
        await eom.addHeader('X-Fuzz', 'seen');
        return Decisions.accept;
      },
    }),
  }),
};

/** The reply packet types the protocol prescribes for one command (app above, Postfix offer). */
function expectedReplies(c: MtaCommand): string[] {
  switch (c.type) {
    case 'optneg':
      return ['optneg'];
    case 'macro':
    case 'abort':
    case 'quitNewConnection':
      return [];
    case 'header':
      return [c.name === 'Throw' ? 'tempfail' : 'continue'];
    case 'eom':
      return ['addHeader', 'accept'];
    default:
      return ['continue'];
  }
}

const eventArb: fc.Arbitrary<MtaCommand[]> = fc.oneof(
  fc
    .record({
      type: fc.constant('macro' as const),
      stage: fc.constantFrom(Cmd.CONNECT, Cmd.MAIL, Cmd.RCPT, Cmd.BODYEOB),
      macros: fc.array(fc.tuple(fc.constantFrom('i', '{auth_authen}', 'j'), fc.string()), {
        maxLength: 3,
      }),
    })
    .map((c) => [c]),
  fc
    .record({
      type: fc.constant('connect' as const),
      hostname: fc.string({ maxLength: 20 }),
      family: fc.constantFrom('inet' as const, 'inet6' as const, 'unknown' as const),
      port: fc.nat(65535),
      address: fc.constantFrom('192.0.2.1', '2001:db8::1', ''),
    })
    .map((c) => [c]),
  fc.string({ maxLength: 20 }).map((name) => [{ type: 'helo' as const, name }]),
  fc
    .tuple(fc.constantFrom('mail' as const, 'rcpt' as const), fc.constantFrom('<a@b>', 'slow', ''))
    .map(([type, address]) => [{ type, address, args: [] }]),
  fc
    .tuple(fc.constantFrom('Subject', 'Throw', 'X-A'), bytesArb(60))
    .map(([name, value]) => [{ type: 'header' as const, name, value }]),
  bytesArb(3000).map((chunk) => [{ type: 'body' as const, chunk }]),
  bytesArb(100).map((chunk) => [{ type: 'eom' as const, chunk }]),
  fc.constantFrom<MtaCommand[]>(
    [{ type: 'data' }],
    [{ type: 'eoh' }],
    [{ type: 'abort' }],
    [{ type: 'quitNewConnection' }, OPTNEG],
  ),
  fc.string({ maxLength: 30 }).map((command) => [{ type: 'unknown' as const, command }]),
);

const sessionArb = fc
  .array(eventArb, { maxLength: 30 })
  .map((events) => [OPTNEG, ...events.flat()]);

interface Exchange {
  readonly replies: Frame[];
  readonly closedByServer: boolean;
}

/** Sends `bytes`, collects replies until `expected` arrived (then QUIT) or the server closed. */
async function exchange(milter: TestMilter, bytes: Buffer, expected?: number): Promise<Exchange> {
  const spec = milter.spec;
  assert.ok(spec.kind === 'inet');
  const socket = net.connect(spec.port, '127.0.0.1');
  const decoder = new FrameDecoder(1 << 24);
  const replies: Frame[] = [];
  let closedByServer = false;
  let ended = false;
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  socket.on('end', () => {
    if (!ended) closedByServer = true;
  });
  let arrived: () => void = () => {};
  const enough = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  socket.on('data', (chunk: Buffer) => {
    replies.push(...decoder.push(chunk));
    if (expected !== undefined && replies.length >= expected) arrived();
  });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(bytes);
  const deadline = sleep(HANG_MS).then(() => 'timeout' as const);
  if (expected !== undefined) {
    const r = await Promise.race([enough.then(() => 'ok' as const), closed, deadline]);
    assert.notEqual(r, 'timeout', `only ${replies.length} of ${expected} replies arrived`);
    ended = true;
    socket.write(encodeCommand({ type: 'quit' }));
  } else {
    // Let the server react; then say we are done (a truncated frame may be waiting for more).
    await Promise.race([closed, sleep(20)]);
    ended = true;
    socket.end();
  }
  const r = await Promise.race([closed.then(() => 'closed' as const), deadline]);
  if (r === 'timeout') socket.destroy();
  assert.equal(r, 'closed', 'the connection was not closed: hang');
  return { replies, closedByServer };
}

describe('fuzz: milter session over real sockets', () => {
  let milter: TestMilter;
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  before(async () => {
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    milter = await startTestMilter(app, {
      maxFrameLength: MAX_FRAME,
      stageTimeoutMs: 1000,
      eomTimeoutMs: 1000,
    });
  });
  after(async () => {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
    await milter?.close();
  });

  /** A bystander message on its own connection, after each batch. */
  async function bystanderWorks(round: number): Promise<void> {
    const c = await milter.client();
    await c.mail('<a@example.org>');
    await c.header('Subject', `round ${round}`);
    const eom = await c.endOfMessage();
    assert.deepEqual(eom.decision, Decisions.accept);
    c.destroy();
  }

  async function connectionsReaped(): Promise<void> {
    for (let waited = 0; milter.server.connectionCount > 0 && waited < 5000; waited += 20)
      await sleep(20);
    assert.equal(milter.server.connectionCount, 0, 'connections left open');
  }

  async function batches<T>(
    t: { diagnostic(m: string): void },
    name: string,
    inputs: T[],
    each: (input: T) => Promise<void>,
  ): Promise<void> {
    const started = performance.now();
    let slowest = 0;
    const BATCH = 25;
    for (let i = 0; i < inputs.length; i += BATCH) {
      await Promise.all(
        inputs.slice(i, i + BATCH).map(async (input) => {
          const t0 = performance.now();
          try {
            await each(input);
          } catch (err) {
            const shown = JSON.stringify(input).slice(0, 2000);
            throw new Error(
              `${name}: ${err instanceof Error ? err.message : err}\ninput: ${shown}`,
            );
          }
          slowest = Math.max(slowest, performance.now() - t0);
        }),
      );
      if (i % (BATCH * 40) === 0) await bystanderWorks(i);
    }
    await connectionsReaped();
    assert.deepEqual(uncaught, []);
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(
      `fuzz ${name}: ${inputs.length} connections in ${seconds.toFixed(1)} s, slowest ${slowest.toFixed(0)} ms`,
    );
  }

  test('valid command streams get exactly the prescribed replies, in order', async (t) => {
    const runs = fuzzRuns(10_000, 100);
    const sessions = fc.sample(sessionArb, runs);
    await batches(t, 'session/valid-streams', sessions, async (commands) => {
      const want = commands.flatMap(expectedReplies);
      const bytes = Buffer.concat(commands.map(encodeCommand));
      const r = await exchange(milter, bytes, want.length);
      assert.equal(r.closedByServer, false, 'valid stream: the server closed early');
      assert.deepEqual(
        r.replies.map((f) => decodeFilterPacket(f).type),
        want,
      );
    });
  });

  test('mutated command streams: replies or a closed connection, never a crash or hang', async (t) => {
    const runs = fuzzRuns(10_000, 100);
    const TOKENS = [
      encodeCommand(OPTNEG),
      encodeCommand({ type: 'eom', chunk: Buffer.alloc(0) }),
      Buffer.from([0, 0, 0, 0]),
      Buffer.from([0xff, 0xff, 0xff, 0xff]),
      Buffer.from([0, 1, 0, 1]),
    ];
    const inputs = fc.sample(
      fc
        .tuple(sessionArb, fc.array(mutations(TOKENS), { minLength: 1, maxLength: 4 }))
        .map(([cs, ms]) => ms.reduce<Buffer>((x, m) => m(x), Buffer.concat(cs.map(encodeCommand)))),
      runs,
    );
    await batches(t, 'session/mutated-streams', inputs, async (bytes) => {
      const r = await exchange(milter, bytes);
      for (const f of r.replies) decodeFilterPacket(f);
    });
  });
});
