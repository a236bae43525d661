/**
 * The time to answer as a decryption oracle: how long the gateway takes at
 * end of message for each family of mutations of a captured encrypted
 * message (the families of test/security/decryption-oracle-property.test.ts,
 * built with test/helpers/cms-mutations.ts), beside the genuine message. The
 * reply and the mail that comes back are asserted there; the time is
 * measured here, never in a timed unit test.
 *
 * The real gateway application runs in-process behind our MilterServer
 * (startGatewayMilter, configured as startUs configures it); our MilterClient
 * sends every stage up to the body itself, lets the loop drain the no-reply
 * header and body packets, and only the end-of-body packet -> final reply
 * exchange is timed (process.hrtime.bigint, client side). One connection per
 * message, as Postfix makes for one SMTP session. All kinds are measured in
 * one run, round-robin in a shuffled order each round, so drift of the host
 * falls on all of them alike.
 *
 * The bench holds example.net's private key, so it knows what the attacker
 * does not: which CBC mutations leave valid PKCS#7 padding.
 */

import {
  constants,
  createDecipheriv,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MilterClient } from '../protocol/index.js';
import { OID } from '../src/cms/oids.js';
import type { MessageOutcome } from '../src/gateway/deps.js';
import { splitMessage } from '../src/mime/index.js';
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
  withContent,
} from '../test/helpers/cms-mutations.js';
import { startGatewayMilter } from '../test/helpers/gateway-app.js';
import {
  AUTHSERV_ID,
  derOf,
  OUTSIDE,
  plainMessage,
  protectedByOrg,
  type SecurityPki,
  securityPki,
  TRUSTED_NETWORKS,
  withDer,
} from '../test/helpers/security-fixture.js';

const BLOCK = 16;
const SENDER = 'alice@example.org';
const RECIPIENT = 'bob@example.net';

type Capture = 'cbc-oaep' | 'cbc-pkcs1' | 'gcm';

export const ORACLE_FAMILIES = [
  { id: 'genuine', title: 'genuine (control)' },
  { id: 'cbc-padding', title: '1. CBC padding' },
  { id: 'cbc-blocks', title: '2. CBC blocks' },
  { id: 'gcm', title: '3. AES-GCM' },
  { id: 'key-transport', title: '4. key transport' },
] as const;
export type OracleFamily = (typeof ORACLE_FAMILIES)[number]['id'];

interface Variant {
  readonly label: string;
  readonly data: Buffer;
  /** CBC mutations: whether the (mutated) ciphertext still ends in valid PKCS#7 padding. */
  readonly validPadding?: boolean;
}

interface Kind {
  readonly family: OracleFamily;
  readonly kind: string;
  readonly capture: Capture;
  readonly variants: Variant[];
}

/** One timed end of message. */
interface Sample {
  readonly us: number;
  /** Server side: the application's own endOfMessage time (onMessage), µs. */
  readonly serverUs: number;
  readonly variant: Variant;
  /** What the sender sees, and (after "·") what the gateway logged. */
  readonly outcome: string;
}

export interface Stats {
  readonly n: number;
  readonly median: number;
  readonly p10: number;
  readonly p90: number;
  readonly iqr: number;
}

export interface Comparison {
  /** What the row is compared with. */
  readonly against: string;
  /** Median of the row minus the other group's, µs, and a bootstrap 95% interval of it. */
  readonly delta: number;
  readonly ci: readonly [number, number];
  /** P(row sample > other sample) + P(=)/2: 0.5 when time tells them apart no better than a coin. */
  readonly auc: number;
  /** Mann–Whitney U, two-sided, normal approximation with tie correction. */
  readonly p: number;
}

export interface OracleRow {
  readonly family: OracleFamily;
  readonly kind: string;
  readonly capture: Capture;
  readonly variants: number;
  readonly stats: Stats;
  /** Server-side median (application endOfMessage), µs. */
  readonly serverMedian: number;
  readonly ratioToGenuine: number;
  readonly outcomes: string;
  readonly comparison?: Comparison;
}

export interface OracleResult {
  readonly rows: OracleRow[];
  /** "CBC padding: valid vs invalid", over every mutation that reaches the padding block. */
  readonly padding: OracleRow[];
  readonly rounds: number;
  readonly warmUpRounds: number;
  readonly messages: number;
  readonly seconds: number;
  readonly paddingValue: string;
  /** The SMTP client's address the gateway was told. */
  readonly client: string;
  /** Every two kinds of one capture (the attacker mutates one capture), row minus column. */
  readonly pairs: Pair[];
}

