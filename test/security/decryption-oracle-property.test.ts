// Vaudenay's padding oracle over SMTP, and its relatives. An outside attacker
// captured example.org's signed and encrypted mail to bob@example.net (us).
// They send mutated copies from outside, through our Postfix and the real
// `domsec-milter serve`, and read what comes back: the SMTP reply at end of
// DATA, and any mail returned to the sender (bounce, DSN), also when the
// client asks for DSN. If bad CBC padding (or a bad tag, or a bad key
// transport blob) answers differently from good padding, the attacker
// decrypts the capture a byte at a time. The claim: for every family of
// mutations, everything the sender can observe (timing aside: that is the
// benchmark's) is one class: the genuine message's reply (250 2.0.0, the
// same text once the queue id is masked) and the genuine message's mail
// back (as many messages, the same DSN actions); and what comes back reads
// the same for every mutation of a family: Postfix's success DSN returns the
// header section as queued, our Authentication-Results (and its comment)
// included, to whatever envelope sender the client named. And the EFAIL half:
// nothing decrypted is delivered for a mutated message; it arrives as sent,
// still encrypted, with one `smime=permerror` result of ours. The genuine
// message is the control: decrypted, smime=pass, 250.
//
// Families (each a property over all the listed inputs):
//  1. CBC padding: the last byte of the last-but-one ciphertext block, all
//     255 other values (AES-256-CBC, EnvelopedData).
//  2. CBC blocks: a byte flipped in middle blocks; each IV byte flipped; two
//     earlier blocks appended (a valid-padding probe); one block truncated.
//  3. AES-256-GCM (AuthEnvelopedData): a byte of the tag; a byte of the
//     ciphertext.
//  4. Key transport: a byte of the encryptedKey, RSA-OAEP and RSA PKCS#1 v1.5.
// Fields are found by walking the DER (test/helpers/cms-mutations.ts).
// Every mutation is sent twice, each time in its own SMTP session: without
// DSN parameters, and with RET=FULL ENVID=... and NOTIFY=SUCCESS,FAILURE,DELAY
// (the repo's sendMail has no ESMTP parameters, hence transact() below).
// Mail back is whatever reaches the sink with the null reverse-path or for
// alice@example.org, matched to the message it is about by the
// X-Postfix-Queue-ID or Original-Envelope-Id of its delivery report; after
// every accepted message has reached the sink and Postfix's queue is empty
// (a DSN is queued before its original leaves), a marker message is sent and
// awaited, and only then is mail back counted.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { OID } from '../../src/cms/oids.js';
import { certificatePem } from '../../src/pki/keygen.js';
import { writeDomainPki } from '../../src/pki/keygen-files.js';
import { type ServingMilter, startServe } from '../helpers/cli.js';
import {
  blocksOf,
  bytesOf,
  type EnvelopeLayout,
  envelopeLayout,
  flipped,
  spread,
  withBlocksAppended,
  withBlocksTruncated,
  withByte,
} from '../helpers/cms-mutations.js';
import { delivered } from '../helpers/gateway-fixture.js';
import { type PostfixInstance, startPostfix } from '../helpers/postfix.js';
import {
  AUTHSERV_ID,
  derOf,
  encodings,
  plainMessage,
  protectedByOrg,
  SECRET,
  type SecurityPki,
  securityPki,
  withDer,
} from '../helpers/security-fixture.js';
import { encodeData } from '../helpers/smtp-client.js';
import type { SinkMessage, SmtpSink } from '../helpers/smtp-sink.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';
import { until } from '../helpers/wait.js';

const SENDER = 'alice@example.org';
const RECIPIENT = 'bob@example.net';
const BLOCK = 16;
const CONCURRENCY = 8;

type CaptureName = 'cbc-oaep' | 'cbc-pkcs1' | 'gcm';
type DsnStyle = 'plain' | 'dsn';
const STYLES: readonly DsnStyle[] = ['plain', 'dsn'];

