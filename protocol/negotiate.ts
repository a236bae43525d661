/**
 * Option negotiation: the filter declares what it needs, the MTA says what it
 * offers, and we answer with the intersection (the MTA fails the connection if
 * we ask for an action or step it did not offer).
 */

import {
  Action,
  type ActionName,
  EVENT_NAMES,
  EVENT_STEPS,
  type EventName,
  type MacroStageName,
  MILTER_CHUNK_SIZE,
  MILTER_MIN_VERSION,
  MILTER_VERSION,
  Step,
} from './constants.js';
import type { NegotiationReply } from './replies.js';

export interface Capabilities {
  /** Actions the filter cannot work without: negotiation fails if the MTA lacks one. */
  readonly actions?: readonly ActionName[];
  /** Actions used when the MTA offers them. */
  readonly optionalActions?: readonly ActionName[];
  /** Events the filter wants to see (default all); the MTA is asked not to send the others. */
  readonly events?: readonly EventName[];
  /** Events whose reply never matters: the MTA is asked not to wait for one. */
  readonly noReply?: readonly EventName[];
  /** Macros wanted per stage, asked for with set-symlist when the MTA supports it. */
  readonly macros?: Partial<Record<MacroStageName, readonly string[]>>;
  /** Receive header values with their leading space kept (SMFIP_HDR_LEADSPC). */
  readonly headerLeadingSpace?: boolean;
  /** Also see recipients the MTA already rejected (SMFIP_RCPT_REJ). */
  readonly rejectedRecipients?: boolean;
  /** Largest body chunk wanted; Sendmail honours 256 KiB and 1 MiB, Postfix always sends 64 KiB. */
  readonly maxBodyChunk?: number;
}

export interface MtaOffer {
  readonly version: number;
  readonly actions: number;
  readonly steps: number;
}

export interface Negotiated {
  readonly version: number;
  /** Agreed action bits. */
  readonly actions: number;
  /** Step bits we answered with. */
  readonly steps: number;
  readonly offer: MtaOffer;
  /** Events the MTA will send (it may send others anyway if it could not switch them off). */
  readonly events: ReadonlySet<EventName>;
  /** Events the MTA will not wait for a reply to: answering them would desync the stream. */
  readonly noReply: ReadonlySet<EventName>;
  /** Whether a `skip` reply to a body chunk is understood. */
  readonly skip: boolean;
  readonly headerLeadingSpace: boolean;
  readonly rejectedRecipients: boolean;
  /** Largest body chunk the MTA will send. */
  readonly maxBodyChunk: number;
  /** Macro lists sent with set-symlist, by stage. */
  readonly macros: Partial<Record<MacroStageName, string>>;
}

export type NegotiationResult =
  | { readonly ok: true; readonly negotiated: Negotiated; readonly reply: NegotiationReply }
  | { readonly ok: false; readonly reason: string };

/** `auth_authen` and `{auth_authen}` both name a macro; single letters go bare. */
export function macroWireName(name: string): string {
  const bare = name.startsWith('{') && name.endsWith('}') ? name.slice(1, -1) : name;
  return bare.length === 1 ? bare : `{${bare}}`;
}

function actionBits(names: readonly ActionName[] | undefined): number {
  let bits = 0;
  for (const n of names ?? []) bits |= Action[n];
  return bits;
}

function actionNames(bits: number): string[] {
  return (Object.keys(Action) as ActionName[]).filter((n) => (bits & Action[n]) !== 0);
}

export function negotiate(offer: MtaOffer, caps: Capabilities): NegotiationResult {
  if (offer.version < MILTER_MIN_VERSION) {
    return { ok: false, reason: `MTA speaks milter protocol version ${offer.version}, need >= 2` };
  }
  const version = Math.min(offer.version, MILTER_VERSION);

  const required = actionBits(caps.actions);
  const missing = required & ~offer.actions;
  if (missing !== 0) {
    return {
      ok: false,
      reason: `MTA does not offer the actions ${actionNames(missing).join(', ')} (offered 0x${offer.actions.toString(16)})`,
    };
  }
  let actions = (required | actionBits(caps.optionalActions)) & offer.actions;

  const wanted = new Set<EventName>(caps.events ?? EVENT_NAMES);
  const noReplyWanted = new Set<EventName>(caps.noReply ?? []);
  let steps = 0;
  const events = new Set<EventName>();
  const noReply = new Set<EventName>();
  for (const event of EVENT_NAMES) {
    const bits = EVENT_STEPS[event];
    if (!wanted.has(event) && (offer.steps & bits.no) !== 0) {
      steps |= bits.no;
      continue;
    }
    events.add(event);
    if ((!wanted.has(event) || noReplyWanted.has(event)) && (offer.steps & bits.noReply) !== 0) {
      steps |= bits.noReply;
      noReply.add(event);
    }
  }
  const skip = (offer.steps & Step.SKIP) !== 0;
  if (skip) steps |= Step.SKIP;
  const headerLeadingSpace =
    caps.headerLeadingSpace === true && (offer.steps & Step.HDR_LEADSPC) !== 0;
  if (headerLeadingSpace) steps |= Step.HDR_LEADSPC;
  const rejectedRecipients =
    caps.rejectedRecipients === true && (offer.steps & Step.RCPT_REJ) !== 0;
  if (rejectedRecipients) steps |= Step.RCPT_REJ;

  let maxBodyChunk = MILTER_CHUNK_SIZE;
  const chunkWanted = caps.maxBodyChunk ?? MILTER_CHUNK_SIZE;
  if (chunkWanted > 256 * 1024 && (offer.steps & Step.MDS_1M) !== 0) {
    steps |= Step.MDS_1M;
    maxBodyChunk = 1024 * 1024 - 1;
  } else if (chunkWanted > MILTER_CHUNK_SIZE && (offer.steps & Step.MDS_256K) !== 0) {
    steps |= Step.MDS_256K;
    maxBodyChunk = 256 * 1024 - 1;
  }

  const macros: Partial<Record<MacroStageName, string>> = {};
  if (caps.macros && (offer.actions & Action.SETSYMLIST) !== 0) {
    for (const [stage, names] of Object.entries(caps.macros) as [MacroStageName, string[]][]) {
      if (names.length > 0) macros[stage] = names.map(macroWireName).join(' ');
    }
    if (Object.keys(macros).length > 0) actions |= Action.SETSYMLIST;
  }
  const hasMacros = Object.keys(macros).length > 0;

  const negotiated: Negotiated = {
    version,
    actions,
    steps,
    offer,
    events,
    noReply,
    skip,
    headerLeadingSpace,
    rejectedRecipients,
    maxBodyChunk,
    macros,
  };
  const reply: NegotiationReply = hasMacros
    ? { type: 'optneg', version, actions, steps, macros }
    : { type: 'optneg', version, actions, steps };
  return { ok: true, negotiated, reply };
}
