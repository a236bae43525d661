/**
 * The pass-through application: accepts every message unchanged. It asks the
 * MTA only for MAIL, without a reply (so the server knows a message is open
 * and SIGTERM lets it finish), and answers end of message: one round trip
 * per message on the milter socket.
 */

import type { MilterApplication, TransactionHandler } from '../../protocol/index.js';
import { Decisions } from '../../protocol/index.js';

const acceptEverything: TransactionHandler = {
  endOfMessage: () => Decisions.accept,
};

export function passThroughApplication(): MilterApplication {
  return {
    capabilities: { events: ['mail'], noReply: ['mail'] },
    openConnection: () => ({ transaction: () => acceptEverything }),
  };
}