const FAMILIES = [
  { id: 'cbc-padding', title: '1. CBC padding: last byte of the last-but-one block, 255 values' },
  { id: 'cbc-blocks', title: '2. CBC blocks: middle byte, IV byte, blocks appended, truncated' },
  { id: 'gcm', title: '3. AES-GCM (AuthEnvelopedData): tag byte, ciphertext byte' },
  { id: 'key-transport', title: '4. Key transport: encryptedKey byte, RSA-OAEP and PKCS#1 v1.5' },
] as const;
type FamilyId = (typeof FAMILIES)[number]['id'];

interface Mutation {
  readonly family: FamilyId;
  /** The sub-family, for the histograms: "IV byte", "tag byte", ... */
  readonly kind: string;
  readonly label: string;
  readonly capture: CaptureName;
  readonly der: Buffer;
}

interface Probe {
  readonly name: string;
  /** undefined: the genuine capture (the control). */
  readonly family: FamilyId | undefined;
  readonly kind: string;
  readonly capture: CaptureName;
  readonly style: DsnStyle;
  readonly envid: string;
  readonly data: Buffer;
}

interface Step {
  readonly verb: string;
  readonly code: number;
  readonly text: string;
}

interface Outcome {
  readonly probe: Probe;
  /** Every reply after EHLO, queue id masked: "MAIL 250 2.1.0 Ok". */
  readonly steps: readonly string[];
  /** The reply to the final dot, queue id masked: "250 2.0.0 Ok: queued as <id>". */
  readonly final: string;
  readonly queueId: string | undefined;
}

const maskQueueId = (s: string): string => s.replace(/queued as [0-9A-Za-z]+/g, 'queued as <id>');

// ---- an SMTP client with the DSN parameters (the repo's sendMail has none) ----

/** One transaction in its own session, as an attacker's client would; DSN asked for in style 'dsn'. */
function transact(port: number, probe: Probe, timeoutMs = 30_000): Promise<Step[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.setNoDelay(true);
    socket.setEncoding('latin1');
    const steps: Step[] = [];
    const mail = `MAIL FROM:<${SENDER}>${probe.style === 'dsn' ? ` RET=FULL ENVID=${probe.envid}` : ''}`;
    const rcpt = `RCPT TO:<${RECIPIENT}>${probe.style === 'dsn' ? ` NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;${RECIPIENT}` : ''}`;
    // What to send after each reply, and the verb it is recorded under.
    const script: { verb: string; send: () => void; expect: number }[] = [
      { verb: 'BANNER', send: () => socket.write('EHLO outside.test\r\n'), expect: 220 },
      { verb: 'EHLO', send: () => socket.write(`${mail}\r\n`), expect: 250 },
      { verb: 'MAIL', send: () => socket.write(`${rcpt}\r\n`), expect: 250 },
      { verb: 'RCPT', send: () => socket.write('DATA\r\n'), expect: 250 },
      { verb: 'DATA', send: () => socket.write(encodeData(probe.data)), expect: 354 },
      { verb: 'DATA-END', send: () => socket.write('QUIT\r\n'), expect: -1 },
      { verb: 'QUIT', send: () => socket.end(), expect: -1 },
    ];
    const timer = setTimeout(
      () => finish(new Error(`SMTP session timed out: ${probe.name}`)),
      timeoutMs,
    );
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(steps);
    };
    let buf = '';
    let lines: string[] = [];
    socket.on('data', (s: string) => {
      buf += s;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (line[3] === '-') continue;
        const code = Number.parseInt(line.slice(0, 3), 10);
        const text = lines.map((l) => l.slice(4)).join('\n');
        lines = [];
        const at = script[steps.length];
        if (!at) continue;
        steps.push({ verb: at.verb, code, text });
        if (at.verb === 'EHLO' && probe.style === 'dsn' && !/^DSN$/m.test(text)) {
          finish(new Error(`the server offers no DSN: ${text}`));
          return;
        }
        // A refusal before DATA-END ends the transaction: say QUIT.
        if (at.expect !== -1 && code !== at.expect) {
          steps.push({ verb: 'DATA-END', code: 0, text: `(not reached: ${at.verb} ${code})` });
          socket.end('QUIT\r\n');
          finish();
          return;
        }
        at.send();
        if (at.verb === 'QUIT') finish();
      }
    });
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish());
  });
}

