import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type MimeEntity, MimeError, parseEntity } from '../../src/mime/index.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const malformed = (e: unknown): boolean => e instanceof MimeError && e.code === 'malformed';

/** Every entity's raw is a view of the input, and raw = headers + blank line + body. */
function assertExactViews(input: Buffer, e: MimeEntity): void {
  assert.equal(e.raw.buffer, input.buffer);
  const at = e.raw.byteOffset - input.byteOffset;
  assert.ok(at >= 0 && at + e.raw.length <= input.length);
  assert.deepEqual(input.subarray(at, at + e.raw.length), e.raw);
  assert.equal(e.body.byteOffset + e.body.length, e.raw.byteOffset + e.raw.length);
  for (const p of e.parts ?? []) assertExactViews(input, p);
}

const signed = b(
  [
    'MIME-Version: 1.0',
    'Content-Type: multipart/signed; protocol="application/pkcs7-signature";',
    ' micalg=sha-256; boundary="----=_sig"',
    '',
    'This is an S/MIME signed message',
    '------=_sig',
    'Content-Type: text/plain',
    '',
    'Hello.',
    '',
    '------=_sig',
    'Content-Type: application/pkcs7-signature; name=smime.p7s',
    'Content-Transfer-Encoding: base64',
    '',
    'MIAGCSqGSIb3DQEHAqCAMIACAQEx',
    '------=_sig--',
    'epilogue',
    '',
  ].join('\r\n'),
);

