import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  buildEntity,
  buildMultipart,
  formatContentType,
  generateBoundary,
  headerValue,
  MimeError,
  makeHeader,
  parseContentType,
  parseEntity,
} from '../../src/mime/index.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const malformed = (e: unknown): boolean => e instanceof MimeError && e.code === 'malformed';

describe('build', () => {
  test('generateBoundary: random, valid, contains =_', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const boundary = generateBoundary();
      assert.ok(boundary.includes('=_'));
      assert.match(boundary, /^[0-9A-Za-z'()+_,\-./:=?]{1,70}$/);
      seen.add(boundary);
    }
    assert.equal(seen.size, 100);
  });

  test('formatContentType quotes what needs quoting and parses back', () => {
    const value = formatContentType('application/pkcs7-mime', {
      'smime-type': 'enveloped-data',
      name: 'smime.p7m',
      weird: 'a "b" \\ c',
      empty: '',
    });
    assert.equal(
      value,
      'application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m; weird="a \\"b\\" \\\\ c"; empty=""',
    );
    const ct = parseContentType(value);
    assert.equal(ct.params.get('weird'), 'a "b" \\ c');
    assert.equal(ct.params.get('empty'), '');
    assert.equal(
      formatContentType('text/plain', new Map([['charset', 'utf-8']])),
      'text/plain; charset=utf-8',
    );
    assert.throws(() => formatContentType('text/plain', { x: 'a\r\nb' }), malformed);
    assert.throws(() => formatContentType('text/plain', { x: '\u00e9' }), malformed);
    assert.throws(() => formatContentType('text/plain', { 'bad name': 'x' }), malformed);
    assert.throws(() => formatContentType('text', {}), malformed);
  });

  test('buildEntity: headers, blank line, body', () => {
    const out = buildEntity([makeHeader('Content-Type', 'text/plain')], b('hi\r\n'));
    assert.equal(out.toString(), 'Content-Type: text/plain\r\n\r\nhi\r\n');
    assert.equal(buildEntity([], b('x')).toString(), '\r\nx');
  });

  test('buildMultipart: parts parse back byte for byte (multipart/signed shape)', () => {
    const signedPart = b('Content-Type: text/plain\r\n\r\nsigned text\r\n');
    const signature = b(
      'Content-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\nMIAG\r\n',
    );
    const out = buildMultipart(
      [makeHeader('MIME-Version', '1.0')],
      'signed',
      { protocol: 'application/pkcs7-signature', micalg: 'sha-256' },
      [signedPart, signature],
    );
    const e = parseEntity(out);
    assert.equal(e.headers[0]!.raw.toString(), 'MIME-Version: 1.0');
    assert.equal(e.contentType.mediaType, 'multipart/signed');
    assert.equal(e.contentType.params.get('protocol'), 'application/pkcs7-signature');
    assert.equal(e.contentType.params.get('micalg'), 'sha-256');
    assert.ok(e.boundary?.includes('=_'));
    assert.match(
      headerValue(e.headers[1]!),
      /protocol="application\/pkcs7-signature"; micalg=sha-256; boundary="/,
    );
    assert.deepEqual(e.parts![0]!.raw, signedPart);
    assert.deepEqual(e.parts![1]!.raw, signature);
    assert.equal(e.preamble, undefined);
    assert.equal(e.epilogue?.length, 0);
    for (const line of out.toString().split('\r\n')) assert.ok(line.length <= 78, line);
  });

  test('buildMultipart: a given boundary is kept, refused when a part contains it', () => {
    const out = buildMultipart([], 'mixed', { boundary: 'fixed' }, [b('\r\na')]);
    assert.equal(parseEntity(out).boundary, 'fixed');
    assert.equal(
      out.toString(),
      'Content-Type: multipart/mixed; boundary=fixed\r\n\r\n--fixed\r\n\r\na\r\n--fixed--\r\n',
    );
    assert.throws(
      () => buildMultipart([], 'mixed', { boundary: 'fixed' }, [b('\r\n--fixed\r\n')]),
      malformed,
    );
    assert.throws(() => buildMultipart([], 'mixed', { boundary: 'bad\r\n' }, [b('x')]), malformed);
    assert.throws(() => buildMultipart([], 'mixed', {}, []), malformed);
  });
});
