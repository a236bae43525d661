/**
 * The answer to inbound encrypted mail is given at a multiple of a quantum
 * after end of message: how far decryption got (a key blob that does not
 * decrypt, content that does not parse, a signature verified to the end)
 * must not show in the time to answer (SECURITY.md).
 */

/** Resolves at the next multiple of `quantumMs` after `started` (process.hrtime.bigint()). */
export function replyQuantum(started: bigint, quantumMs = 0): Promise<void> {
  if (quantumMs <= 0) return Promise.resolve();
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  const waitMs = Math.ceil(elapsedMs / quantumMs) * quantumMs - elapsedMs;
  return new Promise((resolve) => setTimeout(resolve, Math.max(waitMs, 0)));
}
