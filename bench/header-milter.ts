/**
 * A milter that adds one header to every message: the "does something at end
 * of message" peer in the Postfix benchmark. Run as its own process:
 * `node dist/bench/header-milter.js PORT`.
 */

import { Decisions, MilterServer } from '../protocol/index.js';

const port = Number(process.argv[2] ?? 0);
const server = new MilterServer({
  capabilities: { actions: ['ADDHDRS'], events: ['mail'], noReply: ['mail'] },
  openConnection: () => ({
    transaction: () => ({
      endOfMessage: async (eom) => {
        await eom.addHeader('X-Bench-Milter', 'seen');
        return Decisions.accept;
      },
    }),
  }),
});
await server.listen({ kind: 'inet', host: '127.0.0.1', port });
process.stdout.write('milter listening\n');
process.on('SIGTERM', () => {
  void server.close(2000).then(() => process.exit(0));
});
