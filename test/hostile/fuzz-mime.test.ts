/**
 * The MIME layer against 10^5 hostile inputs per target (full run): mutated
 * real messages (nested multiparts, S/MIME), random header soup, multipart
 * bodies, transfer decodings and canonicalisation. Nothing but MimeError may
 * escape, and whatever is returned keeps the layer's promises: exact
 * zero-copy views in input order, bounds respected, 7-bit output, lossless
 * encodings.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  canonicalize,
  decodeBase64,
  decodeQuotedPrintable,
  decodeTransferEncoding,
  encodeBase64Lines,
  encodeQuotedPrintable,
  headerValue,
  isSevenBit,
  type MimeEntity,
  MimeError,
  type MimeLimits,
  parseEntity,
  resolveLimits,
  type SplitMessage,
  splitMessage,
  toSevenBitEntity,
} from '../../src/mime/index.js';
import { findDelimiter, splitMultipart } from '../../src/mime/multipart.js';
import { bytesArb, fuzz, fuzzRuns } from './fuzz-budget.js';
import { MIME_CORPUS, MIME_TOKENS } from './mime-corpus.js';
import { mutated } from './mutate.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

const limitsArb: fc.Arbitrary<Partial<MimeLimits> | undefined> = fc.option(
  fc.record({
    maxDepth: fc.integer({ min: 0, max: 5 }),
    maxParts: fc.integer({ min: 0, max: 8 }),
    maxHeaders: fc.integer({ min: 0, max: 8 }),
    maxHeaderBytes: fc.integer({ min: 0, max: 400 }),
    maxHeaderLineLength: fc.integer({ min: 0, max: 150 }),
    maxLineLength: fc.integer({ min: 0, max: 150 }),
    maxSize: fc.integer({ min: 0, max: 4000 }),
  }),
  { nil: undefined },
);

/** Calls `f`; anything thrown must be a MimeError with a message. */
function onlyMimeErrors<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    assert.ok(e instanceof MimeError, `escaped: ${e instanceof Error ? e.stack : String(e)}`);
    assert.ok(e.message.length > 0);
    return undefined;
  }
}

const offsetIn = (outer: Buffer, inner: Buffer): number => {
  assert.equal(inner.buffer, outer.buffer, 'a view of the input, not a copy');
  const at = inner.byteOffset - outer.byteOffset;
  assert.ok(at >= 0 && at + inner.length <= outer.length, 'inside the input');
  return at;
};

/** The header fields and the body tile the input exactly: fields, line breaks, blank line, body. */
function checkSplit(x: Buffer, s: SplitMessage, lim: MimeLimits): void {
  assert.ok(s.headers.length <= lim.maxHeaders);
  let pos = 0;
  for (const h of s.headers) {
    assert.equal(offsetIn(x, h.raw), pos, 'fields follow one another');
    const text = h.raw.toString('latin1');
    assert.ok(text.startsWith(h.name), 'the name starts the field');
    assert.ok(!/\r?\n(?![ \t])/.test(text), 'a field holds only continuation lines');
    assert.ok(text.replace(/\r?\n/g, '').length <= lim.maxHeaderLineLength);
    headerValue(h);
    pos += h.raw.length;
    if (x[pos] === 0x0d && x[pos + 1] === 0x0a) pos += 2;
    else if (x[pos] === 0x0a) pos += 1;
    else assert.equal(pos, x.length, 'a field ends with a line break or the input');
  }
  const bodyAt = offsetIn(x, s.body);
  assert.equal(bodyAt + s.body.length, x.length, 'the body runs to the end');
  assert.ok(pos <= lim.maxHeaderBytes, 'header block bound');
  const gap = x.toString('latin1', pos, bodyAt);
  assert.ok(['', '\n', '\r\n'].includes(gap), `between header and body: ${JSON.stringify(gap)}`);
  if (gap === '') assert.equal(bodyAt, x.length);
}