export interface Pair {
  readonly capture: Capture;
  readonly a: string;
  readonly b: string;
  readonly delta: number;
  readonly auc: number;
  readonly p: number;
}

// ---- statistics --------------------------------------------------------------

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 1) return sorted[0]!;
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

export function stats(xs: readonly number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  return {
    n: s.length,
    median: quantile(s, 0.5),
    p10: quantile(s, 0.1),
    p90: quantile(s, 0.9),
    iqr: quantile(s, 0.75) - quantile(s, 0.25),
  };
}

const median = (xs: readonly number[]): number =>
  quantile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );

/** erfc, Numerical Recipes' Chebyshev fit (relative error < 1.2e-7). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t *
                              (-1.13520398 +
                                t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Mann–Whitney U of `a` against `b`: the AUC and the two-sided p-value. */
export function mannWhitney(
  a: readonly number[],
  b: readonly number[],
): { auc: number; p: number } {
  const all = [...a.map((v) => ({ v, g: 0 })), ...b.map((v) => ({ v, g: 1 }))].sort(
    (x, y) => x.v - y.v,
  );
  const n1 = a.length;
  const n2 = b.length;
  const n = n1 + n2;
  let rankSumA = 0;
  let ties = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && all[j + 1]!.v === all[i]!.v) j++;
    const rank = (i + j + 2) / 2;
    const t = j - i + 1;
    ties += t * t * t - t;
    for (let k = i; k <= j; k++) if (all[k]!.g === 0) rankSumA += rank;
    i = j + 1;
  }
  const u = rankSumA - (n1 * (n1 + 1)) / 2;
  const mean = (n1 * n2) / 2;
  const sd = Math.sqrt(((n1 * n2) / 12) * (n + 1 - ties / (n * (n - 1))));
  const z = sd === 0 ? 0 : (Math.abs(u - mean) - 0.5) / sd;
  return { auc: u / (n1 * n2), p: Math.min(1, erfc(Math.max(0, z) / Math.SQRT2)) };
}

/** A deterministic PRNG (mulberry32): the same schedule and resamples on every run. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(xs: T[], random: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** Bootstrap 95% interval of median(a) - median(b). */
function bootstrapDelta(
  a: readonly number[],
  b: readonly number[],
  random: () => number,
  resamples = 1000,
): [number, number] {
  const pick = (xs: readonly number[]): number[] =>
    Array.from({ length: xs.length }, () => xs[Math.floor(random() * xs.length)]!);
  const d = Array.from({ length: resamples }, () => median(pick(a)) - median(pick(b))).sort(
    (x, y) => x - y,
  );
  return [quantile(d, 0.025), quantile(d, 0.975)];
}

function compare(
  a: readonly number[],
  b: readonly number[],
  against: string,
  random: () => number,
): Comparison {
  const { auc, p } = mannWhitney(a, b);
  return { against, delta: median(a) - median(b), ci: bootstrapDelta(a, b, random), auc, p };
}

// ---- the mutations (the property test's families, from cms-mutations.ts) ------

/** The content key of the cbc-oaep capture, and PKCS#7 validity of a mutated ciphertext. */
function paddingJudge(pki: SecurityPki, der: Buffer, L: EnvelopeLayout) {
  const ktri = L.keyTransport[0]!;
  const cek = privateDecrypt(
    {
      key: pki.net.encryption.privateKey,
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha256',
    },
    bytesOf(der, ktri.encryptedKey),
  );
  return (mutated: Buffer): boolean => {
    const m = envelopeLayout(mutated);
    const d = createDecipheriv('aes-256-cbc', cek, bytesOf(mutated, m.iv));
    d.setAutoPadding(false);
    const plain = Buffer.concat([d.update(bytesOf(mutated, m.ciphertext)), d.final()]);
    const n = plain[plain.length - 1]!;
    if (n < 1 || n > BLOCK) return false;
    for (let i = 1; i <= n; i++) if (plain[plain.length - i] !== n) return false;
    return true;
  };
}

