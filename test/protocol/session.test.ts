import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Cmd,
  type ConnectionHandler,
  Decisions,
  encodeFrame,
  type MilterApplication,
  MilterClient,
  MilterServer,
  POSTFIX_OFFER,
  replyCode,
  Step,
  type TransactionHandler,
} from '../../protocol/index.js';
import { startTestMilter, type TestMilter } from '../helpers/milter.js';
import { until } from '../helpers/wait.js';

const CONNECT = {
  hostname: 'client.example.net',
  family: 'inet',
  port: 4242,
  address: '192.0.2.9',
} as const;

/** An application that records every call and lets each test override stages. */
function recorder(
  overrides: Partial<TransactionHandler> = {},
  conn: Partial<ConnectionHandler> = {},
  caps = {},
) {
  const events: string[] = [];
  const app: MilterApplication = {
    capabilities: {
      optionalActions: [
        'ADDHDRS',
        'CHGHDRS',
        'CHGBODY',
        'ADDRCPT',
        'DELRCPT',
        'CHGFROM',
        'QUARANTINE',
        'ADDRCPT_PAR',
      ],
      ...caps,
    },
    openConnection: (ctx) => ({
      connect: (info) => {
        events.push(`connect ${info.address} j=${ctx.macro('j')}`);
        return undefined;
      },
      helo: (name) => {
        events.push(`helo ${name}`);
        return undefined;
      },
      close: (reason) => {
        events.push(`close ${reason}`);
      },
      ...conn,
      transaction: (tx) => ({
        mail: (addr) => {
          events.push(
            `mail#${tx.seq} ${addr} auth=${tx.macro('{auth_authen}')} j=${tx.macro('j')}`,
          );
          return undefined;
        },
        rcpt: (addr) => {
          events.push(`rcpt ${addr} rcpt_addr=${tx.macro('rcpt_addr')}`);
          return undefined;
        },
        header: (name, value) => {
          events.push(`header ${name}=${value.toString()}`);
          return undefined;
        },
        body: (chunk) => {
          events.push(`body ${chunk.length}`);
          return undefined;
        },
        endOfMessage: () => {
          events.push(`eom i=${tx.macro('i')}`);
          return Decisions.accept;
        },
        abort: () => {
          events.push(`abort#${tx.seq}`);
        },
        ...overrides,
      }),
    }),
  };
  return { app, events };
}

const milters: TestMilter[] = [];
async function start(app: MilterApplication, opts = {}): Promise<TestMilter> {
  const m = await startTestMilter(app, opts);
  milters.push(m);
  return m;
}
after(async () => {
  await Promise.all(milters.map((m) => m.close()));
});

async function openSession(c: MilterClient): Promise<void> {
  c.macros(Cmd.CONNECT, { j: 'mx.example.org', daemon_name: 'smtpd' });
  await c.connectEvent(CONNECT);
  await c.helo('client.example.net');
}

