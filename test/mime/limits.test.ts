import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  DEFAULT_MIME_LIMITS,
  decodeTransferEncoding,
  encodeBase64Lines,
  isSevenBit,
  type MimeEntity,
  MimeError,
  type MimeErrorCode,
  parseEntity,
  splitMessage,
  toSevenBitEntity,
} from '../../src/mime/index.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const fails = (code: MimeErrorCode) => (e: unknown) => e instanceof MimeError && e.code === code;

/** `levels` multiparts inside one another; the innermost leaf sits at depth `levels`. */
function nestedMultipart(levels: number): Buffer {
  let inner = 'Content-Type: text/plain\r\n\r\nleaf';
  for (let i = levels - 1; i >= 0; i--) {
    inner = `Content-Type: multipart/mixed; boundary=b${i}\r\n\r\n--b${i}\r\n${inner}\r\n--b${i}--`;
  }
  return b(inner);
}

/** `levels` message/rfc822 wrappers; the innermost message sits at depth `levels`. */
function nestedMessage(levels: number): Buffer {
  return b(`${'Content-Type: message/rfc822\r\n\r\n'.repeat(levels)}Subject: x\r\n\r\nleaf`);
}

function depthOf(e: MimeEntity): number {
  let depth = 0;
  for (let node = e; node.parts?.[0] !== undefined; node = node.parts[0]) depth++;
  return depth;
}

/** A multipart with `n` tiny parts. */
function manyParts(n: number): Buffer {
  return b(
    `Content-Type: multipart/mixed; boundary=p\r\n\r\n${'--p\r\n\r\nx\r\n'.repeat(n)}--p--\r\n`,
  );
}

/** A header block with `n` fields. */
function manyHeaders(n: number): Buffer {
  return b(`${'X: y\r\n'.repeat(n)}\r\nbody`);
}

