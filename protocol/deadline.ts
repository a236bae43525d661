/** A handler's answer within a deadline. */

import { MilterTimeoutError } from './errors.js';
import type { Reply } from './handler.js';
import { type Decision, Decisions } from './replies.js';

/**
 * Runs `fn` and returns its decision (continue when it gives none); rejects
 * with what it threw, or with a MilterTimeoutError once `timeoutMs` passed
 * without an answer. A synchronous answer costs no timer.
 */
export async function withinDeadline(
  stage: string,
  fn: () => Reply,
  timeoutMs: number,
): Promise<Decision> {
  const result = fn();
  if (result === undefined) return Decisions.continue;
  if (!isPromise(result)) return result;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new MilterTimeoutError(`${stage} handler did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return (await Promise.race([result, timeout])) ?? Decisions.continue;
  } finally {
    clearTimeout(timer);
  }
}

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown })?.then === 'function';
}
