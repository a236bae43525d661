import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Action, negotiate, POSTFIX_OFFER, Step } from '../../protocol/index.js';

/** Offers seen from real MTAs. */
const OFFERS = {
  postfix: POSTFIX_OFFER,
  // Sendmail 8.14+ with libmilter: all v6 steps plus the large chunk sizes.
  sendmail: { version: 6, actions: 0x1ff, steps: 0x1fffff | Step.MDS_256K | Step.MDS_1M },
  // Postfix 2.3-2.5 spoke version 2 with the classic NO* steps only.
  old: { version: 2, actions: 0x3f, steps: 0x7f },
  // An MTA that offers no header changes at all.
  bare: { version: 6, actions: Action.ADDHDRS, steps: 0x1fffff },
};

describe('option negotiation', () => {
  test('asks only for what the filter needs, and for nothing the MTA did not offer', () => {
    for (const [name, offer] of Object.entries(OFFERS)) {
      const r = negotiate(offer, {
        optionalActions: ['ADDHDRS', 'CHGHDRS', 'CHGBODY'],
        events: ['rcpt'],
      });
      assert.ok(r.ok, name);
      assert.equal(r.negotiated.actions & ~offer.actions, 0, `${name}: actions within offer`);
      assert.equal(r.negotiated.steps & ~offer.steps, 0, `${name}: steps within offer`);
      assert.equal(r.negotiated.version, Math.min(6, offer.version));
    }
  });

  test('unwanted events are switched off; the MTA without NO* bits still sends them', () => {
    const r = negotiate(OFFERS.postfix, { events: ['rcpt', 'body'] });
    assert.ok(r.ok);
    assert.deepEqual([...r.negotiated.events].sort(), ['body', 'rcpt']);
    const off =
      Step.NOCONNECT |
      Step.NOHELO |
      Step.NOMAIL |
      Step.NODATA |
      Step.NOHDRS |
      Step.NOEOH |
      Step.NOUNKNOWN;
    assert.equal(r.reply.steps & (off | Step.NORCPT | Step.NOBODY), off);
    const none = negotiate({ version: 6, actions: 0x1ff, steps: 0 }, { events: ['rcpt'] });
    assert.ok(none.ok);
    assert.equal(none.negotiated.steps, 0);
    assert.equal(none.negotiated.events.size, 9, 'every event still arrives and is answered');
  });

  test('no-reply steps are asked for only where offered', () => {
    const r = negotiate(OFFERS.postfix, { noReply: ['header', 'body'] });
    assert.ok(r.ok);
    assert.deepEqual([...r.negotiated.noReply].sort(), ['body', 'header']);
    assert.equal(r.reply.steps & (Step.NR_HDR | Step.NR_BODY), Step.NR_HDR | Step.NR_BODY);
    const old = negotiate(OFFERS.old, { noReply: ['header', 'body'] });
    assert.ok(old.ok);
    assert.equal(old.negotiated.noReply.size, 0, 'a version 2 MTA waits for every reply');
  });

  test('a required action the MTA lacks fails negotiation with a clear reason', () => {
    const r = negotiate(OFFERS.bare, { actions: ['ADDHDRS', 'CHGBODY', 'CHGHDRS'] });
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : '', /CHGBODY, CHGHDRS/);
    const optional = negotiate(OFFERS.bare, { actions: ['ADDHDRS'], optionalActions: ['CHGBODY'] });
    assert.ok(optional.ok);
    assert.equal(optional.negotiated.actions, Action.ADDHDRS);
  });

  test('a protocol version below 2 is refused', () => {
    const r = negotiate({ version: 1, actions: 0x1ff, steps: 0 }, {});
    assert.equal(r.ok, false);
  });

  test('macros are requested per stage with set-symlist when offered', () => {
    const caps = { macros: { connect: ['j', '{daemon_name}'], mail: ['auth_authen', 'i'] } };
    const r = negotiate(OFFERS.postfix, caps);
    assert.ok(r.ok);
    assert.deepEqual(r.reply.macros, { connect: 'j {daemon_name}', mail: '{auth_authen} i' });
    assert.ok(r.negotiated.actions & Action.SETSYMLIST);
    const old = negotiate(OFFERS.old, caps);
    assert.ok(old.ok);
    assert.equal(old.reply.macros, undefined, 'no set-symlist without the action');
    assert.equal(old.negotiated.actions & Action.SETSYMLIST, 0);
  });

  test('leading space, rejected recipients, skip and large chunks follow the offer', () => {
    const caps = { headerLeadingSpace: true, rejectedRecipients: true, maxBodyChunk: 1 << 20 };
    const pf = negotiate(OFFERS.postfix, caps);
    assert.ok(pf.ok);
    assert.equal(pf.negotiated.headerLeadingSpace, true);
    assert.equal(pf.negotiated.rejectedRecipients, true);
    assert.equal(pf.negotiated.skip, true);
    assert.equal(pf.negotiated.maxBodyChunk, 65535, 'Postfix does not offer large chunks');
    const sm = negotiate(OFFERS.sendmail, caps);
    assert.ok(sm.ok);
    assert.equal(sm.negotiated.maxBodyChunk, 1024 * 1024 - 1);
    assert.ok(sm.reply.steps & Step.MDS_1M);
    const old = negotiate(OFFERS.old, caps);
    assert.ok(old.ok);
    assert.equal(old.negotiated.headerLeadingSpace, false);
    assert.equal(old.negotiated.skip, false);
  });
});
