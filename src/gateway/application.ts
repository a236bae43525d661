/**
 * The gateway as a milter application: one transaction per message, its
 * direction decided from the client and the envelope, recipients kept to one
 * protection class, and at end of message the S/MIME transform turned into
 * header edits and a body replacement. Whatever cannot be done as policy
 * demands ends in the configured failure reply (tempfail: the MTA keeps it).
 */

import {
  type ConnectInfo,
  type Decision,
  Decisions,
  type EndOfMessage,
  type MilterApplication,
  replyCode,
  type TransactionContext,
  type TransactionHandler,
} from '../../protocol/index.js';
import { DEFAULT_MIME_LIMITS, type MimeLimits, parseContentType } from '../mime/index.js';
import type { LookupResult } from '../pki/partners.js';
import { allDecryptionKeys } from '../pki/setup.js';
import { actionFor } from '../policy/actions.js';
import { arrivedEncrypted, inboundFailure } from '../policy/inbound-failure.js';
import { isRequired } from '../policy/requirements.js';
import { classify } from '../smime/detect.js';
import { transformInbound } from '../smime/inbound.js';
import { transformOutbound } from '../smime/outbound.js';
import type { InboundContext, TransformResult } from '../smime/types.js';
import { type SmimeVerdict, verdictOf } from '../smime/verdict.js';
import { mayVouch } from '../smime/vouching.js';
import { applyChanges, changedBody, type NewBody, withoutFields } from './apply-edits.js';
import { authenticationResults, authservIdOf } from './auth-results.js';
import type { GatewayDeps } from './deps.js';
import { type Direction, domainOf, recipientDirection } from './direction.js';
import { divert, type Failure, refusal } from './failure-actions.js';
import { harvestSenderCertificate } from './harvest-sender.js';
import { type Field, mtaHeaderValue } from './header-edits.js';
import { ReceivedMessage } from './message.js';
import { encryptionRequired, planOutbound } from './outbound-plan.js';
import { oversizedInbound } from './oversized.js';
import { replyQuantum } from './reply-quantum.js';

export type { GatewayDeps, GatewayLogger, MessageOutcome } from './deps.js';

/** The verdict on encrypted mail delivered as it came, whatever the reason. */
const UNDECRYPTED: SmimeVerdict = {
  result: 'permerror',
  reason: 'encrypted content not decrypted',
};

class Transaction implements TransactionHandler {
  private sender = '';
  private direction: Direction | undefined;
  private protection: 'encrypted' | 'plain' | undefined;
  private readonly recipients: string[] = [];
  /** Each recipient's ESMTP parameters (NOTIFY, ORCPT), as the client gave them. */
  private readonly recipientArgs = new Map<string, readonly string[]>();
  private readonly received: ReceivedMessage;
  /** Partner look-ups made at RCPT, reused at end of message (same answer, asked once). */
  private readonly lookups = new Map<string, Promise<LookupResult>>();
  private lookup(domain: string): Promise<LookupResult> {
    let answer = this.lookups.get(domain);
    if (!answer) {
      answer = this.deps.pki.partners.lookup(domain);
      this.lookups.set(domain, answer);
    }
    return answer;
  }

  private get leadingSpace(): boolean {
    return this.tx.connection.negotiated.headerLeadingSpace;
  }

  /** Why the message failed, for its log line. */
  private reason: string | undefined;
  private decryptFailure: string | undefined;
  /** Transformed in the offload worker (large message), for the log line. */
  private offloaded = false;
  /** The transform reads any message the gateway accepted: its size bound is ours. */
  private readonly limits: MimeLimits;

  constructor(
    private readonly deps: GatewayDeps,
    private readonly client: () => ConnectInfo | undefined,
    private readonly tx: TransactionContext,
  ) {
    this.received = new ReceivedMessage(
      deps.maxMessageBytes ?? DEFAULT_MIME_LIMITS.maxSize,
      tx.connection.negotiated.headerLeadingSpace,
    );
    this.limits =
      deps.maxMessageBytes === undefined
        ? DEFAULT_MIME_LIMITS
        : { ...DEFAULT_MIME_LIMITS, maxSize: deps.maxMessageBytes };
  }

  mail(address: string): undefined {
    this.sender = address;
    return undefined;
  }

