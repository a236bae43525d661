/**
 * In-process protocol benchmark: our client drives our server over loopback.
 * Measures whole transactions per second (Postfix-like event sequence) and
 * body throughput, with no MTA in the way.
 */

import { performance } from 'node:perf_hooks';
import {
  Cmd,
  Decisions,
  type MilterApplication,
  MilterClient,
  MilterServer,
} from '../protocol/index.js';

export interface ProtocolBenchResult {
  readonly name: string;
  readonly transactions: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly mbPerSecond: number;
}

/** Every event on, every reply awaited: the worst case for round trips. */
const chattyApp: MilterApplication = {
  capabilities: { optionalActions: ['ADDHDRS'] },
  openConnection: () => ({
    transaction: () => ({
      header: () => undefined,
      body: () => undefined,
      endOfMessage: async (eom) => {
        await eom.addHeader('X-Bench', 'seen');
        return Decisions.accept;
      },
    }),
  }),
};

/** Headers and body without replies (NR steps), as a content filter would ask. */
const streamingApp: MilterApplication = {
  capabilities: {
    optionalActions: ['ADDHDRS'],
    events: ['header', 'body'],
    noReply: ['header', 'body'],
  },
  openConnection: chattyApp.openConnection,
};

const HEADERS: [string, string][] = [
  ['Received', 'from client.example.net (client.example.net [192.0.2.9]) by mx.example.org'],
  ['From', 'Alice <alice@example.org>'],
  ['To', 'Bob <bob@example.net>'],
  ['Subject', 'benchmark message'],
  ['Date', 'Mon, 23 Nov 2026 10:00:00 +0000'],
  ['Message-ID', '<bench@example.org>'],
  ['MIME-Version', '1.0'],
  ['Content-Type', 'text/plain; charset=us-ascii'],
];

async function runLoad(
  name: string,
  app: MilterApplication,
  connections: number,
  perConnection: number,
  body: Buffer,
): Promise<ProtocolBenchResult> {
  const server = new MilterServer(app);
  const spec = await server.listen({ kind: 'inet', host: '127.0.0.1', port: 0 });
  const clients = await Promise.all(
    Array.from({ length: connections }, () => MilterClient.connect(spec)),
  );
  await Promise.all(clients.map((c) => c.negotiate()));
  const start = performance.now();
  await Promise.all(
    clients.map(async (c) => {
      c.macros(Cmd.CONNECT, { j: 'mx.example.org' });
      await c.connectEvent({ hostname: 'client', family: 'inet', port: 1, address: '192.0.2.9' });
      await c.helo('client.example.net');
      for (let i = 0; i < perConnection; i++) {
        const r = await c.sendMessage({
          from: '<alice@example.org>',
          rcpts: ['<bob@example.net>'],
          headers: HEADERS,
          body,
          macros: { mail: { i: `Q${i}` } },
        });
        if (r.decision?.type !== 'accept')
          throw new Error(`unexpected decision ${r.decision?.type}`);
        c.abort();
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  for (const c of clients) c.destroy();
  await server.close(1000);
  const transactions = connections * perConnection;
  return {
    name,
    transactions,
    seconds,
    perSecond: transactions / seconds,
    mbPerSecond: (transactions * body.length) / seconds / 1e6,
  };
}

export async function protocolBenchmarks(): Promise<ProtocolBenchResult[]> {
  const small = Buffer.alloc(10 * 1024, 'x');
  const large = Buffer.alloc(10 * 1024 * 1024, 'y');
  return [
    await runLoad('10 KB, every event answered, 20 connections', chattyApp, 20, 500, small),
    await runLoad('10 KB, headers+body no-reply, 20 connections', streamingApp, 20, 500, small),
    await runLoad('10 MB body, every chunk answered, 4 connections', chattyApp, 4, 10, large),
    await runLoad('10 MB body, no-reply chunks, 4 connections', streamingApp, 4, 10, large),
  ];
}
