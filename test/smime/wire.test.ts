import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { base64LinesLength } from '../../src/mime/index.js';
import { encodeBase64LinesAfter } from '../../src/smime/wire.js';

/** What the output must be: the prefix, then base64 of all parts in 76-character CRLF lines. */
function expected(prefix: Buffer, parts: readonly Buffer[]): Buffer {
  const text = Buffer.concat(parts).toString('base64');
  const lines = text.match(/.{1,76}/g) ?? [];
  return Buffer.concat([prefix, Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'latin1')]);
}

describe('encodeBase64LinesAfter', () => {
  test('parts split anywhere give the lines of their concatenation', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 20 }),
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 6 }),
        (prefix, raw) => {
          const parts = raw.map((p) => Buffer.from(p));
          const out = encodeBase64LinesAfter(Buffer.from(prefix), parts);
          assert.deepEqual(out, expected(Buffer.from(prefix), parts));
        },
      ),
      { numRuns: 1000 },
    );
  });

  test('a part larger than one encoding chunk, after an odd-sized part', () => {
    const big = Buffer.alloc(57 * 1024 * 3 + 11);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const parts = [Buffer.from('abcde'), big, Buffer.from('z')];
    const out = encodeBase64LinesAfter(Buffer.from('H: v\r\n\r\n'), parts);
    assert.deepEqual(out, expected(Buffer.from('H: v\r\n\r\n'), parts));
    assert.equal(out.length, 8 + base64LinesLength(big.length + 6));
  });
});
