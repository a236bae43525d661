import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  findAll,
  findHeader,
  headerValue,
  MimeError,
  makeHeader,
  parseContentTransferEncoding,
  parseContentType,
  sameBody,
  serializeHeaders,
  splitAdmitted,
  splitContentHeaders,
  splitMessage,
} from '../../src/mime/index.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const malformed = (e: unknown): boolean => e instanceof MimeError && e.code === 'malformed';

describe('splitMessage', () => {
  test('fields keep their exact bytes including folding; body is a zero-copy view', () => {
    const input = b('Subject: hello\r\n  world\r\nFrom: a@example.org\r\n\r\nbody\r\n');
    const { headers, body, lineEnding } = splitMessage(input);
    assert.equal(lineEnding, 'crlf');
    assert.deepEqual(
      headers.map((h) => h.raw.toString('latin1')),
      ['Subject: hello\r\n  world', 'From: a@example.org'],
    );
    assert.deepEqual(
      headers.map((h) => h.name),
      ['Subject', 'From'],
    );
    assert.equal(body.toString(), 'body\r\n');
    assert.equal(body.buffer, input.buffer);
    assert.equal(body.byteOffset, input.byteOffset + input.indexOf('body'));
    assert.equal(headerValue(headers[0]!), 'hello  world');
  });

  test('LF-only and mixed line endings', () => {
    const lf = splitMessage(b('A: 1\nB: 2\n\tmore\n\nbody'));
    assert.equal(lf.lineEnding, 'lf');
    assert.deepEqual(
      lf.headers.map((h) => headerValue(h)),
      ['1', '2\tmore'],
    );
    assert.equal(lf.body.toString(), 'body');
    const mixed = splitMessage(b('A: 1\r\nB: 2\n\r\nbody'));
    assert.equal(mixed.headers.length, 2);
    assert.equal(mixed.body.toString(), 'body');
  });

  test('no blank line: all headers, empty body; no headers: all body', () => {
    const all = splitMessage(b('A: 1\r\nB: 2'));
    assert.equal(all.headers.length, 2);
    assert.equal(all.headers[1]!.raw.toString(), 'B: 2');
    assert.equal(all.body.length, 0);
    const none = splitMessage(b('\r\nonly body'));
    assert.equal(none.headers.length, 0);
    assert.equal(none.body.toString(), 'only body');
    const empty = splitMessage(Buffer.alloc(0));
    assert.equal(empty.headers.length, 0);
    assert.equal(empty.body.length, 0);
  });

  test('first line that is not a header is malformed; so is a bad line later', () => {
    assert.throws(() => splitMessage(b('From alice Mon Jan 1\r\nA: 1\r\n\r\n')), malformed);
    assert.throws(() => splitMessage(b(' folded: first\r\n\r\n')), malformed);
    assert.throws(() => splitMessage(b('A: 1\r\nno colon here\r\n\r\n')), malformed);
    assert.throws(() => splitMessage(b('Bad Name: 1\r\n\r\n')), malformed);
    assert.throws(() => splitMessage(b(': empty name\r\n\r\n')), malformed);
  });

  test('blank before the colon (obsolete syntax) is accepted', () => {
    const { headers } = splitMessage(b('Subject : hi\r\n\r\n'));
    assert.equal(headers[0]!.name, 'Subject');
    assert.equal(headerValue(headers[0]!), 'hi');
  });

  test('values are latin1 so 8-bit bytes survive', () => {
    const { headers } = splitMessage(Buffer.from('X: caf\u00e9\r\n\r\n', 'utf8'));
    assert.deepEqual(Buffer.from(headerValue(headers[0]!), 'latin1'), Buffer.from('caf\u00e9'));
  });

  test('findHeader and findAll are case-insensitive; serializeHeaders adds CRLF', () => {
    const { headers } = splitMessage(b('Received: 1\r\nreceived: 2\r\nTo: x\r\n\r\n'));
    assert.equal(findHeader(headers, 'RECEIVED')?.raw.toString(), 'Received: 1');
    assert.equal(findAll(headers, 'received').length, 2);
    assert.equal(findHeader(headers, 'cc'), undefined);
    assert.equal(serializeHeaders(headers).toString(), 'Received: 1\r\nreceived: 2\r\nTo: x\r\n');
  });
});

describe('messages bounded where they came in', () => {
  test('splitAdmitted and sameBody read past the default size bound; splitMessage refuses', () => {
    // Our output for an input under DOMSEC_MAX_MESSAGE_BYTES may exceed the default 64 MiB.
    const body = Buffer.alloc(65 * 1024 * 1024, 0x61);
    const a = Buffer.concat([b('Subject: a\r\n\r\n'), body]);
    const c = Buffer.concat([b('Subject: another\r\n\r\n'), body]);
    assert.throws(
      () => splitMessage(a),
      (e: unknown) => e instanceof MimeError,
    );
    assert.equal(splitAdmitted(a).headers[0]?.name, 'Subject');
    assert.equal(splitAdmitted(a).body.length, body.length);
    assert.equal(sameBody(a, c), true);
    c[c.length - 1] = 0x62;
    assert.equal(sameBody(a, c), false);
  });
});

describe('splitContentHeaders', () => {
  test('Content-* fields describe the entity; the rest stay outside, order kept', () => {
    const { headers } = splitMessage(
      b(
        'From: a\r\nContent-Type: text/plain\r\nMIME-Version: 1.0\r\ncontent-disposition: inline\r\nContent-ID: <x>\r\n\r\n',
      ),
    );
    const { content, other } = splitContentHeaders(headers);
    assert.deepEqual(
      content.map((f) => f.name),
      ['Content-Type', 'content-disposition', 'Content-ID'],
    );
    assert.deepEqual(
      other.map((f) => f.name),
      ['From', 'MIME-Version'],
    );
  });
});