  async rcpt(address: string, args: readonly string[] = []): Promise<Decision | undefined> {
    const c = this.client();
    const facts = { address: c?.address, authenticatedAs: this.tx.macro('auth_authen') };
    const d = recipientDirection(this.deps.directions, facts, this.sender, address);
    if (this.direction !== undefined && d !== this.direction) {
      // A milter cannot split a message: the client sends this recipient again separately.
      return replyCode(
        452,
        '4.5.3',
        `this recipient needs a separate ${d} transaction, please send it again`,
      );
    }
    let protection: 'encrypted' | 'plain' | undefined;
    if (d === 'outbound') {
      const domain = domainOf(address) ?? '';
      const required = encryptionRequired(this.deps.outbound, domain);
      const r =
        this.deps.outbound.encrypt === 'never' && !required ? undefined : await this.lookup(domain);
      if (required && r?.status === 'not-found') {
        return replyCode(
          550,
          '5.7.1',
          `encryption to ${domain} is required and no certificate is known`,
        );
      }
      if (required && r?.status === 'temporary-failure') {
        return replyCode(450, '4.7.1', `certificate lookup for ${domain} failed, try again later`);
      }
      // One protected copy serves all recipients: those who can read it, or those who cannot.
      protection = r?.status === 'found' ? 'encrypted' : 'plain';
      if (this.protection !== undefined && protection !== this.protection) {
        return replyCode(
          452,
          '4.5.3',
          `this recipient needs a separately ${protection} copy, please send it again`,
        );
      }
    }
    this.protection = protection;
    this.direction = d;
    this.recipients.push(address);
    this.recipientArgs.set(address, args);
    return undefined;
  }

  header(name: string, value: Buffer): undefined {
    this.received.addHeader(name, value);
    return undefined;
  }

  body(chunk: Buffer): undefined {
    this.received.addBody(chunk);
    return undefined;
  }

