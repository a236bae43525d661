import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  base64LinePieces,
  base64LinesLength,
  canonicalize,
  decodeBase64,
  decodeQuotedPrintable,
  decodeTransferEncoding,
  encodeBase64Lines,
  encodeQuotedPrintable,
  hasEightBitLabel,
  isSevenBit,
  MimeError,
} from '../../src/mime/index.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Random bytes biased toward what makes encoders fail: line breaks, blanks, '=', '.', "From ". */
const tricky = fc
  .array(
    fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc
        .constantFrom(
          '\r\n',
          '\r',
          '\n',
          ' ',
          '\t',
          '=',
          '.',
          'From ',
          ' \r\n',
          '=\r\n',
          'x'.repeat(80),
        )
        .map(b),
    ),
    { maxLength: 30 },
  )
  .map((chunks) => Buffer.concat(chunks.map((c) => Buffer.from(c))));

function assertLines(encoded: Buffer, max: number): void {
  for (const line of encoded.toString('latin1').split('\r\n')) {
    assert.ok(line.length <= max, `line of ${line.length}: ${JSON.stringify(line)}`);
  }
}

describe('canonicalize', () => {
  test('bare LF and bare CR become CRLF; CRLF stays', () => {
    assert.equal(
      canonicalize(b('a\nb\rc\r\nd\r\r\n\n')).toString(),
      'a\r\nb\r\nc\r\nd\r\n\r\n\r\n',
    );
    assert.equal(canonicalize(b('\r')).toString(), '\r\n');
    assert.equal(canonicalize(b('\n')).toString(), '\r\n');
  });

  test('returns the same Buffer when already canonical', () => {
    const input = b('a\r\nb\r\n');
    assert.equal(canonicalize(input), input);
    const empty = Buffer.alloc(0);
    assert.equal(canonicalize(empty), empty);
  });

  test('property: result is canonical, idempotent, and equal after removing CRs', () => {
    fc.assert(
      fc.property(tricky, (x) => {
        const c = canonicalize(x);
        assert.equal(canonicalize(c), c);
        assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(c.toString('latin1')));
        const strip = (buf: Buffer): string => buf.toString('latin1').replace(/\r\n|\r|\n/g, '|');
        assert.equal(strip(c), strip(x));
      }),
      { numRuns: 500 },
    );
  });
});

describe('base64', () => {
  test('76-character lines ended by CRLF', () => {
    const data = Buffer.alloc(200, 0xab);
    const enc = encodeBase64Lines(data);
    const lines = enc.toString().split('\r\n');
    assert.equal(lines.pop(), '');
    assert.deepEqual(
      lines.map((l) => l.length),
      [76, 76, 76, 40],
    );
    assert.deepEqual(decodeBase64(enc), data);
    assert.equal(encodeBase64Lines(Buffer.alloc(0)).length, 0);
  });

  test('across the internal chunk size', () => {
    const data = Buffer.alloc(57 * 1024 * 2 + 5);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    const enc = encodeBase64Lines(data);
    assert.equal(enc.toString().replaceAll('\r\n', ''), data.toString('base64'));
    assertLines(enc, 76);
    assert.equal(enc.length, base64LinesLength(data.length));
  });

  test('decoding ignores characters outside the alphabet and stops at padding', () => {
    assert.equal(decodeBase64(b(' SGVs\r\nbG8g\tV29y*bGQ=\r\n')).toString(), 'Hello World');
    assert.equal(decodeBase64(b('SGk=garbage')).toString(), 'Hi');
    // base64url characters are not base64: ignored, not decoded.
    assert.equal(decodeBase64(b('SG-_k=')).toString(), 'Hi');
  });

  test('property: decode(encode(x)) == x; output 7-bit with lines of at most 76', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (x) => {
        const data = Buffer.from(x);
        const enc = encodeBase64Lines(data);
        assert.deepEqual(decodeBase64(enc), data);
        assert.ok(isSevenBit(enc));
        assertLines(enc, 76);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('base64LinePieces', () => {
  const LINE_BYTES = 78;

  test('property: the pieces make the lines encodeBase64Lines writes, whole lines each', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 6 }),
        fc.integer({ min: LINE_BYTES, max: 10 * LINE_BYTES + 77 }),
        (parts, pieceBytes) => {
          const pieces = [...base64LinePieces(parts, pieceBytes)];
          const whole = Buffer.concat(parts);
          assert.deepEqual(Buffer.concat(pieces), encodeBase64Lines(whole));
          const perPiece = Math.floor(pieceBytes / LINE_BYTES) * LINE_BYTES;
          for (const [i, piece] of pieces.entries()) {
            assert.ok(piece.length > 0 && piece.length <= pieceBytes);
            // Every piece but the last is the same number of whole lines.
            if (i < pieces.length - 1) assert.equal(piece.length, perPiece);
          }
          assert.equal(pieces.length, Math.ceil(whole.length / ((perPiece / LINE_BYTES) * 57)));
        },
      ),
      { numRuns: 500 },
    );
  });

  test('each piece owns its ArrayBuffer, even a small one (transferable without a copy)', () => {
    const parts = [Buffer.alloc(95_000, 1), Buffer.alloc(770, 2)]; // two pieces of 47 880 octets and 10 over
    const pieces = [...base64LinePieces(parts, 64 * 1024)];
    assert.ok(pieces.length >= 3);
    // The last is 100 bytes: a pooled Buffer would share the pool's 8 KiB ArrayBuffer.
    assert.ok(pieces.at(-1)!.length < 4096);
    for (const p of pieces) {
      assert.equal(p.byteOffset, 0);
      assert.equal(p.buffer.byteLength, p.length);
    }
  });

  test('nothing is encoded before a piece is asked for', () => {
    const part = Buffer.alloc(57 * 3, 7);
    const pieces = base64LinePieces([part], LINE_BYTES);
    assert.equal(pieces.next().value?.toString(), `${part.subarray(0, 57).toString('base64')}\r\n`);
    // Changed after the first piece was written: the later pieces see the change.
    part.fill(9, 57);
    assert.equal(
      pieces.next().value?.toString(),
      `${part.subarray(57, 114).toString('base64')}\r\n`,
    );
  });

  test('a piece smaller than one line is refused', () => {
    assert.throws(() => [...base64LinePieces([Buffer.alloc(10)], 77)], RangeError);
  });
});

