/**
 * The pass-through application: accepts every message unchanged. It asks the
 * MTA for no event at all, so each message costs one round trip (end of
 * message) on the milter socket.
 */

import type { MilterApplication, TransactionHandler } from '../../protocol/index.js';
import { Decisions } from '../../protocol/index.js';

const acceptEverything: TransactionHandler = {
  endOfMessage: () => Decisions.accept,
};

export function passThroughApplication(): MilterApplication {
  return {
    capabilities: { events: [] },
    openConnection: () => ({ transaction: () => acceptEverything }),
  };
}
