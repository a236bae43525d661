/**
 * Real mail, round-tripped: every message of test/corpus goes from
 * alice@example.org into Postfix A, whose domsec-milter signs and encrypts it
 * for example.net, over SMTP to Postfix B, whose domsec-milter decrypts and
 * verifies it, and on to a sink. Each must arrive with one smime=pass result
 * and with its top-level header fields and its body (or, where signing had
 * to re-encode an 8-bit or over-long body, its decoded parts) as sent.
 *
 * A message is followed by queue id: the 250 of Postfix A names its id there,
 * A's log names the id B gave it ("queued as"), B's log the sink's number.
 * The failure message lists every message that fell short and how.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { certificatePem, generateDomainPki } from '../../src/pki/keygen.js';
import { writeDomainPki } from '../../src/pki/keygen-files.js';
import { type ServingMilter, startServe } from '../helpers/cli.js';
import {
  type CorpusMessage,
  compareDelivered,
  loadCorpus,
  resultsOf,
  splitMessage,
} from '../helpers/corpus.js';
import { type PostfixInstance, postfixAvailable, startPostfix } from '../helpers/postfix.js';
import { sendMany } from '../helpers/smtp-client.js';
import { type SinkMessage, type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

const AUTHSERV_ID = 'mx.example.net';
/** How long after the last message was accepted its deliveries may take. */
const SETTLE_MS = 45_000;
const SESSIONS = 4;
/** A directory to write each message as sent and as delivered to, for a closer look. */
const DUMP = process.env['DOMSEC_CORPUS_DUMP'];

/**
 * Neither instance adds the Date, Message-ID, From or To a message lacks
 * (Postfix does for clients in local_header_rewrite_clients, by default
 * loopback): what arrives is what the gateways made of what was sent.
 */
const NO_HEADER_REWRITE = { local_header_rewrite_clients: '' };

interface Delivery {
  /** 'sent', 'deferred', 'bounced', 'hold', ... */
  readonly status: string;
  /** The parenthesised text: the next hop's reply, or why not. */
  readonly text: string;
}

const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The first final delivery status of queue id `qid` in a Postfix log, or a hold. */
function deliveryOf(log: string, qid: string): Delivery | undefined {
  const status = new RegExp(
    `: ${literal(qid)}: to=<[^>]*>,.* status=(\\w+) \\((.*)\\)$|: ${literal(qid)}: (hold|discard): (.*)$`,
    'm',
  ).exec(log);
  if (!status) return undefined;
  return status[1]
    ? { status: status[1], text: status[2]! }
    : { status: status[3]!, text: status[4]! };
}

/** The milter's per-message log record for queue id `qid`, and its policy-action reasons. */
function milterRecord(
  output: string,
  qid: string,
): { action?: string; outcome?: string; smime?: string; reasons: string[] } {
  const reasons: string[] = [];
  let record: Record<string, unknown> | undefined;
  for (const line of output.split('\n')) {
    if (!line.includes(`"queue":"${qid}"`)) continue;
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (r['msg'] === 'message') record = r;
    else if (typeof r['reason'] === 'string') reasons.push(`${r['msg']}: ${r['reason']}`);
  }
  const str = (k: string) => (typeof record?.[k] === 'string' ? (record[k] as string) : undefined);
  return {
    ...(str('action') ? { action: str('action')! } : {}),
    ...(str('outcome') ? { outcome: str('outcome')! } : {}),
    ...(str('smime') ? { smime: str('smime')! } : {}),
    reasons,
  };
}

interface Outcome {
  readonly name: string;
  delivered: boolean;
  encrypted: boolean;
  decrypted: boolean;
  pass: boolean;
  identical: boolean;
  /** How the body compared, once delivered and decrypted. */
  body?: 'bytes' | 'decoded' | 'differs';
  /** What went wrong, in the order found. */
  readonly problems: string[];
}

