/**
 * Carrying out a failure action at end of message. `reject` and `tempfail`
 * answer the MTA and change nothing; the others deliver what can be
 * delivered (with its Authentication-Results), and `quarantine` asks the MTA
 * to hold it (Postfix: the hold queue), `redirect` replaces the recipients by
 * the administrator's address and says why in X-Domsec-Refused.
 */

import { type Decision, Decisions, type EndOfMessage, replyCode } from '../../protocol/index.js';
import type { Action, FailureKind } from '../policy/actions.js';
import { mtaHeaderValue } from './header-edits.js';

export const REFUSED_HEADER = 'X-Domsec-Refused';

export interface Failure {
  readonly kind: FailureKind;
  readonly reason: string;
}

/** One line, printable ASCII, short: for SMTP replies and header values. */
function tidy(text: string, max: number): string {
  return text
    .replace(/[^\x20-\x7e]+/g, ' ')
    .trim()
    .slice(0, max);
}

/** The MTA's answer for actions that refuse the message outright, else undefined. */
export function refusal(action: Action, failure: Failure): Decision | undefined {
  const text = tidy(`${failure.kind}: ${failure.reason}`, 200);
  if (action === 'reject') return replyCode(550, '5.7.1', text);
  if (action === 'tempfail') return replyCode(451, '4.7.1', text);
  return undefined;
}

/** After the message's own edits: the extra steps of quarantine and redirect. */
export interface DivertContext {
  /** The envelope recipients as the MTA gave them. */
  readonly recipients: readonly string[];
  readonly adminAddress: string | undefined;
  /** SMFIP_HDR_LEADSPC negotiated: header values carry their leading space. */
  readonly leadingSpace: boolean;
}

export async function divert(
  eom: EndOfMessage,
  action: Action,
  failure: Failure,
  ctx: DivertContext,
): Promise<Decision> {
  const text = tidy(`${failure.kind}: ${failure.reason}`, 900);
  if (action === 'quarantine') {
    await eom.quarantine(tidy(`domsec ${text}`, 200));
  } else if (action === 'redirect') {
    if (!ctx.adminAddress) throw new Error('redirect without DOMSEC_ADMIN_ADDRESS'); // refused by the config
    await eom.addHeader(REFUSED_HEADER, mtaHeaderValue(text, ctx.leadingSpace));
    for (const r of ctx.recipients) await eom.deleteRecipient(r);
    await eom.addRecipient(`<${ctx.adminAddress}>`);
  }
  return Decisions.accept;
}
