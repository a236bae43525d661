/**
 * Hostile input: random bytes, mutated real-looking MIME, generated trees.
 * Whatever comes in, the MIME layer either answers or throws MimeError;
 * when it answers, its promises (exact views, 7-bit output) hold.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  buildMultipart,
  canonicalize,
  decodeTransferEncoding,
  isSevenBit,
  type MimeEntity,
  MimeError,
  type MimeLimits,
  makeHeader,
  parseEntity,
  splitMessage,
  toSevenBitEntity,
} from '../../src/mime/index.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

const CORPUS = [
  'MIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="----=_s"\r\n\r\npre\r\n------=_s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nh\xc3\xa9llo\r\n------=_s\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\nMIAGCSqG\r\n------=_s--\r\nepi\r\n',
  "Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/alternative; boundary=i\n\n--i\n\nplain\n--i\nContent-Type: text/html\nContent-Transfer-Encoding: quoted-printable\n\n<p>=E9</p>\n--i--\n--o\nContent-Type: message/rfc822\n\nSubject: x\nContent-Type: text/plain; charset*=utf-8''%C3%A9\n\nbody \xe9\n--o\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\n\x00\x01\xff\r\x0a\n--o--\n",
  'Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: a\r\n\r\none\r\n--d\r\n\r\nSubject: b\r\n\r\ntwo\r\n--d--\r\n',
  'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHA6CAMIACAQA=\r\n',
  'Subject: plain\r\n\r\nline one\r\n.\r\nFrom me\r\n',
].map(b);

const TOKENS = [
  '\r\n',
  '\n',
  '\r',
  '\r\n\r\n',
  '--',
  '--o',
  '--o--',
  '--i\r\n',
  '------=_s',
  ' ',
  '\t',
  ':',
  ';',
  '=',
  '"',
  '(',
  'Content-Type: multipart/mixed; boundary=o\r\n',
  'Content-Type: message/rfc822\r\n\r\n',
  'Content-Transfer-Encoding: binary\r\n',
  '\xe9',
  '\x00',
  'boundary*0*=',
  "us-ascii'en'%",
].map(b);

type Mutation = (x: Buffer) => Buffer;

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.nat(), fc.nat({ max: 40 })).map(
    ([at, n]): Mutation =>
      (x) => {
        const p = at % (x.length + 1);
        return Buffer.concat([x.subarray(0, p), x.subarray(p + n)]);
      },
  ),
  fc
    .tuple(
      fc.nat(),
      fc.oneof(
        fc.constantFrom(...TOKENS),
        fc.uint8Array({ maxLength: 8 }).map((u) => Buffer.from(u)),
      ),
    )
    .map(
      ([at, insert]): Mutation =>
        (x) => {
          const p = at % (x.length + 1);
          return Buffer.concat([x.subarray(0, p), insert, x.subarray(p)]);
        },
    ),
  fc.tuple(fc.nat(), fc.nat(), fc.nat({ max: 60 })).map(
    ([from, to, n]): Mutation =>
      (x) => {
        const s = from % (x.length + 1);
        const p = to % (x.length + 1);
        return Buffer.concat([x.subarray(0, p), x.subarray(s, s + n), x.subarray(p)]);
      },
  ),
  fc.nat().map(
    (at): Mutation =>
      (x) =>
        x.subarray(0, at % (x.length + 1)),
  ),
);

const mutated = fc
  .tuple(fc.constantFrom(...CORPUS), fc.array(mutation, { minLength: 1, maxLength: 6 }))
  .map(([seed, ms]) => ms.reduce((x, m) => m(x), seed));

const limits: fc.Arbitrary<Partial<MimeLimits> | undefined> = fc.option(
  fc.record({
    maxDepth: fc.integer({ min: 0, max: 4 }),
    maxParts: fc.integer({ min: 0, max: 6 }),
    maxHeaders: fc.integer({ min: 0, max: 6 }),
    maxHeaderBytes: fc.integer({ min: 0, max: 300 }),
    maxHeaderLineLength: fc.integer({ min: 0, max: 120 }),
    maxLineLength: fc.integer({ min: 0, max: 120 }),
    maxSize: fc.integer({ min: 0, max: 3000 }),
  }),
  { nil: undefined },
);

function walk(e: MimeEntity): MimeEntity[] {
  const out: MimeEntity[] = [];
  const stack = [e];
  while (stack.length > 0) {
    const n = stack.pop()!;
    out.push(n);
    stack.push(...(n.parts ?? []));
  }
  return out;
}

/** Calls `f`; anything thrown must be a MimeError. */
function onlyMimeErrors<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    assert.ok(e instanceof MimeError, `escaped: ${e instanceof Error ? e.stack : String(e)}`);
    assert.ok(e.message.length > 0);
    return undefined;
  }
}

/** How many inputs got past each step: a fuzzer that only ever hits errors proves little. */
const reached = { parsed: 0, sevenBit: 0 };

