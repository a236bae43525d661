/**
 * A sending MTA in miniature, for fault and soak tests: many messages over
 * parallel SMTP sessions (one message per session), optionally paced, and
 * every temporary refusal retried later, as a real MTA keeps a message in
 * its queue after a 4xx. What it records is what the promise "queued or
 * refused, never lost" is checked against.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { type SendMailResult, sendMail } from './smtp-client.js';

export interface LoadMessage {
  /** Unique per message: what the receiving side is matched against. */
  readonly id: string;
  readonly from: string;
  readonly to: readonly string[];
  readonly data: Buffer | string;
}

export interface LoadOptions {
  readonly port: number;
  /** Parallel SMTP sessions. */
  readonly concurrency: number;
  /** Messages per second over all sessions; unpaced when absent. */
  readonly rate?: number;
  /** Wait before a temporarily refused message is offered again. */
  readonly retryDelayMs?: number;
  /** Give up retrying (the message then counts as `unsent`) after this long. */
  readonly deadlineMs?: number;
  /** Per SMTP session. */
  readonly sessionTimeoutMs?: number;
  /** Told of every accepted message, in order of acceptance. */
  readonly onAccepted?: (id: string) => void;
  /** Stops taking new messages when it returns true (soak: the time is up). */
  readonly stop?: () => boolean;
}

export interface LoadReport {
  /** Messages taken from the source (each counted once, however often it was retried). */
  offered: number;
  /** Ids the server took responsibility for (2xx to the final dot), in order. */
  readonly accepted: string[];
  /** 4xx replies and broken sessions, each followed by a retry. */
  temporaryRefusals: number;
  /** The distinct temporary reply texts, for the report. */
  readonly temporaryReasons: Set<string>;
  /** Permanently refused (5xx): the sender would bounce these. */
  readonly refused: { readonly id: string; readonly reply: string }[];
  /** Still temporarily refused when the deadline passed (or never tried before `stop`). */
  readonly unsent: string[];
  /**
   * Sessions that broke (timed out, closed without a reply): if that happened
   * after the final dot, the outcome is unknown and a retry may duplicate (RFC 1047).
   */
  readonly ambiguous: string[];
}

type Outcome =
  | { readonly kind: 'accepted' }
  | { readonly kind: 'temporary'; readonly reason: string }
  | { readonly kind: 'refused'; readonly reply: string };

function outcomeOf(r: SendMailResult): Outcome {
  if (r.dataReply) {
    const text = `${r.dataReply.code} ${r.dataReply.text}`;
    if (r.dataReply.code < 300) return { kind: 'accepted' };
    return r.dataReply.code < 500
      ? { kind: 'temporary', reason: text }
      : { kind: 'refused', reply: text };
  }
  // The first refusal decides (a 5xx to EHLO followed by a good HELO is not one).
  const helo = r.replies.some((s) => s.command.startsWith('HELO') && s.code < 400);
  const first = r.replies.find(
    (s) => s.code >= 400 && !(helo && s.command.startsWith('EHLO')) && s.command !== 'QUIT',
  );
  if (!first) return { kind: 'temporary', reason: 'session ended without an answer' };
  const text = `${first.code} ${first.text}`;
  return first.code < 500 ? { kind: 'temporary', reason: text } : { kind: 'refused', reply: text };
}

/**
 * Offers every message until it is accepted or refused (or the deadline
 * passes). `messages` may be a generator (a soak makes them as it goes).
 */
export async function deliverAll(
  messages: Iterable<LoadMessage>,
  o: LoadOptions,
): Promise<LoadReport> {
  const fresh = messages[Symbol.iterator]();
  let exhausted = false;
  const report: LoadReport = {
    offered: 0,
    accepted: [],
    temporaryRefusals: 0,
    temporaryReasons: new Set(),
    refused: [],
    unsent: [],
    ambiguous: [],
  };
  const started = Date.now();
  const deadline = started + (o.deadlineMs ?? 120_000);
  const retryDelay = o.retryDelayMs ?? 500;
  // Temporarily refused messages waiting for another try, each with its "not before" time.
  const queue: { m: LoadMessage; notBefore: number }[] = [];
  let inFlight = 0;
  let nextSlot = started;

  const pace = async (): Promise<void> => {
    if (!o.rate) return;
    const slot = Math.max(Date.now(), nextSlot);
    nextSlot = slot + 1000 / o.rate;
    if (slot > Date.now()) await sleep(slot - Date.now());
  };

  // Retries that are due first, then new messages.
  const take = (): { m: LoadMessage; notBefore: number } | undefined => {
    const now = Date.now();
    const i = queue.findIndex((q) => q.notBefore <= now);
    if (i >= 0) return queue.splice(i, 1)[0];
    if (exhausted) return undefined;
    const next = fresh.next();
    if (next.done) {
      exhausted = true;
      return undefined;
    }
    report.offered++;
    return { m: next.value, notBefore: 0 };
  };

  const attempt = async (m: LoadMessage): Promise<Outcome> => {
    try {
      return outcomeOf(
        await sendMail({
          port: o.port,
          from: m.from,
          to: [...m.to],
          data: m.data,
          timeoutMs: o.sessionTimeoutMs ?? 60_000,
        }),
      );
    } catch (err) {
      return { kind: 'temporary', reason: (err as Error).message };
    }
  };

  const worker = async (): Promise<void> => {
    for (;;) {
      const stopping = o.stop?.() === true;
      if (Date.now() > deadline || (stopping && inFlight === 0)) return;
      const next = stopping ? undefined : take();
      if (!next) {
        // Nothing ready: done when nothing is queued or in flight, else wait for retries.
        if (exhausted && queue.length === 0 && inFlight === 0) return;
        if (stopping) return;
        await sleep(20);
        continue;
      }
      inFlight++;
      await pace();
      const r = await attempt(next.m);
      inFlight--;
      if (r.kind === 'accepted') {
        report.accepted.push(next.m.id);
        o.onAccepted?.(next.m.id);
      } else if (r.kind === 'refused') {
        report.refused.push({ id: next.m.id, reply: r.reply });
      } else {
        report.temporaryRefusals++;
        report.temporaryReasons.add(r.reason.replace(/\d{4,}/g, 'N'));
        if (/timed out|closed by server/.test(r.reason)) report.ambiguous.push(next.m.id);
        queue.push({ m: next.m, notBefore: Date.now() + retryDelay });
      }
    }
  };

  await Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, worker));
  report.unsent.push(...queue.map((q) => q.m.id));
  return report;
}

/** Count of each id among `ids`: the ones seen more than once, and the expected ones missing. */
export function tally(
  expected: readonly string[],
  ids: readonly string[],
): { readonly missing: string[]; readonly duplicated: string[]; readonly unexpected: string[] } {
  const seen = new Map<string, number>();
  for (const id of ids) seen.set(id, (seen.get(id) ?? 0) + 1);
  const want = new Set(expected);
  return {
    missing: expected.filter((id) => !seen.has(id)),
    duplicated: [...seen].filter(([, n]) => n > 1).map(([id]) => id),
    unexpected: [...seen.keys()].filter((id) => !want.has(id)),
  };
}
