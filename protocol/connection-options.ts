/** What one MTA connection may be told, and the defaults it runs with otherwise. */

import { DEFAULT_MAX_FRAME } from './frame.js';
import type { ProtocolLogger } from './handler.js';
import { type Decision, Decisions } from './replies.js';

export interface ConnectionOptions {
  /** Largest packet accepted from the MTA. */
  readonly maxFrameLength?: number;
  /** Time a handler has to answer one command (Postfix waits 30 s by default). */
  readonly stageTimeoutMs?: number;
  /** Time the end-of-message handler has (Postfix's content timeout is 300 s). */
  readonly eomTimeoutMs?: number;
  /** While end of message runs, tell the MTA we are alive this often (0: never). */
  readonly progressIntervalMs?: number;
  /** Close a connection on which the MTA sent nothing for this long. */
  readonly idleTimeoutMs?: number;
  /** Pause reading when this many received bytes wait to be handled. */
  readonly maxQueuedBytes?: number;
  /** The reply when a handler throws or times out: tempfail keeps the mail queued. */
  readonly failureDecision?: Decision;
  readonly logger?: ProtocolLogger;
  /** Told of every failure, for metrics. */
  readonly onFailure?: (kind: 'protocol-error' | 'handler-error' | 'handler-timeout') => void;
}

const DEFAULTS = {
  maxFrameLength: DEFAULT_MAX_FRAME,
  stageTimeoutMs: 25_000,
  eomTimeoutMs: 280_000,
  progressIntervalMs: 10_000,
  idleTimeoutMs: 3_600_000,
  maxQueuedBytes: 4 * 1024 * 1024,
  failureDecision: Decisions.tempfail as Decision,
  onFailure: (_kind: 'protocol-error' | 'handler-error' | 'handler-timeout') => {},
};

export type ResolvedOptions = typeof DEFAULTS;

/** The server passes one options object to every connection: merge it with the defaults once. */
const resolved = new WeakMap<ConnectionOptions, ResolvedOptions>();

export function resolveOptions(options: ConnectionOptions): ResolvedOptions {
  let r = resolved.get(options);
  if (!r) {
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    r = { ...DEFAULTS, ...given };
    resolved.set(options, r);
  }
  return r;
}