describe('limits', () => {
  test('defaults', () => {
    assert.deepEqual(
      { ...DEFAULT_MIME_LIMITS },
      {
        maxDepth: 32,
        maxParts: 1000,
        maxHeaders: 1000,
        maxHeaderBytes: 1024 * 1024,
        maxHeaderLineLength: 64 * 1024,
        maxLineLength: 100_000,
        maxSize: 64 * 1024 * 1024,
      },
    );
  });

  test('depth: 32 levels parse, 33 are too deep (multipart and message/rfc822)', () => {
    assert.equal(depthOf(parseEntity(nestedMultipart(32))), 32);
    assert.throws(() => parseEntity(nestedMultipart(33)), fails('too-deep'));
    assert.equal(depthOf(parseEntity(nestedMessage(32))), 32);
    assert.throws(() => parseEntity(nestedMessage(33)), fails('too-deep'));
    assert.equal(depthOf(parseEntity(nestedMultipart(3), { maxDepth: 3 })), 3);
    assert.throws(() => parseEntity(nestedMultipart(4), { maxDepth: 3 }), fails('too-deep'));
  });

  test('MIME nested 1000 deep fails with too-deep, not a stack overflow', () => {
    assert.throws(() => parseEntity(nestedMultipart(1000)), fails('too-deep'));
    assert.throws(() => parseEntity(nestedMessage(1000)), fails('too-deep'));
    assert.throws(() => toSevenBitEntity(nestedMultipart(1000)), fails('too-deep'));
  });

  test('no recursion: 100000 levels parse when the limit allows it', () => {
    const input = nestedMessage(100_000);
    const limits = { maxDepth: 200_000, maxParts: 200_000 };
    assert.equal(depthOf(parseEntity(input, limits)), 100_000);
    assert.equal(toSevenBitEntity(input, limits), input);
  });

  test('parts: 1000 parse, 1001 are too many; nested parts count toward the same total', () => {
    assert.equal(parseEntity(manyParts(1000)).parts?.length, 1000);
    assert.throws(() => parseEntity(manyParts(1001)), fails('too-many-parts'));
    assert.equal(parseEntity(manyParts(5), { maxParts: 5 }).parts?.length, 5);
    assert.throws(() => parseEntity(manyParts(6), { maxParts: 5 }), fails('too-many-parts'));
    // 1 multipart part holding 3 leaves = 4 parts.
    const nested = b(
      'Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n' +
        'Content-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\na\r\n--i\r\n\r\nb\r\n--i\r\n\r\nc\r\n--i--\r\n--o--\r\n',
    );
    assert.equal(parseEntity(nested, { maxParts: 4 }).parts?.[0]?.parts?.length, 3);
    assert.throws(() => parseEntity(nested, { maxParts: 3 }), fails('too-many-parts'));
    assert.throws(() => parseEntity(nestedMessage(2), { maxParts: 1 }), fails('too-many-parts'));
  });

  test('headers: 1000 fields per entity parse, 1001 are too many', () => {
    assert.equal(parseEntity(manyHeaders(1000)).headers.length, 1000);
    assert.throws(() => parseEntity(manyHeaders(1001)), fails('too-many-headers'));
    assert.throws(() => splitMessage(manyHeaders(1001)), fails('too-many-headers'));
    const part = b(
      `Content-Type: multipart/mixed; boundary=p\r\n\r\n--p\r\n${'X: y\r\n'.repeat(11)}\r\nx\r\n--p--`,
    );
    assert.throws(() => parseEntity(part, { maxHeaders: 10 }), fails('too-many-headers'));
    assert.equal(parseEntity(part, { maxHeaders: 11 }).parts?.[0]?.headers.length, 11);
  });

  test('header block bytes: exactly 1 MiB parses, one byte more is too large', () => {
    const field = (chars: number): string => `X: ${'v'.repeat(chars - 3)}\r\n`;
    const exact = b(`${field(65534).repeat(16)}\r\nbody`);
    assert.equal(exact.indexOf('\r\n\r\n') + 2, 1024 * 1024);
    assert.equal(parseEntity(exact).headers.length, 16);
    const over = b(`${field(65534).repeat(15)}${field(65535)}\r\nbody`);
    assert.throws(() => parseEntity(over), fails('too-large'));
    assert.equal(splitMessage(b('A: 1\r\nB: 2\r\n\r\n'), { maxHeaderBytes: 12 }).headers.length, 2);
    assert.throws(
      () => splitMessage(b('A: 1\r\nB: 23\r\n\r\n'), { maxHeaderBytes: 12 }),
      fails('too-large'),
    );
    // No blank line: the whole input is header block.
    assert.equal(splitMessage(b('A: 1\r\nB: 23'), { maxHeaderBytes: 11 }).headers.length, 2);
    assert.throws(
      () => splitMessage(b('A: 1\r\nB: 23'), { maxHeaderBytes: 10 }),
      fails('too-large'),
    );
  });

  test('header field length: 64 KiB unfolded parses, one byte more is too long (folded too)', () => {
    const max = 64 * 1024;
    const field = (n: number): string => `X: ${'v'.repeat(n - 3)}`;
    assert.equal(splitMessage(b(`${field(max)}\r\n\r\n`)).headers[0]?.raw.length, max);
    assert.throws(() => splitMessage(b(`${field(max + 1)}\r\n\r\n`)), fails('line-too-long'));
    const folded = (n: number): string => `X: ${'v'.repeat(1000)}\r\n ${'w'.repeat(n - 1004)}`;
    assert.equal(splitMessage(b(`${folded(max)}\r\n\r\n`)).headers.length, 1);
    assert.throws(() => splitMessage(b(`${folded(max + 1)}\r\n\r\n`)), fails('line-too-long'));
  });

  test('body line length: 100000 parses, 100001 is too long; binary bodies are exempt', () => {
    const leaf = (n: number, cte = '7bit'): Buffer =>
      b(`Content-Transfer-Encoding: ${cte}\r\n\r\nshort\r\n${'x'.repeat(n)}\r\nshort\r\n`);
    assert.equal(parseEntity(leaf(100_000)).body.length, 100_016);
    assert.throws(() => parseEntity(leaf(100_001)), fails('line-too-long'));
    assert.equal(parseEntity(leaf(200_000, 'binary')).transferEncoding, 'binary');
    const lf = b(`\n${'x'.repeat(10)}\n`);
    assert.equal(parseEntity(lf, { maxLineLength: 10 }).body.length, 11);
    assert.throws(() => parseEntity(lf, { maxLineLength: 9 }), fails('line-too-long'));
    const preamble = b(
      `Content-Type: multipart/mixed; boundary=p\r\n\r\n${'x'.repeat(11)}\r\n--p\r\n\r\na\r\n--p--\r\n`,
    );
    assert.equal(parseEntity(preamble, { maxLineLength: 11 }).preamble?.length, 11);
    assert.throws(() => parseEntity(preamble, { maxLineLength: 10 }), fails('line-too-long'));
  });

  test('size: exactly 64 MiB parses, one byte more is too large', () => {
    const size = 64 * 1024 * 1024;
    const line = `${'x'.repeat(1022)}\r\n`;
    const exact = Buffer.alloc(size, line);
    exact.write('X: y\r\n\r\n', 0, 'latin1');
    assert.equal(parseEntity(exact).body.length, size - 8);
    const over = Buffer.alloc(size + 1, line);
    over.write('X: y\r\n\r\n', 0, 'latin1');
    assert.throws(() => parseEntity(over), fails('too-large'));
    assert.throws(() => splitMessage(over), fails('too-large'));
    assert.equal(parseEntity(b('\r\n12345678'), { maxSize: 10 }).body.length, 8);
    assert.throws(() => parseEntity(b('\r\n123456789'), { maxSize: 10 }), fails('too-large'));
  });

  test('a 25 MB message parses correctly, and its binary twin becomes 7-bit', () => {
    const attachment = randomBytes(25 * 1024 * 1024);
    const head =
      'Content-Type: multipart/mixed; boundary="=_big"\r\n\r\n--=_big\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--=_big\r\n';
    const input = Buffer.concat([
      b(
        `${head}Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n`,
      ),
      encodeBase64Lines(attachment),
      b('--=_big--\r\n'),
    ]);
    assert.ok(input.length > 25 * 1024 * 1024);
    const e = parseEntity(input);
    assert.equal(e.parts?.length, 2);
    assert.equal(e.parts![0]!.body.toString(), 'see attached');
    assert.deepEqual(decodeTransferEncoding(e.parts![1]!.body, 'base64'), attachment);

    const binary = Buffer.concat([
      b(
        `${head}Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n`,
      ),
      attachment,
      b('\r\n--=_big--\r\n'),
    ]);
    const out = toSevenBitEntity(binary);
    assert.ok(isSevenBit(out));
    const part = parseEntity(out).parts![1]!;
    assert.equal(part.transferEncoding, 'base64');
    assert.deepEqual(decodeTransferEncoding(part.body, 'base64'), attachment);
  });
});
