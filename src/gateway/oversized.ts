/**
 * Inbound mail over the gateway's size limit: nothing was decrypted or
 * verified, and its body was not kept. Refused, or delivered unchanged but
 * for our Authentication-Results (temperror), which replaces any that
 * claim to be ours, exactly as for mail the transform could not read.
 */

import { type Decision, Decisions, type EndOfMessage } from '../../protocol/index.js';
import type { Action } from '../policy/actions.js';
import { type SmimeResult, verdictOf } from '../smime/verdict.js';
import { authenticationResults, authservIdOf } from './auth-results.js';
import { divert, type Failure, refusal } from './failure-actions.js';
import { headerEdits, mtaHeaderValue } from './header-edits.js';
import type { ReceivedHeader } from './message.js';

export interface OversizedContext {
  readonly headers: readonly ReceivedHeader[];
  readonly authservId: string;
  readonly recipients: readonly string[];
  readonly adminAddress: string | undefined;
  readonly leadingSpace: boolean;
}

export async function oversizedInbound(
  eom: EndOfMessage,
  failure: Failure,
  action: Action,
  ctx: OversizedContext,
): Promise<{ decision: Decision; verdict: SmimeResult }> {
  const verdict = verdictOf(
    { direction: 'inbound', actions: [], notes: [], layers: [] },
    { code: 'too-large', message: failure.reason },
  );
  const refused = refusal(action, failure);
  if (refused) return { decision: refused, verdict: verdict.result };
  const ours = ctx.authservId.toLowerCase();
  const original = ctx.headers.map((h) => ({ name: h.name, value: h.value.toString('latin1') }));
  const kept = original.filter(
    (f) => f.name.toLowerCase() !== 'authentication-results' || authservIdOf(f.value) !== ours,
  );
  for (const edit of headerEdits(original, kept))
    if (edit.kind === 'delete') await eom.deleteHeader(edit.name, edit.index);
  await eom.insertHeader(
    0,
    'Authentication-Results',
    mtaHeaderValue(authenticationResults(ctx.authservId, verdict), ctx.leadingSpace),
  );
  const decision =
    action === 'accept'
      ? Decisions.accept
      : await divert(eom, action, failure, {
          recipients: ctx.recipients,
          adminAddress: ctx.adminAddress,
          leadingSpace: ctx.leadingSpace,
        });
  return { decision, verdict: verdict.result };
}