/** Every node of a parsed tree keeps the parser's promises. */
function checkTree(x: Buffer, root: MimeEntity, lim: MimeLimits): void {
  let parts = 0;
  const stack: [MimeEntity, number][] = [[root, 0]];
  while (stack.length > 0) {
    const [e, depth] = stack.pop()!;
    assert.ok(depth <= lim.maxDepth, 'depth bound');
    const at = offsetIn(x, e.raw);
    checkSplit(e.raw, { headers: e.headers, body: e.body, lineEnding: 'crlf' }, lim);
    assert.equal(offsetIn(x, e.body) + e.body.length, at + e.raw.length);
    if (e.parts === undefined) continue;
    parts += e.parts.length;
    if (e.contentType.type === 'multipart') {
      // Parts lie inside the body, in order, without overlapping.
      let prev = 0;
      for (const p of [e.preamble, ...e.parts.map((c) => c.raw), e.epilogue]) {
        if (p === undefined) continue;
        const start = offsetIn(e.body, p);
        assert.ok(start >= prev, 'in order, not overlapping');
        prev = start + p.length;
      }
    } else {
      assert.equal(e.parts.length, 1);
      assert.equal(offsetIn(e.body, e.parts[0]!.raw), 0);
      assert.equal(e.parts[0]!.raw.length, e.body.length);
    }
    for (const c of e.parts) stack.push([c, depth + 1]);
  }
  assert.ok(parts <= lim.maxParts, 'part bound');
}

/** How many inputs got through each step: a fuzzer that only hits errors proves little. */
const reached = { split: 0, parsed: 0, sevenBit: 0 };

function checkMessage(x: Buffer, limits: Partial<MimeLimits> | undefined): void {
  const lim = resolveLimits(limits);
  const s = onlyMimeErrors(() => splitMessage(x, limits));
  if (s) {
    reached.split++;
    checkSplit(x, s, lim);
  }
  const tree = onlyMimeErrors(() => parseEntity(x, limits));
  if (tree) {
    reached.parsed++;
    checkTree(x, tree, lim);
  }
  const out = onlyMimeErrors(() => toSevenBitEntity(x, limits));
  if (out) {
    reached.sevenBit++;
    assert.equal(canonicalize(out), out, 'canonical output');
    const relaxed = { ...lim, maxSize: Infinity, maxHeaders: Infinity, maxHeaderBytes: Infinity };
    const stack = [parseEntity(out, relaxed)];
    while (stack.length > 0) {
      const e = stack.pop()!;
      if (e.parts) stack.push(...e.parts);
      else assert.ok(isSevenBit(e.body) && !['8bit', 'binary'].includes(e.transferEncoding));
    }
  }
}

const GOOD_NAMES = [
  'From',
  'To',
  'Subject',
  'Content-Type',
  'content-type',
  'Content-Transfer-Encoding',
  'MIME-Version',
  'Received',
  'X-Y',
];
const BAD_NAMES = ['Bad Name', '', 'A\x00B', '\xfcber'];
const VALUES = [
  'multipart/mixed; boundary=o',
  'multipart/signed; protocol="application/pkcs7-signature"; boundary="s"',
  'message/rfc822',
  'text/plain; charset*=utf-8\'\'%C3%A9; name*0="a"; name*1="b"',
  'application/pkcs7-mime; smime-type=enveloped-data',
  'base64',
  'quoted-printable',
  '(comment (nested) \\) ) value',
  '"unterminated',
  '',
];
const lineEnd = fc.constantFrom('\r\n', '\n', '\r');
const fieldArb = fc
  .tuple(
    fc.oneof(
      { weight: 20, arbitrary: fc.constantFrom(...GOOD_NAMES) },
      { weight: 1, arbitrary: fc.constantFrom(...BAD_NAMES) },
    ),
    fc.oneof(
      { weight: 10, arbitrary: fc.constant(': ') },
      { weight: 1, arbitrary: fc.constantFrom(':', ' : ', '', '\t:') },
    ),
    fc.oneof(
      fc.constantFrom(...VALUES),
      bytesArb(40).map((x) => x.toString('latin1')),
    ),
    fc.array(fc.tuple(lineEnd, fc.constantFrom(' ', '\t', ''), fc.string({ maxLength: 20 })), {
      maxLength: 3,
    }),
    lineEnd,
  )
  .map(
    ([name, sep, value, folds, end]) =>
      `${name}${sep}${value}${folds.map(([e, ws, t]) => `${e}${ws}${t}`).join('')}${end}`,
  );
/** Random header soup: plausible and broken fields, mixed line ends, a blank line or none. */
const soupArb = fc
  .tuple(
    fc.array(fieldArb, { maxLength: 25 }),
    fc.constantFrom('\r\n', '\n', ''),
    fc.oneof(fc.constantFrom(...MIME_CORPUS), bytesArb(300)),
  )
  .map(([fields, blank, body]) => Buffer.concat([b(fields.join('') + blank), body]));