function cbcKinds(
  message: Buffer,
  der: Buffer,
  L: EnvelopeLayout,
  validPadding: (der: Buffer) => boolean,
): Kind[] {
  if (L.contentAlgorithm !== OID.aes256Cbc) throw new Error('the CBC capture is not AES-256-CBC');
  if (!validPadding(der)) throw new Error('the genuine CBC capture has invalid padding?');
  const n = blocksOf(der, L.ciphertext).length;
  const block = (i: number): number => L.ciphertext.start + i * BLOCK;
  const kinds = new Map<string, Kind>();
  const add = (family: OracleFamily, kind: string, label: string, mutated: Buffer): void => {
    envelopeLayout(mutated); // still a well-formed EnvelopedData
    let k = kinds.get(kind);
    if (!k) {
      k = { family, kind, capture: 'cbc-oaep', variants: [] };
      kinds.set(kind, k);
    }
    k.variants.push({
      label,
      data: withDer(message, mutated),
      validPadding: validPadding(mutated),
    });
  };

  // 1. The last byte of C[n-2]: XORed into the last plaintext byte, the padding length.
  const pad = block(n - 2) + BLOCK - 1;
  for (let v = 0; v < 256; v++) {
    if (v === der[pad]) continue;
    const mutated = withByte(der, pad, v);
    const label = `C[n-2][15]=0x${v.toString(16).padStart(2, '0')}`;
    add('cbc-padding', validPadding(mutated) ? 'good padding' : 'bad padding', label, mutated);
  }
  // 2. As the property test builds them.
  const masks = [0x01, 0x80, 0xff, 0x5a];
  spread(block(1), block(n - 2), 12).forEach((at, i) => {
    const mask = masks[i % masks.length]!;
    const label = `ciphertext byte ${at - L.ciphertext.start} ^0x${mask.toString(16)}`;
    add('cbc-blocks', 'middle block byte', label, flipped(der, at, mask));
  });
  for (let i = 0; i < BLOCK; i++)
    add('cbc-blocks', 'IV byte', `IV byte ${i} ^0x01`, flipped(der, L.iv.start + i));
  for (const first of [...new Set([...spread(0, n - 2, 5), n - 2])])
    add(
      'cbc-blocks',
      'two blocks appended',
      `C[${first}],C[${first + 1}] of ${n} appended`,
      withBlocksAppended(der, L, first),
    );
  add('cbc-blocks', 'last block truncated', `C[${n - 1}] dropped`, withBlocksTruncated(der, L, 1));
  return [...kinds.values()];
}

function gcmKinds(message: Buffer, der: Buffer, L: EnvelopeLayout): Kind[] {
  if (L.contentAlgorithm !== OID.aes256Gcm || !L.tag) throw new Error('not an AES-256-GCM capture');
  const tag: Kind = { family: 'gcm', kind: 'tag byte', capture: 'gcm', variants: [] };
  const ct: Kind = { family: 'gcm', kind: 'ciphertext byte', capture: 'gcm', variants: [] };
  for (let i = L.tag.start; i < L.tag.end; i++)
    tag.variants.push({
      label: `tag byte ${i - L.tag.start} ^0x01`,
      data: withDer(message, flipped(der, i)),
    });
  for (const at of spread(L.ciphertext.start, L.ciphertext.end, 16))
    ct.variants.push({
      label: `ciphertext byte ${at - L.ciphertext.start} ^0x01`,
      data: withDer(message, flipped(der, at)),
    });
  return [tag, ct];
}

function keyTransportKind(
  message: Buffer,
  der: Buffer,
  L: EnvelopeLayout,
  capture: Capture,
  algorithm: string,
): Kind {
  const ktri = L.keyTransport[0]!;
  if (L.keyTransport.length !== 1 || ktri.algorithm !== algorithm)
    throw new Error(`${capture}: not one ${algorithm} KeyTransRecipientInfo`);
  const kind =
    algorithm === OID.rsaesOaep ? 'RSA-OAEP encryptedKey' : 'RSA PKCS#1 v1.5 encryptedKey';
  return {
    family: 'key-transport',
    kind,
    capture,
    variants: spread(ktri.encryptedKey.start, ktri.encryptedKey.end, 16).map((at) => ({
      label: `${kind} byte ${at - ktri.encryptedKey.start} ^0x01`,
      data: withDer(message, flipped(der, at)),
    })),
  };
}

/**
 * Key blobs the attacker can make with our public key alone: well-formed for their
 * padding (RSA-OAEP, or PKCS#1 v1.5 conforming, the case Bleichenbacher's oracle
 * needs told apart from the non-conforming ones), carrying a key of their own. The
 * bench checks with the private key that they are what they claim.
 */