describe('milter session', () => {
  test('a whole message: events in order, macros by stage, modifications before the decision', async () => {
    const { app, events } = recorder({
      endOfMessage: async (eom) => {
        await eom.addHeader('X-Added', 'yes');
        await eom.insertHeader(0, 'X-First', 'one');
        await eom.changeHeader('Subject', 1, 'changed');
        await eom.deleteHeader('X-Old', 1);
        await eom.addRecipient('<carol@example.org>');
        await eom.addRecipient('<dave@example.org>', 'NOTIFY=NEVER');
        await eom.deleteRecipient('<bob@example.net>');
        await eom.changeFrom('<bounce@example.org>', 'RET=HDRS');
        await eom.replaceBody(Buffer.from('new body\r\n'));
        await eom.quarantine('held for review');
        return Decisions.accept;
      },
    });
    const m = await start(app);
    const c = await m.client();
    await openSession(c);
    const result = await c.sendMessage({
      from: '<alice@example.org>',
      rcpts: ['<bob@example.net>', '<bobby@example.net>'],
      headers: [
        ['Subject', 'hello'],
        ['X-Old', 'x'],
      ],
      body: Buffer.from('body\r\n'),
      macros: { mail: { auth_authen: 'alice', i: 'Q1' }, rcpt: { i: 'Q1' } },
    });
    assert.deepEqual(result.decision, Decisions.accept);
    assert.deepEqual(
      result.eom?.modifications.map((x) => x.type),
      [
        'addHeader',
        'insertHeader',
        'changeHeader',
        'changeHeader',
        'addRecipient',
        'addRecipient',
        'deleteRecipient',
        'changeFrom',
        'replaceBody',
        'quarantine',
      ],
    );
    assert.deepEqual(events, [
      'connect 192.0.2.9 j=mx.example.org',
      'helo client.example.net',
      'mail#1 <alice@example.org> auth=alice j=mx.example.org',
      'rcpt <bob@example.net> rcpt_addr=<bob@example.net>',
      'rcpt <bobby@example.net> rcpt_addr=<bobby@example.net>',
      'header Subject=hello',
      'header X-Old=x',
      'body 6',
    ]);
  });

  test('a recipient refused with a reply code; the message goes on', async () => {
    const { app } = recorder({
      rcpt: (addr) =>
        addr.includes('nocert') ? replyCode(550, '5.7.1', 'no certificate') : undefined,
    });
    const m = await start(app);
    const c = await m.client();
    await openSession(c);
    await c.mail('<a@example.org>');
    assert.deepEqual(await c.rcpt('<x@nocert.example>'), replyCode(550, '5.7.1', 'no certificate'));
    assert.deepEqual(await c.rcpt('<y@example.net>'), Decisions.continue);
  });

  test('a handler that throws or hangs yields tempfail, and the connection keeps working', async () => {
    let calls = 0;
    const { app } = recorder({
      rcpt: () => {
        throw new Error('boom');
      },
      endOfMessage: () => {
        calls++;
        return calls === 1 ? new Promise(() => {}) : Decisions.accept;
      },
    });
    const m = await start(app, { eomTimeoutMs: 100, progressIntervalMs: 0 });
    const c = await m.client();
    await openSession(c);
    await c.mail('<a@example.org>');
    assert.deepEqual(await c.rcpt('<b@example.net>'), Decisions.tempfail);
    assert.deepEqual((await c.endOfMessage()).decision, Decisions.tempfail);
    c.abort();
    await c.mail('<a@example.org>');
    assert.deepEqual((await c.endOfMessage()).decision, Decisions.accept);
  });

  test('no-reply steps get no reply; pipelined events stay in order', async () => {
    const { app, events } = recorder({}, {}, { noReply: ['header', 'body', 'eoh'] });
    const m = await start(app);
    const c = await m.client();
    assert.ok((c.negotiation!.steps & (Step.NR_HDR | Step.NR_BODY | Step.NR_EOH)) !== 0);
    await openSession(c);
    await c.mail('<a@example.org>');
    for (let i = 0; i < 50; i++) assert.equal(await c.header(`X-H${i}`, String(i)), undefined);
    await c.endOfHeaders();
    await c.body(Buffer.alloc(10));
    const eom = await c.endOfMessage();
    assert.deepEqual(eom.decision, Decisions.accept);
    assert.equal(events.filter((e) => e.startsWith('header')).length, 50);
    assert.equal(events.at(-2), 'body 10');
  });

  test('skip is sent when negotiated, and emulated when not', async () => {
    let bodies = 0;
    const { app } = recorder({
      body: () => {
        bodies++;
        return Decisions.skip;
      },
    });
    const m = await start(app);
    const c = await m.client();
    await c.mail('<a@example.org>');
    assert.deepEqual(await c.body(Buffer.alloc(5)), Decisions.skip);
    const old = await m.client(false);
    await old.negotiate({ ...POSTFIX_OFFER, steps: 0x7f });
    await old.mail('<a@example.org>');
    assert.deepEqual(await old.body(Buffer.alloc(5)), Decisions.continue);
    assert.deepEqual(await old.body(Buffer.alloc(5)), Decisions.continue);
    assert.equal(bodies, 2, 'the handler is not called after it asked to skip');
  });

  test('abort ends the transaction; the next one starts fresh; Sendmail style MAIL without ABORT', async () => {
    const { app, events } = recorder();
    const m = await start(app);
    const c = await m.client();
    await openSession(c);
    await c.sendMessage({
      from: '<a@example.org>',
      rcpts: ['<b@example.net>'],
      headers: [],
      body: Buffer.alloc(0),
      macros: { mail: { auth_authen: 'alice' } },
    });
    // Sendmail: next MAIL without ABORT after a completed message; macros of the last message are gone.
    await c.mail('<c@example.org>');
    c.abort();
    await c.mail('<d@example.org>');
    await c.endOfMessage();
    assert.deepEqual(
      events.filter((e) => /^(mail|abort|eom)/.test(e)),
      [
        'mail#1 <a@example.org> auth=alice j=mx.example.org',
        'eom i=undefined',
        'mail#2 <c@example.org> auth=undefined j=mx.example.org',
        'abort#2',
        'mail#3 <d@example.org> auth=undefined j=mx.example.org',
        'eom i=undefined',
      ],
    );
  });

  test('quit-new-connection reuses the socket for a new negotiation', async () => {
    const { app, events } = recorder();
    const m = await start(app);
    const c = await m.client();
    await openSession(c);
    c.quitNewConnection();
    await c.negotiate();
    await c.mail('<a@example.org>');
    assert.deepEqual((await c.endOfMessage()).decision, Decisions.accept);
    assert.ok(events.includes('close quitNewConnection'));
  });

  test('an action that was not negotiated fails the message with tempfail, not the process', async () => {
    const { app } = recorder(
      {
        endOfMessage: async (eom) => {
          await eom.replaceBody(Buffer.from('x'));
          return Decisions.accept;
        },
      },
      {},
      { optionalActions: ['ADDHDRS'] },
    );
    const m = await start(app);
    const c = await m.client();
    await c.mail('<a@example.org>');
    const eom = await c.endOfMessage();
    assert.deepEqual(eom.decision, Decisions.tempfail);
    assert.deepEqual(eom.modifications, []);
  });

  test('garbage closes only its own connection', async () => {
    const { app } = recorder();
    const m = await start(app);
    const good = await m.client();
    const bad = await m.client();
    bad.writeRaw(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x42]));
    const early = await m.client(false);
    early.writeRaw(encodeFrame(Cmd.MAIL, Buffer.from('<a@b>\0')));
    await until(() => bad.closed && early.closed, 5000, 'bad connections closed');
    await good.mail('<a@example.org>');
    assert.deepEqual((await good.endOfMessage()).decision, Decisions.accept);
  });

  test('a 5 MB body replacement arrives whole, in packets of at most 65535 bytes', async () => {
    const body = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = 0x41 + (i % 26);
    const { app } = recorder({
      endOfMessage: async (eom) => {
        await eom.replaceBody(
          (function* () {
            for (let off = 0; off < body.length; off += 100_000)
              yield body.subarray(off, off + 100_000);
          })(),
        );
        return Decisions.continue;
      },
    });
    const m = await start(app);
    const c = await m.client();
    await c.mail('<a@example.org>');
    const eom = await c.endOfMessage();
    const chunks = eom.modifications.map((x) =>
      x.type === 'replaceBody' ? x.chunk : Buffer.alloc(0),
    );
    assert.ok(chunks.every((ch) => ch.length > 0 && ch.length <= 65535));
    assert.ok(Buffer.concat(chunks).equals(body));
  });

  test('a peer streaming a large body gets one read per turn of the event loop, not 32', async () => {
    // libuv reads up to 32 x 64 KiB from one socket per turn: a small message's
    // packets on another connection would wait behind 2 MiB of this body.
    let bytesThisTurn = 0;
    let mostInOneTurn = 0;
    let received = 0;
    const { app } = recorder(
      {
        body: (chunk) => {
          bytesThisTurn += chunk.length;
          received += chunk.length;
          return undefined;
        },
      },
      {},
      // As the gateway asks Postfix: no reply per body packet, so the client just streams.
      { noReply: ['body'] },
    );
    const m = await start(app);
    const c = await m.client();
    await c.mail('<a@example.org>');
    let ticking = true;
    const tick = () => {
      mostInOneTurn = Math.max(mostInOneTurn, bytesThisTurn);
      bytesThisTurn = 0;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const chunk = Buffer.alloc(65535, 0x41);
    const frames = Buffer.concat(Array.from({ length: 256 }, () => encodeFrame(Cmd.BODY, chunk)));
    c.writeRaw(frames);
    await until(() => received === 256 * 65535, 20_000, 'the whole body handled');
    ticking = false;
    // One read (64 KiB) per turn, and the rest of a packet it ended inside.
    assert.ok(mostInOneTurn <= 3 * 65535, `${mostInOneTurn} body bytes in one turn`);
    assert.deepEqual((await c.endOfMessage()).decision, Decisions.accept);
  });

  test('progress is sent while a slow end of message runs', async () => {
    const { app } = recorder({
      endOfMessage: async () => {
        await sleep(250);
        return Decisions.accept;
      },
    });
    const m = await start(app, { progressIntervalMs: 40 });
    const c = await m.client();
    await c.mail('<a@example.org>');
    const eom = await c.endOfMessage();
    assert.ok(eom.progress >= 3, `progress packets: ${eom.progress}`);
  });

  test('closing drains: an open message finishes, idle connections close at once', async () => {
    let release!: () => void;
    const { app } = recorder({
      endOfMessage: () =>
        new Promise((resolve) => {
          release = () => resolve(Decisions.accept);
        }),
    });
    const server = new MilterServer(app);
    const spec = await server.listen({ kind: 'inet', host: '127.0.0.1', port: 0 });
    const busy = await MilterClient.connect(spec);
    const idle = await MilterClient.connect(spec);
    await busy.negotiate();
    await idle.negotiate();
    await busy.mail('<a@example.org>');
    const eom = busy.endOfMessage();
    await sleep(20);
    const closing = server.close(5000);
    await until(() => idle.closed, 5000, 'idle connection closed');
    assert.equal(busy.closed, false, 'busy connection kept until its message ends');
    release();
    assert.deepEqual((await eom).decision, Decisions.accept);
    await closing;
    assert.equal(server.connectionCount, 0);
  });

  test('unix socket: listens, replaces a stale socket file, refuses a live one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'milter-'));
    const path = join(dir, 'milter.sock');
    try {
      const stale = net.createServer();
      await new Promise<void>((r) => stale.listen(path, r));
      // Simulate a crash: the socket file stays, nobody listens.
      (stale as unknown as { _handle: { close(): void } })._handle.close();
      const { app } = recorder();
      const live = new MilterServer(app);
      await live.listen({ kind: 'unix', path });
      const c = await MilterClient.connect({ kind: 'unix', path });
      await c.negotiate();
      await c.mail('<a@example.org>');
      assert.deepEqual((await c.endOfMessage()).decision, Decisions.accept);
      await assert.rejects(new MilterServer(app).listen({ kind: 'unix', path }), /in use/);
      c.destroy();
      await live.close(100);
      await writeFile(join(dir, 'plain'), 'x');
      await assert.rejects(
        new MilterServer(app).listen({ kind: 'unix', path: join(dir, 'plain') }),
        /not a socket/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a connection-level reject at CONNECT is passed on', async () => {
    const { app } = recorder({}, { connect: () => Decisions.reject });
    const m = await start(app);
    const c = await m.client();
    assert.deepEqual(await c.connectEvent(CONNECT), Decisions.reject);
  });

  test('an idle connection is closed after the idle timeout', async () => {
    const { app, events } = recorder();
    const m = await start(app, { idleTimeoutMs: 100 });
    const c = await m.client();
    await until(() => c.closed && events.includes('close timeout'), 5000, 'idle close');
  });
});