describe('parseEntity', () => {
  test('multipart/signed: exact bytes of the first part, preamble, epilogue', () => {
    const e = parseEntity(signed);
    assert.equal(e.contentType.mediaType, 'multipart/signed');
    assert.equal(e.boundary, '----=_sig');
    assert.equal(e.parts?.length, 2);
    assert.equal(e.parts![0]!.raw.toString(), 'Content-Type: text/plain\r\n\r\nHello.\r\n');
    assert.equal(e.parts![0]!.body.toString(), 'Hello.\r\n');
    assert.equal(e.parts![1]!.contentType.mediaType, 'application/pkcs7-signature');
    assert.equal(e.parts![1]!.transferEncoding, 'base64');
    assert.equal(e.parts![1]!.body.toString(), 'MIAGCSqGSIb3DQEHAqCAMIACAQEx');
    assert.equal(e.preamble?.toString(), 'This is an S/MIME signed message');
    assert.equal(e.epilogue?.toString(), 'epilogue\r\n');
    assert.equal(e.raw, signed);
    assertExactViews(signed, e);
  });

  test('single-part: defaults when headers are missing', () => {
    const e = parseEntity(b('Subject: x\r\n\r\nbody'));
    assert.equal(e.contentType.mediaType, 'text/plain');
    assert.equal(e.contentType.params.get('charset'), 'us-ascii');
    assert.equal(e.transferEncoding, '7bit');
    assert.equal(e.parts, undefined);
    assert.equal(e.body.toString(), 'body');
  });

  test('transport padding after delimiters; lines that only start with the boundary are content', () => {
    const input = b(
      'Content-Type: multipart/mixed; boundary=xyz\r\n\r\n' +
        '--xyz \t\r\n\r\none\r\n--xyzz\r\n--xyz-\r\n' +
        '--xyz\t\r\n\r\ntwo\r\n--xyz-- \r\n',
    );
    const e = parseEntity(input);
    assert.equal(e.parts?.length, 2);
    assert.equal(e.parts![0]!.body.toString(), 'one\r\n--xyzz\r\n--xyz-');
    assert.equal(e.parts![1]!.body.toString(), 'two');
    assert.equal(e.preamble, undefined);
    assert.equal(e.epilogue?.length, 0);
    assertExactViews(input, e);
  });

  test('nested multiparts and message/rfc822', () => {
    const inner =
      'Content-Type: multipart/alternative; boundary="in"\r\n\r\n--in\r\n\r\nplain\r\n--in\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--in--';
    const message = `Subject: forwarded\r\nContent-Type: multipart/mixed; boundary=fw\r\n\r\n--fw\r\n\r\ninside\r\n--fw--\r\n`;
    const input = b(
      `Content-Type: multipart/mixed; boundary="out"\r\n\r\n--out\r\n${inner}\r\n--out\r\n` +
        `Content-Type: message/rfc822\r\n\r\n${message}\r\n--out--\r\n`,
    );
    const e = parseEntity(input);
    const [alt, rfc822] = e.parts!;
    assert.equal(alt!.contentType.mediaType, 'multipart/alternative');
    assert.equal(alt!.raw.toString(), inner);
    assert.deepEqual(
      alt!.parts!.map((p) => p.body.toString()),
      ['plain', '<p>html</p>'],
    );
    assert.equal(rfc822!.contentType.mediaType, 'message/rfc822');
    assert.equal(rfc822!.parts?.length, 1);
    const enclosed = rfc822!.parts![0]!;
    assert.equal(enclosed.raw.toString(), message);
    assert.equal(enclosed.parts![0]!.body.toString(), 'inside');
    assertExactViews(input, e);
  });

  test('a base64-encoded message/rfc822 (illegal) stays a leaf', () => {
    const e = parseEntity(
      b(
        'Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA0KDQpib2R5\r\n',
      ),
    );
    assert.equal(e.parts, undefined);
    assert.equal(e.transferEncoding, 'base64');
  });

  test('multipart/digest parts default to message/rfc822', () => {
    const input = b(
      'Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\nfirst\r\n' +
        '--d\r\nContent-Type: text/plain\r\n\r\nnote\r\n--d--\r\n',
    );
    const e = parseEntity(input);
    assert.equal(e.parts![0]!.contentType.mediaType, 'message/rfc822');
    assert.equal(e.parts![0]!.parts![0]!.body.toString(), 'first');
    assert.equal(e.parts![1]!.contentType.mediaType, 'text/plain');
    assertExactViews(input, e);
  });

  test('LF-only input', () => {
    const input = b(signed.toString('latin1').replaceAll('\r\n', '\n'));
    const e = parseEntity(input);
    assert.equal(e.parts?.length, 2);
    assert.equal(e.parts![0]!.raw.toString(), 'Content-Type: text/plain\n\nHello.\n');
    assert.equal(e.parts![1]!.body.toString(), 'MIAGCSqGSIb3DQEHAqCAMIACAQEx');
    assert.equal(e.preamble?.toString(), 'This is an S/MIME signed message');
    assertExactViews(input, e);
  });

  test('missing close delimiter: the last part runs to the end', () => {
    const input = b(
      'Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\na\r\n--q\r\n\r\nb\r\nno end\r\n',
    );
    const e = parseEntity(input);
    assert.deepEqual(
      e.parts!.map((p) => p.body.toString()),
      ['a', 'b\r\nno end\r\n'],
    );
    assert.equal(e.epilogue, undefined);
    assertExactViews(input, e);
  });

  test('empty parts, empty preamble, close delimiter at end without line break', () => {
    const input = b(
      'Content-Type: multipart/mixed; boundary=q\r\n\r\n\r\n--q\r\n--q\r\n\r\nx\r\n--q--',
    );
    const e = parseEntity(input);
    assert.equal(e.preamble?.length, 0);
    assert.equal(e.parts?.length, 2);
    assert.equal(e.parts![0]!.raw.length, 0);
    assert.equal(e.parts![1]!.body.toString(), 'x');
    assert.equal(e.epilogue, undefined);
  });

  test('only a close delimiter: zero parts', () => {
    const e = parseEntity(b('Content-Type: multipart/mixed; boundary=q\r\n\r\n--q--\r\n'));
    assert.deepEqual(e.parts, []);
  });

  test('no boundary parameter, or no delimiter at all: malformed', () => {
    assert.throws(
      () => parseEntity(b('Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\na\r\n--x--\r\n')),
      malformed,
    );
    assert.throws(
      () => parseEntity(b('Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n')),
      malformed,
    );
    assert.throws(
      () => parseEntity(b('Content-Type: multipart/mixed; boundary=x\r\n\r\njust text\r\n')),
      malformed,
    );
    assert.throws(
      () => parseEntity(b('Content-Type: multipart/mixed; boundary=x\r\n\r\n --x\r\n')),
      malformed,
    );
  });

  test('a malformed nested part fails the whole parse with MimeError', () => {
    assert.throws(
      () =>
        parseEntity(
          b(
            'Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nnot a header\r\n\r\n--x--\r\n',
          ),
        ),
      malformed,
    );
  });

  test('boundary is matched byte for byte (case-sensitive, 8-bit)', () => {
    const input = Buffer.concat([
      b(
        'Content-Type: multipart/mixed; boundary="B\xe9"\r\n\r\n--b\xe9\r\n--B\xe9\r\n\r\nx\r\n--B\xe9--\r\n',
      ),
    ]);
    const e = parseEntity(input);
    assert.equal(e.preamble?.toString('latin1'), '--b\xe9');
    assert.equal(e.parts![0]!.body.toString(), 'x');
  });
});
