import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  canonicalize,
  decodeTransferEncoding,
  encodeQuotedPrintable,
  findHeader,
  headerValue,
  isSevenBit,
  MimeError,
  parseEntity,
  toSevenBitEntity,
} from '../../src/mime/index.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const cteOf = (headers: Parameters<typeof findHeader>[0]): string | undefined => {
  const f = findHeader(headers, 'content-transfer-encoding');
  return f && headerValue(f);
};

describe('toSevenBitEntity', () => {
  test('8-bit text becomes quoted-printable; other headers keep their bytes', () => {
    const input = Buffer.concat([
      b(
        'Content-Type: text/plain;\n charset=utf-8\nContent-Transfer-Encoding: 8bit\nX-Keep:  odd  spacing\n\n',
      ),
      Buffer.from('Gr\u00fc\u00dfe\n.\nFrom here\n', 'utf8'),
    ]);
    const out = toSevenBitEntity(input);
    assert.ok(isSevenBit(out), out.toString('latin1'));
    const e = parseEntity(out);
    assert.equal(e.transferEncoding, 'quoted-printable');
    assert.equal(e.headers[0]!.raw.toString(), 'Content-Type: text/plain;\r\n charset=utf-8');
    assert.equal(e.headers[2]!.raw.toString(), 'X-Keep:  odd  spacing');
    assert.equal(e.headers.length, 3);
    assert.deepEqual(
      decodeTransferEncoding(e.body, e.transferEncoding),
      Buffer.from('Gr\u00fc\u00dfe\r\n.\r\nFrom here\r\n', 'utf8'),
    );
    assert.ok(e.body.toString().includes('=2E\r\n=46rom here'));
  });

  test('a binary attachment becomes base64 of its exact octets (no line-end conversion)', () => {
    const data = Buffer.from([0x00, 0x0a, 0xff, 0x0d, 0x41, 0x0a, 0x0d, 0x0a, 0x80]);
    const input = Buffer.concat([
      b('Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'),
      data,
    ]);
    const e = parseEntity(toSevenBitEntity(input));
    assert.equal(e.transferEncoding, 'base64');
    assert.equal(
      findHeader(e.headers, 'content-transfer-encoding')?.raw.toString(),
      'Content-Transfer-Encoding: base64',
    );
    assert.deepEqual(decodeTransferEncoding(e.body, 'base64'), data);
  });

  test('a leaf without Content-Transfer-Encoding gets one appended', () => {
    const e = parseEntity(toSevenBitEntity(b('Content-Type: image/png\r\n\r\n\x89PNG\r\n')));
    assert.equal(e.headers.length, 2);
    assert.equal(cteOf(e.headers), 'base64');
    assert.deepEqual(decodeTransferEncoding(e.body, 'base64'), b('\x89PNG\r\n'));
  });

  test('mixed multipart: only dirty leaves change; boundary, preamble, epilogue, padding stay', () => {
    const clean = 'Content-Type: text/plain\r\n\r\nclean text\r\n';
    const input = b(
      'Content-Type: multipart/mixed; boundary="mix"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n' +
        'preamble\r\n--mix  \r\n' +
        clean +
        '\r\n--mix\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9\r\n' +
        '--mix\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: 7bit\r\n\r\n%PDF\xe2\xe3\r\n' +
        '--mix--\r\nepilogue\r\n',
    );
    const out = toSevenBitEntity(input);
    assert.ok(isSevenBit(out));
    const e = parseEntity(out);
    assert.equal(e.transferEncoding, '7bit');
    assert.equal(e.boundary, 'mix');
    assert.equal(e.preamble?.toString(), 'preamble');
    assert.equal(e.epilogue?.toString(), 'epilogue\r\n');
    assert.ok(out.toString().includes('\r\n--mix  \r\n'));
    const [p1, p2, p3] = e.parts!;
    assert.equal(p1!.raw.toString(), clean);
    assert.equal(p2!.transferEncoding, 'quoted-printable');
    assert.equal(
      decodeTransferEncoding(p2!.body, p2!.transferEncoding).toString('latin1'),
      'caf\xe9',
    );
    assert.equal(p3!.transferEncoding, 'base64');
    assert.deepEqual(decodeTransferEncoding(p3!.body, 'base64'), b('%PDF\xe2\xe3'));
  });

  test('message/rfc822 is re-encoded inside, never base64-ed itself', () => {
    const input = b(
      'Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n' +
        'Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n' +
        'Subject: fwd\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\nna\xefve\r\n' +
        '--o--\r\n',
    );
    const out = toSevenBitEntity(input);
    assert.ok(isSevenBit(out));
    const rfc822 = parseEntity(out).parts![0]!;
    assert.equal(rfc822.contentType.mediaType, 'message/rfc822');
    assert.equal(rfc822.transferEncoding, '7bit');
    const inner = rfc822.parts![0]!;
    assert.equal(inner.headers[0]!.raw.toString(), 'Subject: fwd');
    assert.equal(inner.transferEncoding, 'quoted-printable');
    assert.equal(
      decodeTransferEncoding(inner.body, 'quoted-printable').toString('latin1'),
      'na\xefve',
    );
  });

  test('labelled 7bit but not: long lines, bare CR; broken base64 and QP are repaired', () => {
    const long = parseEntity(
      toSevenBitEntity(b(`Content-Type: text/plain\r\n\r\n${'a'.repeat(1500)}\r\n`)),
    );
    assert.equal(long.transferEncoding, 'quoted-printable');
    assert.equal(
      decodeTransferEncoding(long.body, long.transferEncoding).toString(),
      `${'a'.repeat(1500)}\r\n`,
    );
    const b64 = parseEntity(
      toSevenBitEntity(
        b(
          `Content-Type: application/x\r\nContent-Transfer-Encoding: base64\r\n\r\n${'QUFB'.repeat(300)}\xff\r\n`,
        ),
      ),
    );
    assert.equal(b64.transferEncoding, 'base64');
    assert.ok(isSevenBit(b64.body));
    assert.equal(decodeTransferEncoding(b64.body, 'base64').toString(), 'AAA'.repeat(300));
    const qp = parseEntity(
      toSevenBitEntity(
        b(
          'Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nx=3D\xe9\r\n',
        ),
      ),
    );
    assert.equal(
      decodeTransferEncoding(qp.body, qp.transferEncoding).toString('latin1'),
      'x=\xe9\r\n',
    );
  });

  test('already-clean input comes back as canonicalize(input), byte for byte', () => {
    const crlf = b(
      'Content-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\n\r\nplain\r\n--a\r\n' +
        'Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>=E9</p>\r\n--a--\r\n',
    );
    assert.equal(toSevenBitEntity(crlf), crlf);
    const lf = b(crlf.toString('latin1').replaceAll('\r\n', '\n'));
    assert.deepEqual(toSevenBitEntity(lf), crlf);
  });

  test('8bit and binary labels on 7-bit content become 7bit; the content keeps its bytes', () => {
    const input = b(
      'Content-Type: multipart/mixed; boundary=m\r\nContent-Transfer-Encoding: binary\r\n\r\n' +
        '--m\r\nContent-Transfer-Encoding: 8BIT\r\n\r\nascii = fine  \r\n' +
        '--m\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\nALSO ASCII\r\n--m--\r\n',
    );
    const out = toSevenBitEntity(input);
    assert.equal(
      out.toString(),
      input
        .toString()
        .replace(/Content-Transfer-Encoding: (binary|8BIT)/g, 'Content-Transfer-Encoding: 7bit'),
    );
  });

  test('8-bit octets in a nested header cannot be fixed: the composite keeps its 8bit label', () => {
    const input = b(
      'Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n' +
        'Subject: caf\xe9\r\nContent-Transfer-Encoding: 8bit\r\n\r\nna\xefve\r\n',
    );
    const e = parseEntity(toSevenBitEntity(input));
    assert.equal(e.transferEncoding, '8bit');
    assert.equal(e.parts![0]!.headers[0]!.raw.toString('latin1'), 'Subject: caf\xe9');
    assert.equal(e.parts![0]!.transferEncoding, 'quoted-printable');
    const preamble = b(
      'Content-Type: multipart/mixed; boundary=p\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xe9\r\n--p\r\n\r\nx\r\n--p--\r\n',
    );
    assert.equal(parseEntity(toSevenBitEntity(preamble)).transferEncoding, '8bit');
  });

  test('LF-only input with 8-bit content comes out all CRLF', () => {
    const out = toSevenBitEntity(
      b(
        'Content-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: text/plain\n\n\xe9t\xe9\n--z\n\nok\n--z--\n',
      ),
    );
    assert.equal(canonicalize(out), out);
    assert.ok(isSevenBit(out));
    assert.deepEqual(
      parseEntity(out).parts!.map((p) => p.transferEncoding),
      ['quoted-printable', '7bit'],
    );
  });

  test('quoted-printable that would start a line with an enclosing boundary falls back to base64', () => {
    // The soft break lands right before "--bb", which would then start a line.
    const text = `${'\xe9'.repeat(25)}--bb`;
    assert.ok(encodeQuotedPrintable(b(text)).toString().includes('=\r\n--bb'));
    const input = b(
      `Content-Type: multipart/mixed; boundary=bb\r\n\r\n--bb\r\nContent-Type: text/plain\r\n\r\n${text}\r\n--bb--\r\n`,
    );
    const part = parseEntity(toSevenBitEntity(input)).parts!;
    assert.equal(part.length, 1);
    assert.equal(part[0]!.transferEncoding, 'base64');
    assert.equal(decodeTransferEncoding(part[0]!.body, 'base64').toString('latin1'), text);
  });

  test('an unknown encoding with 8-bit content cannot be fixed: malformed', () => {
    assert.throws(
      () => toSevenBitEntity(b('Content-Transfer-Encoding: x-uuencode\r\n\r\n\xe9\r\n')),
      (e: unknown) => e instanceof MimeError && e.code === 'malformed',
    );
  });

  test('bare CR that becomes a delimiter once canonical: refused, not silently 8-bit', () => {
    const input = b(
      'Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r--b\r\n\r\n\xe9\r\n--b\r\n\r\nok\r\n--b--\r\n',
    );
    // As given, the 8-bit line is preamble and the only part is "ok".
    const e = parseEntity(input);
    assert.equal(e.parts?.length, 1);
    assert.equal(e.preamble?.toString('latin1'), 'pre\r--b\r\n\r\n\xe9');
    assert.throws(
      () => toSevenBitEntity(input),
      (err: unknown) =>
        err instanceof MimeError && err.code === 'malformed' && /ambiguous/.test(err.message),
    );
  });
});