function wellFormedKeyKind(
  pki: SecurityPki,
  message: Buffer,
  der: Buffer,
  L: EnvelopeLayout,
  capture: Capture,
  algorithm: string,
): Kind {
  const ktri = L.keyTransport[0]!;
  if (L.keyTransport.length !== 1 || ktri.algorithm !== algorithm)
    throw new Error(`${capture}: not one ${algorithm} KeyTransRecipientInfo`);
  const oaep = algorithm === OID.rsaesOaep;
  const key = pki.net.encryption.certificate.publicKey;
  const ours = pki.net.encryption.privateKey;
  const kind = oaep ? 'RSA-OAEP valid, other key' : 'RSA PKCS#1 v1.5 conforming, other key';
  const variants = Array.from({ length: 16 }, (_, i) => {
    const cek = randomBytes(32);
    const blob = oaep
      ? publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, cek)
      : publicEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, cek);
    const em = privateDecrypt({ key: ours, padding: constants.RSA_NO_PADDING }, blob);
    const back = oaep
      ? privateDecrypt(
          { key: ours, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
          blob,
        )
      : em.subarray(em.length - 32);
    const conforming =
      oaep ||
      (em[0] === 0 &&
        em[1] === 2 &&
        em[em.length - 33] === 0 &&
        em.subarray(2, em.length - 33).every((b) => b !== 0));
    if (!conforming || !back.equals(cek)) throw new Error(`${kind}: not well-formed`);
    return {
      label: `${kind} #${i}`,
      data: withDer(message, withContent(der, ktri.encryptedKey.path, blob)),
    };
  });
  return { family: 'key-transport', kind, capture, variants };
}

// ---- the run -------------------------------------------------------------------

function smimeResult(
  edits: readonly { type: string; name?: string; value?: string | Buffer }[],
): string {
  for (const e of edits)
    if (
      (e.type === 'insertHeader' || e.type === 'addHeader') &&
      e.name?.toLowerCase() === 'authentication-results'
    )
      return /smime=([a-z]+)/.exec(String(e.value))?.[1] ?? '?';
  return 'no result';
}