describe('quoted-printable', () => {
  test('encodes =, 8-bit, controls, trailing blanks, leading dot and From', () => {
    assert.equal(encodeQuotedPrintable(b('a=b\xe9\x00')).toString(), 'a=3Db=E9=00');
    assert.equal(encodeQuotedPrintable(b('end \r\nx\t')).toString(), 'end=20\r\nx=09');
    assert.equal(
      encodeQuotedPrintable(b('.\r\nFrom me\r\nFrom\r\n a.b')).toString(),
      '=2E\r\n=46rom me\r\nFrom\r\n a.b',
    );
    assert.equal(encodeQuotedPrintable(b('a\nb\rc')).toString(), 'a=0Ab=0Dc');
  });

  test('soft breaks keep lines at most 76 and never split an escape', () => {
    const enc = encodeQuotedPrintable(Buffer.alloc(100, 0xe9)).toString();
    for (const line of enc.split('\r\n')) {
      assert.ok(line.length <= 76);
      assert.match(line, /^(=E9)+=?$/);
    }
    const text = encodeQuotedPrintable(b('x'.repeat(200)))
      .toString()
      .split('\r\n');
    assert.deepEqual(
      text.map((l) => l.length),
      [76, 76, 50],
    );
  });

  test('a leading dot or From after a soft break is encoded too', () => {
    const enc = encodeQuotedPrintable(b(`${'x'.repeat(75)}.${'y'.repeat(72)}From z`)).toString();
    assert.ok(enc.includes('=\r\n=2E'));
    assert.ok(enc.includes('=\r\n=46rom z'));
  });

  test('decoding: soft breaks, trailing blanks, lower-case hex, invalid escapes, LF breaks', () => {
    assert.equal(
      decodeQuotedPrintable(b('a=\r\nb  \r\nc=3d=3D=ZZ=4\r\nd= \t\r\ne')).toString('latin1'),
      'ab\r\nc===ZZ=4\r\nde',
    );
    assert.equal(decodeQuotedPrintable(b('x=\ny\nz')).toString(), 'xy\nz');
    assert.equal(decodeQuotedPrintable(b('=E9')).toString('latin1'), '\xe9');
    assert.equal(decodeQuotedPrintable(b('trailing=')).toString(), 'trailing');
  });

  test('property: decode(encode(x)) == x; output 7-bit with lines of at most 76', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          tricky,
          fc.uint8Array({ maxLength: 1000 }).map((x) => Buffer.from(x)),
        ),
        (x) => {
          const enc = encodeQuotedPrintable(x);
          assert.deepEqual(decodeQuotedPrintable(enc), x);
          assert.ok(isSevenBit(enc), JSON.stringify(enc.toString('latin1')));
          assertLines(enc, 76);
          for (const line of enc.toString('latin1').split('\r\n')) {
            assert.ok(!/[ \t]$/.test(line), 'trailing blank');
            assert.ok(!line.startsWith('.') && !line.startsWith('From '), 'unsafe line start');
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('decodeTransferEncoding and isSevenBit', () => {
  test('identity for 7bit/8bit/binary, decoders for the rest, unknown is malformed', () => {
    const body = b('SGk=');
    assert.equal(decodeTransferEncoding(body, '7bit'), body);
    assert.equal(decodeTransferEncoding(body, 'BINARY'), body);
    assert.equal(decodeTransferEncoding(body, 'Base64').toString(), 'Hi');
    assert.equal(decodeTransferEncoding(b('a=3Db'), 'quoted-printable').toString(), 'a=b');
    assert.throws(
      () => decodeTransferEncoding(body, 'x-uuencode'),
      (e: unknown) => e instanceof MimeError && e.code === 'malformed',
    );
  });

  test('isSevenBit: 8-bit, NUL, bare CR/LF, long lines', () => {
    assert.equal(isSevenBit(b('plain\r\ntext\r\n')), true);
    assert.equal(isSevenBit(Buffer.alloc(0)), true);
    assert.equal(isSevenBit(b('caf\xe9')), false);
    assert.equal(isSevenBit(b('a\x00b')), false);
    assert.equal(isSevenBit(b('a\nb')), false);
    assert.equal(isSevenBit(b('a\rb')), false);
    assert.equal(isSevenBit(b(`${'x'.repeat(998)}\r\n${'y'.repeat(998)}`)), true);
    assert.equal(isSevenBit(b(`${'x'.repeat(999)}\r\n`)), false);
    assert.equal(isSevenBit(b(`ok\r\n${'y'.repeat(999)}`)), false);
  });

  test('hasEightBitLabel agrees with the regular expression, whatever the window size', () => {
    const label = /content-transfer-encoding:\s*(8bit|binary)/i;
    const piece = fc.constantFrom(
      'Content-Transfer-Encoding:',
      'content-TRANSFER-encoding:',
      'Content-Transfer-Encoding',
      ' ',
      '\t',
      '\r\n',
      '8bit',
      '8BIT',
      'Binary',
      'base64',
      '7bit',
      'x',
      'binar',
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), fc.integer({ min: 1, max: 80 }), (p, w) => {
        const bytes = b(p.join(''));
        assert.equal(hasEightBitLabel(bytes, w), label.test(bytes.toString('latin1')), p.join(''));
      }),
      { numRuns: 3000 },
    );
    assert.equal(hasEightBitLabel(b('A: b\r\nContent-Transfer-Encoding: 8bit\r\n\r\n')), true);
    assert.equal(hasEightBitLabel(b('Content-Transfer-Encoding: quoted-printable')), false);
  });

  test('isSevenBit agrees with a byte-by-byte reading of RFC 2045 2.7', () => {
    const reference = (bytes: Buffer): boolean => {
      let lineStart = 0;
      for (let i = 0; i < bytes.length; i++) {
        const c = bytes[i]!;
        if (c >= 0x80 || c === 0) return false;
        if (c === 0x0a) return false;
        if (c === 0x0d) {
          if (bytes[i + 1] !== 0x0a || i - lineStart > 998) return false;
          lineStart = i + 2;
          i++;
        }
      }
      return bytes.length - lineStart <= 998;
    };
    const lineOf = fc.oneof(
      fc.string({
        unit: fc.constantFrom('a', ' ', '\r', '\n', '\r\n', '\0', '\x80'),
        maxLength: 30,
      }),
      fc.nat({ max: 1200 }).map((n) => 'x'.repeat(n)),
    );
    fc.assert(
      fc.property(fc.array(lineOf, { maxLength: 8 }), fc.boolean(), (lines, crlf) => {
        const bytes = b(lines.join(crlf ? '\r\n' : '\n'));
        assert.equal(isSevenBit(bytes), reference(bytes), JSON.stringify(bytes.toString('latin1')));
      }),
      { numRuns: 2000 },
    );
  });
});