describe('makeHeader', () => {
  test('short values stay on one line', () => {
    const h = makeHeader('Subject', 'hello');
    assert.equal(h.raw.toString(), 'Subject: hello');
    assert.equal(h.name, 'Subject');
  });

  test('long values fold at blanks to lines of at most 78, and unfold back', () => {
    const words = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
    const h = makeHeader('X-Long', words);
    const lines = h.raw.toString().split('\r\n');
    assert.ok(lines.length > 1);
    for (const line of lines) assert.ok(line.length <= 78, line);
    for (const line of lines.slice(1)) assert.match(line, /^[ \t]\S/);
    assert.equal(headerValue(h), words);
    const reparsed = splitMessage(Buffer.concat([h.raw, Buffer.from('\r\n\r\n')]));
    assert.deepEqual(reparsed.headers[0]!.raw, h.raw);
  });

  test('a word longer than a line is kept whole', () => {
    const long = 'x'.repeat(120);
    const h = makeHeader('X', `a ${long} b`);
    assert.equal(headerValue(h), `a ${long} b`);
    assert.ok(
      h.raw
        .toString()
        .split('\r\n')
        .some((l) => l.includes(long)),
    );
  });

  test('refuses line breaks, non-latin1 values and bad names', () => {
    assert.throws(() => makeHeader('X', 'a\r\nBcc: evil@example.org'), malformed);
    assert.throws(() => makeHeader('X', 'a\nb'), malformed);
    assert.throws(() => makeHeader('X', '\u20ac'), malformed);
    assert.throws(() => makeHeader('Bad Name', 'v'), malformed);
    assert.throws(() => makeHeader('', 'v'), malformed);
  });
});

describe('parseContentType', () => {
  test('type, subtype, lower-cased, with token and quoted parameters', () => {
    const ct = parseContentType(
      'Multipart/Signed; protocol="application/pkcs7-signature"; MICALG=sha-256; boundary="a b\\"c"',
    );
    assert.equal(ct.type, 'multipart');
    assert.equal(ct.subtype, 'signed');
    assert.equal(ct.mediaType, 'multipart/signed');
    assert.equal(ct.params.get('protocol'), 'application/pkcs7-signature');
    assert.equal(ct.params.get('micalg'), 'sha-256');
    assert.equal(ct.params.get('boundary'), 'a b"c');
  });

  test('comments are ignored, also nested and between tokens', () => {
    const ct = parseContentType(
      ' (c1) text (c2 (nested) ) / plain (x) ; (y) charset = (z) "utf-8" (last)',
    );
    assert.equal(ct.mediaType, 'text/plain');
    assert.equal(ct.params.get('charset'), 'utf-8');
  });

  test('missing or unparsable: text/plain; charset=us-ascii', () => {
    for (const value of [undefined, '', 'garbage', '/plain', 'text/', '; charset=x', '(only)']) {
      const ct = parseContentType(value);
      assert.equal(ct.mediaType, 'text/plain', String(value));
      assert.equal(ct.params.get('charset'), 'us-ascii');
    }
  });

  test('loose unquoted values (real-world boundaries with tspecials)', () => {
    const ct = parseContentType('multipart/mixed; boundary=----=_NextPart_000_0001; x=1');
    assert.equal(ct.params.get('boundary'), '----=_NextPart_000_0001');
    assert.equal(ct.params.get('x'), '1');
  });

  test('broken parameters are skipped, later ones still read; first occurrence wins', () => {
    const ct = parseContentType('text/plain; junk; =x; a=1; ;; a=2; b="unclosed');
    assert.equal(ct.params.get('a'), '1');
    assert.equal(ct.params.get('b'), 'unclosed');
    assert.equal(ct.params.has('junk'), false);
  });

  test('RFC 2231 continuations and charset/language encoding', () => {
    const ct = parseContentType(
      "application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; " +
        'title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2="isn\'t it!"',
    );
    assert.equal(ct.params.get('title'), "This is even more ***fun*** isn't it!");
    const single = parseContentType(
      "application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A",
    );
    assert.equal(single.params.get('title'), 'This is ***fun***');
    const plain = parseContentType('application/x; name*0="part one "; name*1="two"');
    assert.equal(plain.params.get('name'), 'part one two');
  });

  test('RFC 2231 values are octets as latin1; encoded form wins over plain; gaps end a value', () => {
    const ct = parseContentType(
      "text/plain; name=fallback.txt; name*=utf-8''caf%C3%A9.txt; t*0=a; t*2=c",
    );
    assert.deepEqual(Buffer.from(ct.params.get('name')!, 'latin1'), Buffer.from('caf\u00e9.txt'));
    assert.equal(ct.params.get('t'), 'a');
  });
});

describe('parseContentTransferEncoding', () => {
  test('lower-case token, 7bit when absent or empty', () => {
    assert.equal(parseContentTransferEncoding(undefined), '7bit');
    assert.equal(parseContentTransferEncoding(''), '7bit');
    assert.equal(parseContentTransferEncoding(' Base64 '), 'base64');
    assert.equal(parseContentTransferEncoding('(c) Quoted-Printable (x)'), 'quoted-printable');
    assert.equal(parseContentTransferEncoding('8BIT'), '8bit');
    assert.equal(parseContentTransferEncoding('x-uuencode'), 'x-uuencode');
  });
});