  async endOfMessage(eom: EndOfMessage): Promise<Decision> {
    const started = process.hrtime.bigint();
    const direction = this.direction ?? 'pass';
    const done = (
      action: string,
      outcome: 'ok' | 'failed',
      decision: Decision,
      smime?: string,
    ): Decision => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.deps.onMessage?.({
        direction,
        action,
        outcome,
        seconds,
        ...(smime ? { smime } : {}),
        ...(this.decryptFailure ? { decryptFailure: this.decryptFailure } : {}),
      });
      this.deps.log.info(
        {
          queue: this.tx.macro('i'),
          direction,
          action,
          outcome,
          ms: Math.round(seconds * 1000),
          ...(smime ? { smime } : {}),
          ...(this.reason ? { reason: this.reason } : {}),
          ...(this.offloaded ? { offloaded: true } : {}),
        },
        'message',
      );
      return decision;
    };
    if (direction === 'pass') return done('none', 'ok', Decisions.accept);
    if (this.received.oversized) return this.tooLarge(eom, direction, done);
    const message = await this.received.take(this.offloadsInbound(direction, this.received.size));
    const original = this.received.headers.map((h) => ({
      name: h.name,
      value: h.value.toString('latin1'),
    }));
    if (direction === 'outbound') return this.outbound(eom, message, original, done);
    const decision = await this.inbound(eom, message, original, done);
    // How far decryption got must not show in the time to answer either: the
    // answer to encrypted mail waits for the next multiple of the quantum.
    if (arrivedEncrypted(message)) await replyQuantum(started, this.deps.encryptedReplyQuantumMs);
    return decision;
  }

  private async outbound(
    eom: EndOfMessage,
    message: Buffer,
    original: Field[],
    done: Done,
  ): Promise<Decision> {
    const d = this.deps;
    const partners = { lookup: (domain: string) => this.lookup(domain) };
    let plan = await planOutbound(this.sender, this.recipients, d.identities, partners, d.outbound);
    const signer =
      plan.kind === 'protect' && plan.context.options.sign ? plan.context.signer : undefined;
    if (signer) {
      const vouching = await mayVouch(message, signer.certificate, d.pki.validator, this.limits);
      if (!vouching.ok) {
        const failure: Failure = { kind: vouching.kind, reason: vouching.reason };
        if (actionFor(d.failures, failure.kind, false) !== 'accept')
          return this.fail(eom, failure, done);
        // Sent on without our signature (encrypted still, where it can be).
        this.logFailure(failure, 'accept');
        plan = await planOutbound(this.sender, this.recipients, d.identities, partners, {
          ...d.outbound,
          sign: 'never',
        });
      }
    }
    if (plan.kind === 'fail') {
      d.log.warn(
        { queue: this.tx.macro('i'), code: plan.code, reason: plan.message },
        'outbound policy cannot be met',
      );
      // A look-up that failed for now can only wait: nothing else would be right.
      if (plan.code === 'lookup-failed') {
        this.reason = plan.message;
        return done(plan.code, 'failed', replyCode(451, '4.7.1', plan.message.slice(0, 200)));
      }
      const kind = plan.code === 'no-certificate' ? 'no-certificate' : 'internal-error';
      return this.fail(eom, { kind, reason: plan.message }, done);
    }
    if (plan.kind === 'pass') return done('none', 'ok', Decisions.accept);
    const context = { ...plan.context, limits: this.limits };
    let r: TransformResult;
    let newBody: NewBody;
    let release: (() => void) | undefined;
    if (d.offload && message.length >= d.offload.minBytes) {
      // The message is transferred to the worker; its new body is fetched as the MTA takes it.
      this.offloaded = true;
      const o = await d.offload.transform(message, context);
      r = o.result;
      newBody = o.body?.pieces();
      release = o.body?.release;
    } else {
      r = await transformOutbound(message, context);
      newBody = r.ok ? changedBody(message, r.message) : undefined;
    }
    if (!r.ok) {
      // Content that cannot be protected as it is will not be later: no tempfail for it.
      const permanent = r.error.code === 'malformed-mime' || r.error.code === 'too-large';
      return this.fail(eom, { kind: 'internal-error', reason: r.error.message }, done, permanent);
    }
    try {
      await applyChanges(eom, r.message, newBody, original, this.leadingSpace);
    } finally {
      release?.();
    }
    const action = plan.context.options.encrypt
      ? plan.context.options.sign
        ? 'sign+encrypt'
        : 'encrypt'
      : 'sign';
    return done(r.report.actions.length === 0 ? 'none' : action, 'ok', Decisions.accept);
  }

  /**
   * Whether an inbound message is transformed in the offload worker: a large
   * one, and any S/MIME one whatever its size. What is inside a small CMS
   * object is the sender's choice (a BER SignedData of 0.5 MB can hold
   * 190 000 elements, seconds of parsing), so it is never read on the event
   * loop; plain mail, with nothing to decrypt or verify, stays here.
   */
  private offloadsInbound(direction: Direction, size: number): boolean {
    const offload = this.deps.offload;
    if (direction !== 'inbound' || !offload?.transformInbound) return false;
    if (size >= offload.minBytes) return true;
    const ct = this.received.headers.find((h) => h.name.toLowerCase() === 'content-type');
    const protection = classify(parseContentType(ct ? ct.value.toString('latin1').trim() : ''));
    return protection !== 'none';
  }

  /** transformInbound, in the offload worker when the message is large. */
  private inboundTransform(message: Buffer, context: InboundContext): Promise<TransformResult> {
    const offload = this.deps.offload?.transformInbound;
    if (!offload || !this.offloadsInbound('inbound', message.length))
      return transformInbound(message, context);
    this.offloaded = true;
    return offload(message, context);
  }

  private async inbound(
    eom: EndOfMessage,
    message: Buffer,
    original: Field[],
    done: Done,
  ): Promise<Decision> {
    const d = this.deps;
    let r: TransformResult = await this.inboundTransform(message, {
      keys: allDecryptionKeys(d.identities),
      validator: d.pki.validator,
      keepSignatures: d.keepSignatures === true,
      limits: this.limits,
    });
    let verdict = verdictOf(r.report, r.ok ? undefined : r.error);
    const senderDomain = domainOf(this.sender) ?? '';
    const sealed = arrivedEncrypted(message);
    const failure = inboundFailure(
      message,
      r.report,
      r.ok ? undefined : r.error,
      verdict,
      d.requirements,
      senderDomain,
    );
    if (failure?.kind === 'decrypt-failure') {
      if (!r.ok) this.decryptFailure = r.error.code;
      // One result for every way an encrypted message fails: the reason is in the log.
      verdict = UNDECRYPTED;
    }
    const policyAction = failure
      ? actionFor(d.failures, failure.kind, isRequired(d.requirements, senderDomain))
      : 'accept';
    if (failure) {
      const refused = refusal(policyAction, failure);
      if (refused) {
        this.logFailure(failure, policyAction);
        return done(policyAction, 'failed', refused, verdict.result);
      }
    }
    // Delivered: decrypted and verified when that worked, as it came otherwise.
    if (!r.ok) r = { ok: true, message, report: r.report };
    // Results claiming to be ours came from outside: forgeries, whether in the
    // header as received or in a protected copy of it the transform restored.
    const ours = d.authservId.toLowerCase();
    const withoutSpoofed = withoutFields(
      r.message,
      (name, value) =>
        name.toLowerCase() === 'authentication-results' && authservIdOf(value) === ours,
    );
    await applyChanges(
      eom,
      withoutSpoofed,
      changedBody(message, withoutSpoofed),
      original,
      this.leadingSpace,
    );
    await eom.insertHeader(
      0,
      'Authentication-Results',
      mtaHeaderValue(authenticationResults(d.authservId, verdict), this.leadingSpace),
    );
    if (verdict.result === 'pass' && d.harvested)
      await harvestSenderCertificate(d, domainOf(this.sender), r.report);
    if (sealed) await this.receiptsWithoutContent(eom, policyAction === 'redirect');
    if (failure) this.logFailure(failure, policyAction);
    if (failure && policyAction !== 'accept') {
      const decision = await divert(eom, policyAction, failure, {
        recipients: this.recipients,
        adminAddress: d.adminAddress,
        leadingSpace: this.leadingSpace,
      });
      return done(policyAction, 'failed', decision, verdict.result);
    }
    // Encrypted mail delivered as it came counts as the failure it is (a
    // verdict such as smime=fail is a message handled as it should be: ok).
    if (failure?.kind === 'decrypt-failure')
      return done(failure.kind, 'failed', Decisions.accept, verdict.result);
    const action = r.report.actions.length === 0 ? 'none' : r.report.actions.join('+');
    return done(action, 'ok', Decisions.accept, verdict.result);
  }

  /**
   * Mail that arrived encrypted gets delivery reports only for failures, and
   * those without a body (RET=HDRS): a report of success or delay is sent
   * on the sender's request (NOTIFY=SUCCESS,DELAY), and with RET=FULL it
   * would carry the decrypted message, our verdict and the restored
   * headers back to whoever gave the envelope sender. Recipients are
   * re-added with NOTIFY=FAILURE and their ORCPT kept; a redirected message's
   * recipients are replaced by the administrator's address, added without
   * NOTIFY (failures only).
   */
  private async receiptsWithoutContent(eom: EndOfMessage, redirected: boolean): Promise<void> {
    if (this.sender !== '' && this.sender !== '<>') await eom.changeFrom(this.sender, 'RET=HDRS');
    if (redirected) return;
    for (const r of this.recipients) {
      const orcpt = (this.recipientArgs.get(r) ?? []).filter((a) => /^ORCPT=/i.test(a));
      await eom.deleteRecipient(r);
      await eom.addRecipient(r, ['NOTIFY=FAILURE', ...orcpt].join(' '));
    }
  }

  /** A message over maxMessageBytes (its body was not kept): an internal error. */
  private async tooLarge(
    eom: EndOfMessage,
    direction: 'inbound' | 'outbound',
    done: Done,
  ): Promise<Decision> {
    const { size, limit } = this.received;
    const failure: Failure = {
      kind: 'internal-error',
      reason: `message of ${size} bytes exceeds the limit of ${limit} bytes`,
    };
    if (direction === 'outbound') return this.fail(eom, failure, done);
    const d = this.deps;
    const required = isRequired(d.requirements, domainOf(this.sender) ?? '');
    const action = actionFor(d.failures, failure.kind, required);
    this.logFailure(failure, action);
    const r = await oversizedInbound(eom, failure, action, {
      headers: this.received.headers,
      authservId: d.authservId,
      recipients: this.recipients,
      adminAddress: d.adminAddress,
      leadingSpace: this.leadingSpace,
    });
    return done(action === 'accept' ? failure.kind : action, 'failed', r.decision, r.verdict);
  }

  /**
   * Outbound failures: refused, or delivered unchanged (accept, quarantine,
   * redirect). A `permanent` failure is never answered with a tempfail,
   * which would only hold the mail in the queue until it bounces.
   */
  private async fail(
    eom: EndOfMessage,
    failure: Failure,
    done: Done,
    permanent = false,
  ): Promise<Decision> {
    const d = this.deps;
    const configured = actionFor(d.failures, failure.kind, false);
    const action = permanent && configured === 'tempfail' ? 'reject' : configured;
    this.logFailure(failure, action);
    const refused = refusal(action, failure);
    if (refused) return done(action, 'failed', refused);
    if (action === 'accept') return done(failure.kind, 'failed', Decisions.accept);
    const decision = await divert(eom, action, failure, {
      recipients: this.recipients,
      adminAddress: d.adminAddress,
      leadingSpace: this.leadingSpace,
    });
    return done(action, 'failed', decision);
  }

  private logFailure(failure: Failure, action: string): void {
    this.reason = `${failure.kind}: ${failure.reason}`;
    this.deps.log.warn(
      { queue: this.tx.macro('i'), failure: failure.kind, reason: failure.reason, action },
      'policy action',
    );
  }
}

type Done = (
  action: string,
  outcome: 'ok' | 'failed',
  decision: Decision,
  smime?: string,
) => Decision;

export function gatewayApplication(deps: GatewayDeps): MilterApplication {
  return {
    capabilities: {
      actions: [
        'ADDHDRS',
        'CHGHDRS',
        'CHGBODY',
        'ADDRCPT',
        'DELRCPT',
        'QUARANTINE',
        'CHGFROM',
        'ADDRCPT_PAR',
      ],
      events: ['connect', 'mail', 'rcpt', 'header', 'body'],
      noReply: ['connect', 'mail', 'header', 'body'],
      macros: { mail: ['auth_authen', 'i'], eom: ['i'] },
      headerLeadingSpace: true,
    },
    openConnection: () => {
      let client: ConnectInfo | undefined;
      return {
        connect: (info) => {
          client = info;
          return undefined;
        },
        transaction: (tx) => new Transaction(deps, () => client, tx),
      };
    },
  };
}