describe('the real-mail corpus through two Postfix instances and both gateways', () => {
  let dir: string;
  let sink: SmtpSink;
  let milterA: ServingMilter;
  let milterB: ServingMilter;
  let postfixA: PostfixInstance;
  let postfixB: PostfixInstance;

  before(async () => {
    assert.ok(postfixAvailable(), 'Postfix is not installed or we are not root: run .ci/run');
    dir = await mkdtemp(join(tmpdir(), 'domsec-corpus-'));
    const [org, net] = await Promise.all([
      generateDomainPki('example.org'),
      generateDomainPki('example.net'),
    ]);
    const orgFiles = await writeDomainPki(join(dir, 'org'), 'example.org', org);
    const netFiles = await writeDomainPki(join(dir, 'net'), 'example.net', net);
    await mkdir(join(dir, 'partners'));
    await writeFile(
      join(dir, 'partners/example.net.pem'),
      certificatePem(net.encryption.certificate),
    );
    sink = await startSmtpSink();
    [milterA, milterB] = await Promise.all([
      // Outbound: Postfix A's client (127.0.0.1) is in the default trusted networks.
      startServe({
        DOMSEC_LOCAL_DOMAINS: 'example.org',
        DOMSEC_KEYS_DIR: join(dir, 'org'),
        DOMSEC_PARTNER_CERTS: join(dir, 'partners'),
        DOMSEC_TRUST_ANCHORS: netFiles.caCertificate,
        DOMSEC_AUTHSERV_ID: 'mx.example.org',
      }),
      // Inbound: Postfix A connects from 127.0.0.1, which must count as outside.
      startServe({
        DOMSEC_LOCAL_DOMAINS: 'example.net',
        DOMSEC_KEYS_DIR: join(dir, 'net'),
        DOMSEC_TRUST_ANCHORS: orgFiles.caCertificate,
        DOMSEC_TRUSTED_NETWORKS: '192.0.2.0/24',
        DOMSEC_AUTHSERV_ID: AUTHSERV_ID,
      }),
    ]);
    // Different names: Postfix refuses a next hop that greets with its own.
    postfixB = await startPostfix({
      relayPort: sink.port,
      milter: milterB.address,
      mainCf: { myhostname: 'mx.example.net', ...NO_HEADER_REWRITE },
    });
    postfixA = await startPostfix({
      relayPort: postfixB.smtpPort,
      milter: milterA.address,
      mainCf: { myhostname: 'mta.example.org', ...NO_HEADER_REWRITE },
    });
  });

  after(async () => {
    await Promise.all([postfixA?.stop(), postfixB?.stop()]);
    await Promise.all([milterA?.stop(), milterB?.stop()]);
    await sink?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('every message arrives decrypted, smime=pass, its header fields and parts as sent', {
    timeout: 180_000,
  }, async (t) => {
    const corpus = loadCorpus();
    assert.ok(corpus.length >= 30, `corpus has ${corpus.length} messages`);
    const started = Date.now();
    const replies = await sendMany(
      postfixA.smtpPort,
      corpus.map((m) => ({ from: 'alice@example.org', to: ['bob@example.net'], data: m.sent })),
      SESSIONS,
    );

    // Follow each accepted message through A's and B's logs until it is
    // delivered or has failed somewhere, or time is up.
    const qidA = replies.map((r) =>
      r.dataReply?.code === 250 ? /queued as (\S+)/.exec(r.dataReply.text)?.[1] : undefined,
    );
    const atA: (Delivery | undefined)[] = [];
    const atB: (Delivery | undefined)[] = [];
    const qidB: (string | undefined)[] = [];
    const settled = (i: number): boolean => {
      if (!qidA[i]) return true;
      if (atA[i] && atA[i]!.status !== 'sent') return true;
      return atB[i] !== undefined;
    };
    const deadline = Date.now() + SETTLE_MS;
    for (;;) {
      const [logA, logB] = await Promise.all([postfixA.log(), postfixB.log()]);
      corpus.forEach((_, i) => {
        if (!qidA[i]) return;
        atA[i] ??= deliveryOf(logA, qidA[i]!);
        if (atA[i]?.status === 'sent') {
          qidB[i] ??= /queued as (\S+)/.exec(atA[i]!.text)?.[1];
          if (qidB[i]) atB[i] ??= deliveryOf(logB, qidB[i]!);
        }
      });
      if (corpus.every((_, i) => settled(i)) || Date.now() > deadline) break;
      await sleep(200);
    }

    const outcomes: Outcome[] = [];
    for (const [i, m] of corpus.entries()) {
      outcomes.push(
        await outcomeOf(m, {
          reply: replies[i]?.dataReply,
          qidA: qidA[i],
          atA: atA[i],
          qidB: qidB[i],
          atB: atB[i],
        }),
      );
    }
    const count = (k: keyof Outcome) => outcomes.filter((o) => o[k] === true).length;
    const summary =
      `${corpus.length} messages in ${((Date.now() - started) / 1000).toFixed(1)} s: ` +
      `${count('delivered')} delivered, ${count('encrypted')} encrypted by A, ` +
      `${count('decrypted')} decrypted by B, ${count('pass')} smime=pass, ` +
      `${count('identical')} identical (bodies: ` +
      `${outcomes.filter((o) => o.body === 'bytes').length} byte for byte, ` +
      `${outcomes.filter((o) => o.body === 'decoded').length} re-encoded with equal decoded parts, ` +
      `${outcomes.filter((o) => o.body === 'differs').length} different)`;
    t.diagnostic(summary);
    const failing = outcomes.filter((o) => o.problems.length > 0);
    assert.equal(
      failing.length,
      0,
      `${summary}\n${failing.length} failing:\n${failing
        .map((o) => `- ${o.name}:\n${o.problems.map((p) => `    ${p}`).join('\n')}`)
        .join('\n')}`,
    );

    async function outcomeOf(
      m: CorpusMessage,
      o: {
        reply: { code: number; text: string } | undefined;
        qidA: string | undefined;
        atA: Delivery | undefined;
        qidB: string | undefined;
        atB: Delivery | undefined;
      },
    ): Promise<Outcome> {
      const out: Outcome = {
        name: m.name,
        delivered: false,
        encrypted: false,
        decrypted: false,
        pass: false,
        identical: false,
        problems: [],
      };
      const p = out.problems;
      if (o.reply?.code !== 250 || !o.qidA) {
        p.push(`at A: ${o.reply ? `${o.reply.code} ${o.reply.text}` : 'no reply to the message'}`);
        return out;
      }
      const a = milterRecord(milterA.output(), o.qidA);
      out.encrypted = a.action === 'sign+encrypt' && a.outcome === 'ok';
      if (!out.encrypted)
        p.push(
          `milter A: action ${a.action ?? '(none logged)'}, outcome ${a.outcome ?? '-'}` +
            (a.reasons.length ? ` (${a.reasons.join('; ')})` : ''),
        );
      if (!o.atA) {
        p.push(`at B: no delivery attempt logged by A (${o.qidA}) within ${SETTLE_MS / 1000} s`);
        return out;
      }
      if (o.atA.status !== 'sent' || !o.qidB) {
        p.push(`at B: ${o.atA.status}: ${o.atA.text}`);
        return out;
      }
      const b = milterRecord(milterB.output(), o.qidB);
      out.decrypted = (b.action ?? '').split('+').includes('decrypted');
      if (!out.decrypted || b.outcome !== 'ok' || b.smime !== 'pass')
        p.push(
          `milter B: action ${b.action ?? '(none logged)'}, outcome ${b.outcome ?? '-'}, ` +
            `smime ${b.smime ?? '-'}` +
            (b.reasons.length ? ` (${b.reasons.join('; ')})` : ''),
        );
      const sinkNumber = o.atB?.status === 'sent' ? /queued as SINK(\d+)/.exec(o.atB.text) : null;
      const got: SinkMessage | undefined = sinkNumber
        ? sink.messages[Number(sinkNumber[1]) - 1]
        : undefined;
      if (!got) {
        p.push(
          `at the sink: ${o.atB ? `${o.atB.status}: ${o.atB.text}` : `not delivered by B (${o.qidB}) within ${SETTLE_MS / 1000} s`}`,
        );
        return out;
      }
      out.delivered = true;
      if (DUMP) {
        const base = join(DUMP, m.name.replace('/', '--'));
        await Promise.all([
          writeFile(`${base}.sent.eml`, m.sent),
          writeFile(`${base}.got.eml`, got.data),
        ]);
      }
      const results = resultsOf(splitMessage(got.data).fields, AUTHSERV_ID);
      out.pass = results.length === 1 && /^[^;]*;\s*smime=pass\b/.test(results[0]!);
      if (!out.pass)
        p.push(
          `verdict: ${results.length} Authentication-Results from ${AUTHSERV_ID}` +
            (results.length
              ? `: ${results.map((r) => JSON.stringify(r.slice(0, 200))).join(' | ')}`
              : ''),
        );
      if (/^application\/(x-)?pkcs7-mime/i.test(got.header('content-type') ?? '')) {
        out.decrypted = false;
        p.push('delivered still encrypted: not compared');
        return out;
      }
      const c = await compareDelivered(m.sent, got.data);
      out.identical = c.headers.length === 0 && c.body !== 'differs';
      out.body = c.body;
      p.push(...c.headers, ...c.bodyNotes);
      return out;
    }
  });
});