async function sendAll(port: number, probes: readonly Probe[]): Promise<Outcome[]> {
  const out: Outcome[] = new Array(probes.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < probes.length) {
      const i = next++;
      const probe = probes[i]!;
      const steps = await transact(port, probe);
      const end = steps.find((s) => s.verb === 'DATA-END');
      const final = end ? `${end.code} ${end.text}` : '(connection closed before end of DATA)';
      out[i] = {
        probe,
        steps: steps
          .filter((s) => s.verb !== 'BANNER' && s.verb !== 'EHLO')
          .map((s) => maskQueueId(`${s.verb} ${s.code} ${s.text}`)),
        final: maskQueueId(final),
        queueId: end?.code === 250 ? /queued as ([0-9A-Za-z]+)/.exec(end.text)?.[1] : undefined,
      };
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return out;
}

/** Polls Postfix's queue (all of maildrop, incoming, active, deferred, hold) until it is empty. */
async function queueEmpty(postfix: PostfixInstance, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ids = await postfix.queueIds();
    if (ids.length === 0) return;
    if (Date.now() > deadline)
      throw new Error(`Postfix queue not empty after ${timeoutMs} ms: ${ids.join(' ')}`);
    await sleep(50);
  }
}

// ---- what arrived at the sink ----------------------------------------------

/** The Postfix queue id of a message relayed by our instance (its Received field), if any. */
function receivedId(m: SinkMessage): string | undefined {
  for (const r of m.headers().get('received') ?? []) {
    const id = /\bby mta\.test \(Postfix\)(?: with \S+)? id ([0-9A-Za-z]+)/.exec(r)?.[1];
    if (id) return id;
  }
  return undefined;
}

/** Mail back to the sender: anything to alice@example.org, or with the null reverse-path. */
const isMailBack = (m: SinkMessage): boolean =>
  m.mailFrom === '' || m.rcptTo.some((r) => r.toLowerCase() === SENDER);

/** A returned message by what it says: its DSN Action fields, or "message" when it has none. */
function mailBackClass(m: SinkMessage): string {
  const actions = [...m.data.toString('latin1').matchAll(/^Action:\s*(\S+)/gim)].map((a) =>
    a[1]!.toLowerCase(),
  );
  return actions.length > 0 ? `DSN ${actions.sort().join(',')}` : 'message';
}

const DATE = /\b\w{3}, +\d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}(?: \(\w+\))?/g;

/**
 * A returned message as its reader sees it, less what differs from run to run
 * or message to message whatever the content (dates, queue and message ids,
 * the MIME boundary, our ENVID, the sink's queue number), unfolded and with
 * runs of white space collapsed (Postfix wraps its text by length).
 */
function dsnText(m: SinkMessage): string {
  return m.data
    .toString('latin1')
    .replace(DATE, '<date>')
    .replace(/<\d{14}\.[0-9A-F]+@mta\.test>/g, '<message-id>')
    .replace(/\b[0-9A-F]{6,}\b/g, '<hex>')
    .replace(/\.\d+\/mta\.test/g, '.<n>/mta.test')
    .replace(/SINK\d+/g, 'SINK<n>')
    .replace(/oracle-\d+/g, 'oracle-<n>')
    .replace(/\r?\n[ \t]+/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.replace(/[ \t]+/g, ' ').trim())
    .join('\n');
}

/** The lines that not every one of `texts` has: what tells them apart. */
function differingLines(texts: readonly string[]): string[] {
  const sets = texts.map((t) => new Set(t.split('\n')));
  const all = new Set(sets.flatMap((x) => [...x]));
  return [...all].filter((l) => !sets.every((x) => x.has(l)));
}