describe('fuzz: MIME parser (10^5 inputs per target in the full run)', () => {
  test('mutated real messages: split, parse, 7-bit conversion', (t) => {
    const runs = fuzzRuns(100_000, 1500);
    const before = { ...reached };
    fuzz(
      t,
      'mime/mutated-messages',
      runs,
      [mutated(MIME_CORPUS, MIME_TOKENS, 8), limitsArb],
      checkMessage,
    );
    // Mutations keep much of the input readable: a good share must parse and convert.
    assert.ok(reached.parsed - before.parsed > runs / 10, `parsed ${reached.parsed}`);
    assert.ok(reached.sevenBit - before.sevenBit > runs / 20, `7-bit ${reached.sevenBit}`);
  });

  test('random header soup', (t) => {
    const runs = fuzzRuns(100_000, 1500);
    const before = { ...reached };
    const someLimits = fc.oneof(fc.constant(undefined), limitsArb);
    fuzz(t, 'mime/header-soup', runs, [soupArb, someLimits], checkMessage);
    assert.ok(reached.split - before.split > runs / 10, `split ${reached.split}`);
  });

  test('multipart bodies: parts in order, none holding a delimiter line, within the part bound', (t) => {
    const runs = fuzzRuns(100_000, 1500);
    const boundary = fc.constantFrom('o', 'b', '=_x', "'()+_,-./:=?", ' ');
    const piece = fc.oneof(
      fc.constantFrom('--', '\r\n', '\n', '--o', '--b--', '--=_x', ' \t', 'text', '-'),
      bytesArb(12).map((x) => x.toString('latin1')),
    );
    const body = fc.array(piece, { maxLength: 40 }).map((ps) => b(ps.join('')));
    fuzz(t, 'mime/multipart', runs, [body, boundary, fc.nat(10)], (x, bound, maxParts) => {
      const split = onlyMimeErrors(() => splitMultipart(x, bound, maxParts));
      if (!split) return;
      assert.ok(split.parts.length <= maxParts);
      const dash = b(`--${bound}`);
      let prev = 0;
      for (const p of [split.preamble, ...split.parts, split.epilogue]) {
        if (p === undefined) continue;
        const at = offsetIn(x, p);
        assert.ok(at >= prev);
        prev = at + p.length;
      }
      for (const p of split.parts) assert.equal(findDelimiter(p, dash, 0), undefined);
    });
  });

  test('transfer decodings: never throw on garbage, lossless on our own encodings', (t) => {
    const runs = fuzzRuns(100_000, 1500);
    const junk = fc.oneof(
      bytesArb(600),
      fc
        .tuple(
          bytesArb(300),
          fc.array(fc.constantFrom('=', '\r\n', '\n', '=\r\n', ' ', '=4', '==')),
        )
        .map(([x, extra]) => Buffer.concat([x, b(extra.join(''))])),
      mutated(
        [encodeBase64Lines(b('some content \xe9')), encodeQuotedPrintable(b('a=b \r\n\xe9\r'))],
        [b('='), b('\r\n'), b('-'), b('_')],
      ),
    );
    const cte = fc.constantFrom('base64', 'quoted-printable', 'BASE64', '7bit', 'x-uuencode', '');
    fuzz(t, 'mime/transfer-decodings', runs, [junk, bytesArb(400), cte], (x, content, name) => {
      const b64 = decodeBase64(x);
      assert.ok(b64.length <= Math.floor((x.length * 3) / 4));
      assert.ok(decodeQuotedPrintable(x).length <= x.length);
      onlyMimeErrors(() => decodeTransferEncoding(x, name));
      assert.ok(decodeBase64(encodeBase64Lines(content)).equals(content));
      const qp = encodeQuotedPrintable(content);
      assert.ok(isSevenBit(qp), 'QP output is 7-bit');
      assert.ok(decodeQuotedPrintable(qp).equals(content), 'QP round trip');
    });
  });

  test('canonicalize: CRLF only, idempotent, equal to the obvious model', (t) => {
    const runs = fuzzRuns(100_000, 1500);
    const text = fc
      .array(
        fc.oneof(fc.constantFrom('\r', '\n', '\r\n', '\n\r', 'a'), fc.string({ maxLength: 5 })),
      )
      .map((ps) => b(ps.join('')));
    fuzz(t, 'mime/canonicalize', runs, [fc.oneof(text, bytesArb(300))], (x) => {
      const c = canonicalize(x);
      assert.equal(c.toString('latin1'), x.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'));
      assert.equal(canonicalize(c), c, 'the same Buffer once canonical');
    });
  });
});