/** Every promise of the layer on one input. */
function check(x: Buffer, lim: Partial<MimeLimits> | undefined): void {
  onlyMimeErrors(() => splitMessage(x, lim));
  const tree = onlyMimeErrors(() => parseEntity(x, lim));
  if (tree !== undefined) reached.parsed++;
  for (const e of tree === undefined ? [] : walk(tree)) {
    assert.equal(e.raw.buffer, x.buffer);
    const at = e.raw.byteOffset - x.byteOffset;
    assert.ok(at >= 0 && at + e.raw.length <= x.length);
    assert.equal(e.body.byteOffset + e.body.length, e.raw.byteOffset + e.raw.length);
  }
  const out = onlyMimeErrors(() => toSevenBitEntity(x, lim));
  if (out !== undefined) {
    reached.sevenBit++;
    assert.equal(canonicalize(out), out);
    for (const e of walk(
      parseEntity(out, {
        ...lim,
        maxSize: Infinity,
        maxHeaders: Infinity,
        maxHeaderBytes: Infinity,
      }),
    )) {
      if (e.parts === undefined) {
        assert.ok(isSevenBit(e.body));
        assert.ok(!['8bit', 'binary'].includes(e.transferEncoding));
      }
    }
  }
}

describe('fuzz: nothing but MimeError ever escapes', () => {
  test('random bytes (3000 runs)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1500 }), limits, (u, lim) =>
        check(Buffer.from(u), lim),
      ),
      { numRuns: 3000 },
    );
    assert.ok(reached.parsed > 0);
  });

  test('mutated MIME (5000 runs)', () => {
    const before = { ...reached };
    fc.assert(
      fc.property(mutated, limits, (x, lim) => check(x, lim)),
      { numRuns: Number(process.env.MIME_FUZZ_RUNS ?? 5000) },
    );
    // Mutations keep much of the input readable: a good share must parse and convert.
    assert.ok(reached.parsed - before.parsed > 500, `parsed ${reached.parsed - before.parsed}`);
    assert.ok(
      reached.sevenBit - before.sevenBit > 250,
      `7-bit ${reached.sevenBit - before.sevenBit}`,
    );
  });

  const leaf = fc.record({
    type: fc.constantFrom('text/plain', 'application/octet-stream', 'image/png'),
    cte: fc.constantFrom('7bit', '8bit', 'binary', undefined),
    content: fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)),
  });
  type Tree = { leaf: typeof leaf extends fc.Arbitrary<infer L> ? L : never } | { parts: Tree[] };
  const tree: fc.Arbitrary<Tree> = fc.letrec<{ node: Tree }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf.map((l) => ({ leaf: l })),
      fc.array(tie('node'), { minLength: 1, maxLength: 4 }).map((parts) => ({ parts })),
    ),
  })).node;

  /** Bytes of each node, remembered: boundaries are random, so a second rendering would differ. */
  const rendered = new WeakMap<Tree, Buffer>();
  function render(t: Tree): Buffer {
    const known = rendered.get(t);
    if (known !== undefined) return known;
    const bytes = renderNode(t);
    rendered.set(t, bytes);
    return bytes;
  }

  function renderNode(t: Tree): Buffer {
    if ('parts' in t) return buildMultipart([], 'mixed', {}, t.parts.map(render));
    const headers = [makeHeader('Content-Type', t.leaf.type)];
    if (t.leaf.cte !== undefined) headers.push(makeHeader('Content-Transfer-Encoding', t.leaf.cte));
    return Buffer.concat([
      ...headers.flatMap((h) => [h.raw, b('\r\n')]),
      b('\r\n'),
      t.leaf.content,
    ]);
  }

  function leaves(t: Tree): Tree[] {
    return 'parts' in t ? t.parts.flatMap(leaves) : [t];
  }

  test('generated trees round-trip exactly and become 7-bit with content intact (2000 runs)', () => {
    fc.assert(
      fc.property(tree, (t) => {
        const bytes = render(t);
        const parsed = parseEntity(bytes);
        // Every node's raw is exactly the bytes it was rendered from.
        const pairs: [Tree, MimeEntity][] = [[t, parsed]];
        for (let pair = pairs.pop(); pair !== undefined; pair = pairs.pop()) {
          const [node, entity] = pair;
          assert.deepEqual(entity.raw, render(node));
          if ('parts' in node) {
            assert.equal(entity.parts?.length, node.parts.length);
            for (const [i, child] of node.parts.entries()) pairs.push([child, entity.parts![i]!]);
          }
        }
        const out = toSevenBitEntity(bytes);
        assert.ok(isSevenBit(out));
        const expected = leaves(t);
        const got = walk(parseEntity(out)).filter((e) => e.parts === undefined);
        assert.equal(got.length, expected.length);
        // walk() is depth-first with a stack: compare as multisets of decoded content.
        const decoded = got
          .map((e) => decodeTransferEncoding(e.body, e.transferEncoding).toString('latin1'))
          .sort();
        const want = expected
          .map((l) => {
            if ('parts' in l) throw new Error('unreachable');
            const text = l.leaf.type.startsWith('text/');
            const clean = isSevenBit(
              l.leaf.cte === 'binary' ? l.leaf.content : canonicalize(l.leaf.content),
            );
            return (clean || text ? canonicalize(l.leaf.content) : l.leaf.content).toString(
              'latin1',
            );
          })
          .sort();
        assert.deepEqual(decoded, want);
      }),
      { numRuns: 2000 },
    );
  });
});