export async function oracleTimingBenchmark(
  o: { samples: number; warmUpRounds: number; seed?: number },
  log: (s: string) => void,
): Promise<OracleResult> {
  const pki = await securityPki();
  let last: MessageOutcome | undefined;
  const milter = await startGatewayMilter(
    'example.net',
    pki.net,
    {
      DOMSEC_TRUSTED_NETWORKS: TRUSTED_NETWORKS,
      DOMSEC_TRUST_ANCHORS: join(pki.dir, 'anchors.pem'),
      DOMSEC_AUTHSERV_ID: AUTHSERV_ID,
    },
    { onMessage: (m) => (last = m) },
  );
  try {
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
    const der = { 'cbc-oaep': derOf(cbcOaep), 'cbc-pkcs1': derOf(cbcPkcs1), gcm: derOf(gcm) };
    const L = {
      'cbc-oaep': envelopeLayout(der['cbc-oaep']),
      'cbc-pkcs1': envelopeLayout(der['cbc-pkcs1']),
      gcm: envelopeLayout(der.gcm),
    };
    const validPadding = paddingJudge(pki, der['cbc-oaep'], L['cbc-oaep']);
    const genuine = (capture: Capture, data: Buffer): Kind => ({
      family: 'genuine',
      kind: `genuine ${capture}`,
      capture,
      variants: [{ label: 'genuine', data, ...(capture !== 'gcm' ? { validPadding: true } : {}) }],
    });
    const kinds: Kind[] = [
      genuine('cbc-oaep', cbcOaep),
      genuine('cbc-pkcs1', cbcPkcs1),
      genuine('gcm', gcm),
      ...cbcKinds(cbcOaep, der['cbc-oaep'], L['cbc-oaep'], validPadding),
      ...gcmKinds(gcm, der.gcm, L.gcm),
      keyTransportKind(cbcOaep, der['cbc-oaep'], L['cbc-oaep'], 'cbc-oaep', OID.rsaesOaep),
      wellFormedKeyKind(pki, cbcOaep, der['cbc-oaep'], L['cbc-oaep'], 'cbc-oaep', OID.rsaesOaep),
      keyTransportKind(cbcPkcs1, der['cbc-pkcs1'], L['cbc-pkcs1'], 'cbc-pkcs1', OID.rsaEncryption),
      wellFormedKeyKind(
        pki,
        cbcPkcs1,
        der['cbc-pkcs1'],
        L['cbc-pkcs1'],
        'cbc-pkcs1',
        OID.rsaEncryption,
      ),
    ];
    const good = kinds.find((k) => k.kind === 'good padding');
    if (good?.variants.length !== 1)
      throw new Error(`expected one good-padding value, got ${good?.variants.length ?? 0}`);
    const paddingValue = good.variants[0]!.label;

    // Headers and body as Postfix sends them (no-reply steps), parsed once.
    const prepared = new Map<Buffer, { headers: [string, Buffer][]; body: Buffer }>();
    for (const k of kinds)
      for (const v of k.variants) {
        const { headers, body } = splitMessage(v.data);
        prepared.set(v.data, {
          headers: headers.map((h) => [h.name, h.raw.subarray(h.name.length + 1)]),
          body,
        });
      }

    const one = async (v: Variant): Promise<Omit<Sample, 'variant'>> => {
      const client: MilterClient = await milter.client();
      await client.connectEvent({
        hostname: 'client.example',
        family: 'inet',
        port: 25,
        address: OUTSIDE,
      });
      const m = prepared.get(v.data)!;
      const refusedAt = (d: { type: string } | undefined, stage: string) => {
        if (d && d.type !== 'continue') throw new Error(`${v.label}: refused at ${stage}`);
      };
      refusedAt(await client.mail(`<${SENDER}>`), 'MAIL');
      refusedAt(await client.rcpt(`<${RECIPIENT}>`), 'RCPT');
      refusedAt(await client.data(), 'DATA');
      for (const [name, value] of m.headers) refusedAt(await client.header(name, value), 'header');
      refusedAt(await client.endOfHeaders(), 'EOH');
      refusedAt(await client.bodyChunks(m.body), 'body');
      // Header and body are no-reply steps: give the server a turn to take them in.
      await sleep(1);
      last = undefined;
      const t0 = process.hrtime.bigint();
      const eom = await client.endOfMessage();
      const t1 = process.hrtime.bigint();
      client.quit();
      const server = last as MessageOutcome | undefined;
      const seen = `${eom.decision.type} smime=${smimeResult(eom.modifications)}`;
      const logged = server
        ? `${server.action}${server.decryptFailure ? ` (${server.decryptFailure})` : ''}`
        : '?';
      return {
        us: Number(t1 - t0) / 1e3,
        serverUs: (server?.seconds ?? Number.NaN) * 1e6,
        outcome: `${seen} · ${logged}`,
      };
    };

    const random = prng(o.seed ?? 0x5eed);
    const perKind = (k: Kind): number => Math.max(o.samples, k.variants.length);
    const rounds = Math.max(...kinds.map(perKind));
    const started = process.hrtime.bigint();

    const isPass = (outcome: string): boolean => outcome.startsWith('accept smime=pass ');
    for (const k of kinds.filter((x) => x.family === 'genuine')) {
      const first = await one(k.variants[0]!);
      if (!isPass(first.outcome))
        throw new Error(`${k.kind} is not decrypted and verified: ${first.outcome}`);
    }
    log(`oracle: ${kinds.length} kinds, ${o.warmUpRounds} warm-up rounds`);
    for (let r = 0; r < o.warmUpRounds; r++)
      for (const k of shuffle([...kinds], random))
        await one(k.variants[Math.floor(random() * k.variants.length)]!);

    const samples = new Map<Kind, Sample[]>(kinds.map((k) => [k, []]));
    // Each kind's variants in a shuffled order, cycled: every variant sampled, evenly.
    const orders = new Map(kinds.map((k) => [k, shuffle([...k.variants], random)]));
    // A kind with fewer samples than the most is spread evenly over the rounds, not
    // bunched at the start: drift of the host falls on every kind alike.
    const inRound = (k: Kind, r: number): boolean =>
      Math.floor(((r + 1) * perKind(k)) / rounds) > Math.floor((r * perKind(k)) / rounds);
    for (let r = 0; r < rounds; r++) {
      for (const k of shuffle(
        kinds.filter((k) => inRound(k, r)),
        random,
      )) {
        const order = orders.get(k)!;
        const v = order[samples.get(k)!.length % order.length]!;
        samples.get(k)!.push({ ...(await one(v)), variant: v });
      }
      if ((r + 1) % 50 === 0) log(`oracle: round ${r + 1}/${rounds}`);
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    // The control: a gateway that does not decrypt and verify the genuine capture is
    // broken, and its answer times say nothing about the oracle.
    for (const k of kinds.filter((x) => x.family === 'genuine')) {
      const odd = samples.get(k)!.filter((x) => !isPass(x.outcome));
      if (odd.length > 0)
        throw new Error(
          `${k.kind}: ${odd.length} answers not "accept smime=pass": ${odd[0]!.outcome}`,
        );
    }

    const us = (k: Kind) => samples.get(k)!.map((s) => s.us);
    const genuineOf = (capture: Capture): Kind =>
      kinds.find((k) => k.family === 'genuine' && k.capture === capture)!;
    const outcomesOf = (ss: readonly Sample[]): string => {
      const counts = new Map<string, number>();
      for (const s of ss) counts.set(s.outcome, (counts.get(s.outcome) ?? 0) + 1);
      return [...counts]
        .sort((a, b) => b[1] - a[1])
        .map(([what, c]) => (counts.size === 1 ? what : `${c}× ${what}`))
        .join('; ');
    };
    const row = (
      family: OracleFamily,
      kind: string,
      capture: Capture,
      variants: number,
      ss: readonly Sample[],
      comparison?: Comparison,
    ): OracleRow => {
      const st = stats(ss.map((s) => s.us));
      return {
        family,
        kind,
        capture,
        variants,
        stats: st,
        serverMedian: median(ss.map((s) => s.serverUs)),
        ratioToGenuine: st.median / stats(us(genuineOf(capture))).median,
        outcomes: outcomesOf(ss),
        ...(comparison ? { comparison } : {}),
      };
    };

    const rows = kinds.map((k) => {
      // The family's other kinds of the same capture (what one attacker can compare), or
      // of any capture when the kind is alone in its capture.
      const family = kinds.filter((x) => x.family === k.family && x !== k);
      const same = family.filter((x) => x.capture === k.capture);
      const others = same.length > 0 ? same : family;
      const comparison =
        k.family === 'genuine' || others.length === 0
          ? undefined
          : compare(
              us(k),
              others.flatMap(us),
              others.length === 1 ? others[0]!.kind : `the other ${others.length} kinds`,
              random,
            );
      return row(k.family, k.kind, k.capture, k.variants.length, samples.get(k)!, comparison);
    });

    // Every mutation whose change reaches the last (padding) block, split by the key's verdict.
    const reaching = kinds
      .filter(
        (k) =>
          k.family === 'cbc-padding' ||
          k.kind === 'two blocks appended' ||
          k.kind === 'last block truncated',
      )
      .flatMap((k) => samples.get(k)!);
    const valid = reaching.filter((s) => s.variant.validPadding === true);
    const invalid = reaching.filter((s) => s.variant.validPadding === false);
    const variantsIn = (ss: readonly Sample[]) => new Set(ss.map((s) => s.variant)).size;
    const pv = valid.map((s) => s.us);
    const pi = invalid.map((s) => s.us);
    const padding = [
      row(
        'cbc-padding',
        'valid padding',
        'cbc-oaep',
        variantsIn(valid),
        valid,
        compare(pv, pi, 'invalid padding', random),
      ),
      row(
        'cbc-padding',
        'invalid padding',
        'cbc-oaep',
        variantsIn(invalid),
        invalid,
        compare(pi, pv, 'valid padding', random),
      ),
    ];
    const messages = [...samples.values()].reduce((n, ss) => n + ss.length, 0);
    const pairs: Pair[] = [];
    for (const a of kinds)
      for (const b of kinds)
        if (a !== b && a.capture === b.capture) {
          const { auc, p } = mannWhitney(us(a), us(b));
          pairs.push({
            capture: a.capture,
            a: a.kind,
            b: b.kind,
            delta: median(us(a)) - median(us(b)),
            auc,
            p,
          });
        }
    return {
      rows,
      padding,
      rounds,
      warmUpRounds: o.warmUpRounds,
      messages,
      seconds,
      paddingValue,
      client: OUTSIDE,
      pairs,
    };
  } finally {
    await milter.close();
    await pki.cleanup();
  }
}