/** The original a returned message is about: by X-Postfix-Queue-ID, else by Original-Envelope-Id. */
function mailBackKeys(m: SinkMessage): string[] {
  const text = m.data.toString('latin1');
  return [
    ...[...text.matchAll(/^X-Postfix-Queue-ID:\s*(\S+)/gim)].map((x) => `qid:${x[1]}`),
    ...[...text.matchAll(/^Original-Envelope-Id:\s*(\S+)/gim)].map((x) => `envid:${x[1]}`),
  ];
}

/** Our Authentication-Results values (those naming our authserv-id). */
const ourResults = (m: SinkMessage): string[] =>
  (m.headers().get('authentication-results') ?? []).filter((v) =>
    v.toLowerCase().startsWith(AUTHSERV_ID),
  );

const hasPlaintext = (m: SinkMessage): boolean => {
  const text = m.data.toString('latin1');
  return encodings(SECRET).some((f) => text.includes(f));
};

const bodyOf = (message: Buffer): Buffer => message.subarray(message.indexOf('\r\n\r\n') + 4);

/** How a mutated message reached the recipient, in words; the claim is EXPECTED_DELIVERY. */
function deliveryClass(copies: readonly SinkMessage[], sent: Buffer): string {
  if (copies.length === 0) return 'not delivered';
  return copies
    .map((m) => {
      const body = m.body().equals(bodyOf(sent))
        ? 'body as sent (still encrypted)'
        : hasPlaintext(m)
          ? 'body DECRYPTED (plaintext visible)'
          : 'body rewritten';
      const results = ourResults(m).map((v) => /\bsmime=(\w+)/.exec(v)?.[1] ?? `"${v}"`);
      return `${body}, our results: [${results.map((r) => `smime=${r}`).join(', ')}]`;
    })
    .join(' + ');
}
const EXPECTED_DELIVERY = 'body as sent (still encrypted), our results: [smime=permerror]';

/** How many outcomes of each kind of mutation saw each value: {"IV byte: 250 2.0.0 ...": 32}. */
function byKind(os: readonly Outcome[], value: (o: Outcome) => string): Record<string, number> {
  const h: Record<string, number> = {};
  for (const o of os) {
    const k = `${o.probe.kind}: ${value(o)}`;
    h[k] = (h[k] ?? 0) + 1;
  }
  return h;
}

// ---- the mutations -----------------------------------------------------------

function cbcMutations(der: Buffer, L: EnvelopeLayout): Mutation[] {
  assert.equal(L.kind, 'enveloped');
  assert.equal(L.contentAlgorithm, OID.aes256Cbc);
  assert.equal(L.iv.end - L.iv.start, BLOCK, 'a 16-octet IV');
  const n = blocksOf(der, L.ciphertext).length;
  assert.ok(n >= 8, `enough blocks (${n})`);
  const block = (i: number): number => L.ciphertext.start + i * BLOCK;
  const out: Mutation[] = [];
  const m = (family: FamilyId, kind: string, label: string, mutated: Buffer): void => {
    // Each mutation is still a well-formed (Auth)EnvelopedData: only the attacker's bytes changed.
    envelopeLayout(mutated);
    out.push({ family, kind, label, capture: 'cbc-oaep', der: mutated });
  };

  // 1. Vaudenay: the last byte of C[n-2] is XORed into the last plaintext byte, the padding length.
  const pad = block(n - 2) + BLOCK - 1;
  for (let v = 0; v < 256; v++)
    if (v !== der[pad])
      m(
        'cbc-padding',
        'C[n-2][15]',
        `C[n-2][15]=0x${v.toString(16).padStart(2, '0')}`,
        withByte(der, pad, v),
      );

  // 2. A byte in the middle blocks (not the first, not the last two).
  const masks = [0x01, 0x80, 0xff, 0x5a];
  spread(block(1), block(n - 2), 12).forEach((at, i) => {
    const mask = masks[i % masks.length]!;
    const label = `ciphertext byte ${at - L.ciphertext.start} ^0x${mask.toString(16)}`;
    m('cbc-blocks', 'middle block byte', label, flipped(der, at, mask));
  });
  // Each IV byte: rewrites the first plaintext block (CBC malleability).
  for (let i = 0; i < BLOCK; i++)
    m('cbc-blocks', 'IV byte', `IV byte ${i} ^0x01`, flipped(der, L.iv.start + i));
  // Two earlier blocks appended: the new last block decrypts to plaintext block first+1.
  // first = n-2 copies the genuine last two blocks: valid padding for certain.
  for (const first of [...new Set([...spread(0, n - 2, 5), n - 2])]) {
    const label = `C[${first}],C[${first + 1}] of ${n} appended`;
    m('cbc-blocks', 'two blocks appended', label, withBlocksAppended(der, L, first));
  }
  m('cbc-blocks', 'last block truncated', `C[${n - 1}] dropped`, withBlocksTruncated(der, L, 1));
  return out;
}

