/** Polls `condition` until it holds; fails after `timeoutMs`. For tests on a loaded machine. */
import { setTimeout as sleep } from 'node:timers/promises';

export async function until(
  condition: () => boolean,
  timeoutMs = 5000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await sleep(10);
  }
}