function gcmMutations(der: Buffer, L: EnvelopeLayout): Mutation[] {
  assert.equal(L.kind, 'auth-enveloped');
  assert.equal(L.contentAlgorithm, OID.aes256Gcm);
  assert.ok(L.tag, 'AuthEnvelopedData has a mac');
  assert.equal(L.tag.end - L.tag.start, 16, 'a 16-octet tag');
  const out: Mutation[] = [];
  const m = (kind: string, label: string, mutated: Buffer): void => {
    envelopeLayout(mutated);
    out.push({ family: 'gcm', kind, label, capture: 'gcm', der: mutated });
  };
  for (let i = L.tag.start; i < L.tag.end; i++)
    m('tag byte', `tag byte ${i - L.tag.start} ^0x01`, flipped(der, i));
  for (const at of spread(L.ciphertext.start, L.ciphertext.end, 16))
    m('ciphertext byte', `ciphertext byte ${at - L.ciphertext.start} ^0x01`, flipped(der, at));
  return out;
}

function keyTransportMutations(
  der: Buffer,
  L: EnvelopeLayout,
  capture: CaptureName,
  algorithm: string,
): Mutation[] {
  assert.equal(L.keyTransport.length, 1, 'one KeyTransRecipientInfo');
  const ktri = L.keyTransport[0]!;
  assert.equal(ktri.algorithm, algorithm);
  assert.equal(bytesOf(der, ktri.encryptedKey).length, 256, 'RSA-2048 encryptedKey');
  const kind =
    algorithm === OID.rsaesOaep ? 'RSA-OAEP encryptedKey' : 'RSA PKCS#1 v1.5 encryptedKey';
  return spread(ktri.encryptedKey.start, ktri.encryptedKey.end, 16).map((at) => ({
    family: 'key-transport' as const,
    kind,
    label: `${kind} byte ${at - ktri.encryptedKey.start} ^0x01`,
    capture,
    der: flipped(der, at),
  }));
}

// ---- the run -------------------------------------------------------------------

describe('decryption oracle as a property: mutated captures through real Postfix, observed from outside', () => {
  let pki: SecurityPki;
  let dir: string;
  let sink: SmtpSink;
  let milter: ServingMilter;
  let postfix: PostfixInstance;
  let outcomes: Outcome[] = [];
  /** Sink messages by our Postfix queue id. */
  const copiesById = new Map<string, SinkMessage[]>();
  /** Returned messages by what they are about ("qid:..." / "envid:..."). */
  const mailBackByKey = new Map<string, SinkMessage[]>();
  const unmappedMailBack: SinkMessage[] = [];
  const genuine = new Map<string, Outcome>();
  let markerOutcome: Outcome | undefined;
  const started = Date.now();

  const mailBacks = (o: Outcome): SinkMessage[] => {
    const found = new Set<SinkMessage>();
    for (const key of [o.queueId && `qid:${o.queueId}`, `envid:${o.probe.envid}`])
      for (const m of (key && mailBackByKey.get(key)) || []) found.add(m);
    return [...found];
  };
  const mailBackOf = (o: Outcome): string => {
    const found = mailBacks(o);
    return found.length === 0 ? 'nothing' : found.map(mailBackClass).sort().join(' + ');
  };
  /** Everything that came back for `o`, as the sender reads it once run-specific tokens are masked. */
  const mailBackText = (o: Outcome): string => {
    const found = mailBacks(o);
    return found.length === 0 ? '(nothing)' : found.map(dsnText).sort().join('\n=====\n');
  };
  const copiesOf = (o: Outcome): SinkMessage[] =>
    o.queueId ? (copiesById.get(o.queueId) ?? []) : [];
  const control = (o: Outcome): Outcome => genuine.get(`${o.probe.capture}/${o.probe.style}`)!;

  before(async () => {
    [pki, dir, sink] = await Promise.all([
      securityPki(),
      mkdtemp(join(tmpdir(), 'domsec-oracle-prop-')),
      startSmtpSink(),
    ]);
    await writeDomainPki(join(dir, 'net'), 'example.net', pki.net);
    await writeFile(join(dir, 'org-ca.pem'), certificatePem(pki.org.ca.certificate));
    // Defaults for DOMSEC_ON_DECRYPT_FAILURE and DOMSEC_ON_ERROR: the defaults must be safe.
    milter = await startServe({
      DOMSEC_LOCAL_DOMAINS: 'example.net',
      DOMSEC_KEYS_DIR: join(dir, 'net'),
      DOMSEC_TRUST_ANCHORS: join(dir, 'org-ca.pem'),
      DOMSEC_AUTHSERV_ID: AUTHSERV_ID,
      // The loopback SMTP client is outside.
      DOMSEC_TRUSTED_NETWORKS: '192.0.2.0/24',
      DOMSEC_LOG_LEVEL: 'warn',
    });
    postfix = await startPostfix({ relayPort: sink.port, milter: milter.address });

    const [cbcOaep, cbcPkcs1, gcm] = await Promise.all([
      protectedByOrg(pki, plainMessage('oracle-cbc-oaep'), {
        cipher: 'aes-256-cbc',
        keyTransport: 'rsa-oaep',
      }),
      protectedByOrg(pki, plainMessage('oracle-cbc-pkcs1'), {
        cipher: 'aes-256-cbc',
        keyTransport: 'rsa-pkcs1',
      }),
      protectedByOrg(pki, plainMessage('oracle-gcm'), {
        cipher: 'aes-256-gcm',
        keyTransport: 'rsa-oaep',
      }),
    ]);
    const captures: Record<CaptureName, Buffer> = {
      'cbc-oaep': cbcOaep,
      'cbc-pkcs1': cbcPkcs1,
      gcm,
    };
    const ders = {
      'cbc-oaep': derOf(cbcOaep),
      'cbc-pkcs1': derOf(cbcPkcs1),
      gcm: derOf(gcm),
    };
    const layouts = {
      'cbc-oaep': envelopeLayout(ders['cbc-oaep']),
      'cbc-pkcs1': envelopeLayout(ders['cbc-pkcs1']),
      gcm: envelopeLayout(ders.gcm),
    };
    const mutations: Mutation[] = [
      ...cbcMutations(ders['cbc-oaep'], layouts['cbc-oaep']),
      ...gcmMutations(ders.gcm, layouts.gcm),
      ...keyTransportMutations(ders['cbc-oaep'], layouts['cbc-oaep'], 'cbc-oaep', OID.rsaesOaep),
      ...keyTransportMutations(
        ders['cbc-pkcs1'],
        layouts['cbc-pkcs1'],
        'cbc-pkcs1',
        OID.rsaEncryption,
      ),
    ];

    let serial = 0;
    const probes: Probe[] = [];
    for (const capture of Object.keys(captures) as CaptureName[])
      for (const style of STYLES)
        probes.push({
          name: `genuine ${capture} (${style})`,
          family: undefined,
          kind: 'genuine',
          capture,
          style,
          envid: `oracle-${serial++}`,
          data: captures[capture],
        });
    for (const mu of mutations)
      for (const style of STYLES)
        probes.push({
          name: `${mu.family}: ${mu.label} (${style})`,
          family: mu.family,
          kind: mu.kind,
          capture: mu.capture,
          style,
          envid: `oracle-${serial++}`,
          data: withDer(captures[mu.capture], mu.der),
        });

    outcomes = await sendAll(postfix.smtpPort, probes);
    for (const o of outcomes)
      if (!o.probe.family) genuine.set(`${o.probe.capture}/${o.probe.style}`, o);

    // Everything accepted reaches the sink; then the queue drains (any bounce or
    // DSN is queued before its original leaves); then a marker behind it all.
    const accepted = new Set(outcomes.flatMap((o) => (o.queueId ? [o.queueId] : [])));
    let indexed = 0;
    const index = (): void => {
      for (const m of sink.messages.slice(indexed)) {
        if (isMailBack(m)) {
          const keys = mailBackKeys(m);
          if (keys.length === 0) unmappedMailBack.push(m);
          for (const k of keys) mailBackByKey.set(k, [...(mailBackByKey.get(k) ?? []), m]);
        } else {
          const id = receivedId(m);
          if (id) copiesById.set(id, [...(copiesById.get(id) ?? []), m]);
        }
      }
      indexed = sink.messages.length;
    };
    await until(
      () => {
        index();
        return [...accepted].every((id) => copiesById.has(id));
      },
      60_000,
      `all ${accepted.size} accepted messages at the sink`,
    );
    await queueEmpty(postfix, 30_000);
    const [marker] = await sendAll(postfix.smtpPort, [
      {
        name: 'marker',
        family: undefined,
        kind: 'marker',
        capture: 'cbc-oaep',
        // Plain (not encrypted) mail with a DSN asked for: the control of the DSN detector.
        style: 'dsn',
        envid: 'oracle-marker',
        data: plainMessage('oracle-marker', 'marker', 'the last message'),
      },
    ]);
    assert.match(marker!.final, /^250 /, 'the marker is accepted');
    markerOutcome = marker!;
    await delivered(sink, 'oracle-marker');
    await queueEmpty(postfix, 30_000);
    index();
  });

  after(async () => {
    console.log(
      `decryption-oracle-property: ${outcomes.length} messages, ${Date.now() - started} ms`,
    );
    await postfix?.stop();
    await milter?.stop();
    await sink?.close();
    await pki?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('control: each genuine capture is answered 250 2.0.0 and delivered decrypted with smime=pass', () => {
    assert.equal(genuine.size, 6);
    for (const g of genuine.values()) {
      const what = g.probe.name;
      assert.match(g.final, /^250 2\.0\.0 /, `${what}: ${g.final}`);
      const copies = copiesOf(g);
      assert.equal(copies.length, 1, `${what}: delivered once`);
      const got = copies[0]!;
      assert.ok(got.body().toString('latin1').includes(SECRET), `${what}: decrypted for bob`);
      const ours = ourResults(got);
      assert.equal(ours.length, 1, `${what}: one result of ours: ${ours.join(' | ')}`);
      assert.match(ours[0]!, /^mx\.example\.net;\s+smime=pass\b/, what);
      // Mail that arrived encrypted gets reports of failure only, and without a body.
      assert.equal(mailBackOf(g), 'nothing', what);
    }
    // The detector of mail back works: plain mail with a DSN asked for gives the "relayed" notice.
    assert.equal(
      mailBackOf(markerOutcome!),
      'DSN relayed',
      'the marker (plain mail, NOTIFY=SUCCESS)',
    );
    for (const o of outcomes)
      for (const m of mailBacks(o))
        assert.ok(!hasPlaintext(m), `${o.probe.name}: plaintext in what came back to the sender`);
    assert.deepEqual(
      unmappedMailBack.map((m) => `${m.mailFrom} -> ${m.rcptTo.join(',')}: ${m.header('subject')}`),
      [],
      'no mail back that names no message we sent',
    );
  });

  for (const family of FAMILIES) {
    describe(family.title, () => {
      const mine = (): Outcome[] => outcomes.filter((o) => o.probe.family === family.id);

      it("the SMTP reply at end of DATA is the genuine message's (queue id masked)", () => {
        const os = mine();
        assert.ok(os.length > 0);
        const odd = os.filter((o) => o.final !== control(o).final);
        const hist = byKind(os, (o) => o.final);
        assert.deepEqual(
          hist,
          byKind(os, (o) => control(o).final),
          `${family.id}: ${odd.length} of ${os.length} mutated messages answered unlike the genuine one ` +
            `("${control(os[0]!).final}"); by mutation and reply: ${JSON.stringify(hist)}; first: ${odd
              .slice(0, 3)
              .map((o) => `${o.probe.name} -> ${o.final}`)
              .join('; ')}`,
        );
        for (const o of os)
          assert.deepEqual(o.steps, control(o).steps, `${o.probe.name}: the whole dialogue`);
      });

      it("what comes back to the sender is the genuine message's, with and without DSN asked for", () => {
        const os = mine();
        const seen = (o: Outcome): string => `${o.probe.style}: ${mailBackOf(o)}`;
        const hist = byKind(os, seen);
        const expected = byKind(os, (o) => seen(control(o)));
        assert.deepEqual(
          hist,
          expected,
          `${family.id}: mail back to ${SENDER} unlike the genuine message's ` +
            `(${Object.keys(expected).join('; ')}); by mutation: ${JSON.stringify(hist)}`,
        );
      });

      it('what comes back reads the same for every mutation (returned headers and DSN text included)', () => {
        const os = mine();
        for (const capture of new Set(os.map((o) => o.probe.capture)))
          for (const style of STYLES) {
            const group = os.filter((o) => o.probe.capture === capture && o.probe.style === style);
            const variants = new Map<string, Outcome[]>();
            for (const o of group)
              variants.set(mailBackText(o), [...(variants.get(mailBackText(o)) ?? []), o]);
            const counts = [...variants.values()].map((v) => `${v.length}x ${v[0]!.probe.kind}`);
            const apart = differingLines([...variants.keys()].filter((t) => t !== '(nothing)'));
            assert.equal(
              variants.size,
              1,
              `${family.id} (${capture}, ${style}): ${variants.size} different things came back to ` +
                `the sender for ${group.length} mutations (${counts.join(', ')}); ` +
                `${variants.get('(nothing)')?.length ?? 0} got nothing back; lines that tell the ` +
                `others apart: ${JSON.stringify(apart.slice(0, 12))}`,
            );
          }
      });

      it('nothing unauthenticated is delivered: as sent with smime=permerror, or exactly the genuine signed content with smime=pass', () => {
        const os = mine();
        const genuineBody = (o: Outcome): Buffer => copiesOf(control(o))[0]!.body();
        const seen = (o: Outcome): string => {
          const copies = copiesOf(o);
          const [got] = copies;
          if (copies.length === 1 && got && ourResults(got).length === 1) {
            const r = ourResults(got)[0]!;
            // A mutation outside the signed part (the closing boundary, the padding) leaves the
            // signature intact: the genuine content, and nothing of the attacker's, is delivered.
            if (/^mx\.example\.net;\s+smime=pass\b/.test(r) && got.body().equals(genuineBody(o)))
              return 'the genuine signed content, smime=pass';
          }
          return deliveryClass(copies, o.probe.data);
        };
        const allowed = new Set([EXPECTED_DELIVERY, 'the genuine signed content, smime=pass']);
        const odd = os.filter((o) => !allowed.has(seen(o)));
        assert.deepEqual(
          odd.map((o) => `${o.probe.name}: ${seen(o)}`).slice(0, 5),
          [],
          `${family.id}: ${odd.length} of ${os.length} mutated messages delivered otherwise; by mutation: ${JSON.stringify(byKind(os, seen))}`,
        );
        for (const o of os) {
          const [got] = copiesOf(o);
          if (seen(o) === EXPECTED_DELIVERY)
            assert.ok(got && !hasPlaintext(got), `${o.probe.name}: no plaintext`);
        }
      });
    });
  }
});
