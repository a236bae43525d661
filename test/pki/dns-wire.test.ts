import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  DNS_TYPE,
  DnsFormatError,
  DnsQueryError,
  decodeMessage,
  encodeQuery,
  readName,
} from '../../src/pki/dns-wire.js';
import { nameWire, recordWire, reply } from '../helpers/dns-fake.js';

const header = (id: number, flags: number, counts: [number, number, number, number]) => {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(flags, 2);
  for (const [i, c] of counts.entries()) h.writeUInt16BE(c, 4 + 2 * i);
  return h;
};

describe('DNS wire format: queries', () => {
  it('encodes RD+AD, one question and an EDNS0 OPT with the payload size', () => {
    const q = encodeQuery({
      id: 0xbeef,
      name: 'Ab._smimecert.example.org',
      type: DNS_TYPE.SMIMEA,
      udpPayloadSize: 4096,
      authenticData: true,
    });
    const expected = Buffer.concat([
      header(0xbeef, 0x0120, [1, 0, 0, 1]),
      nameWire('Ab._smimecert.example.org'),
      Buffer.from([0, 53, 0, 1]),
      Buffer.from([0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0]),
    ]);
    assert.deepEqual(q, expected);
  });

  it('plain DNS without udpPayloadSize, RD only', () => {
    const q = encodeQuery({ id: 1, name: 'example.org.', type: 1 });
    assert.deepEqual(q.subarray(0, 12), header(1, 0x0100, [1, 0, 0, 0]));
    assert.equal(q.length, 12 + nameWire('example.org').length + 4);
  });

  for (const bad of [
    'a..b',
    'a b.example',
    'x.example\n.evil',
    `${'a'.repeat(64)}.example`,
    'é.example',
  ]) {
    it(`refuses to query ${JSON.stringify(bad)}`, () => {
      assert.throws(() => encodeQuery({ id: 1, name: bad, type: 1 }), DnsQueryError);
    });
  }

  it('refuses a name longer than 255 octets', () => {
    const long = Array.from({ length: 5 }, () => 'a'.repeat(63)).join('.');
    assert.throws(() => encodeQuery({ id: 1, name: long, type: 1 }), /255/);
  });
});

describe('DNS wire format: names', () => {
  it('follows a compression pointer back to an earlier name', () => {
    const buf = Buffer.concat([
      Buffer.alloc(12),
      nameWire('Example.ORG'),
      Buffer.from([3]),
      Buffer.from('www'),
      Buffer.from([0xc0, 12]),
    ]);
    const second = 12 + nameWire('example.org').length;
    assert.deepEqual(readName(buf, second), { name: 'www.example.org', end: buf.length });
    assert.deepEqual(readName(buf, 12), { name: 'example.org', end: second });
  });

  it('escapes dots, backslashes and unprintable octets inside labels', () => {
    const buf = Buffer.from([4, 0x61, 0x2e, 0x5c, 0x00, 1, 0x20, 0]);
    assert.equal(readName(buf, 0).name, 'a\\.\\\\\\000.\\032');
  });

  const rejects: [string, Buffer, RegExp][] = [
    ['a pointer to itself', Buffer.from([0xc0, 0x00]), /point back/],
    ['a forward pointer', Buffer.from([0xc0, 0x02, 0x00]), /point back/],
    // label "a" at 0, then a pointer at 2 back to 0: a loop through a label
    ['a loop through a label', Buffer.from([1, 0x61, 0xc0, 0x00]), /point back/],
    ['a cut pointer', Buffer.from([1, 0x61, 0xc0]), /cut pointer/],
    ['a cut label', Buffer.from([5, 0x61, 0x62]), /cut label/],
    ['a name without its end', Buffer.from([1, 0x61]), /runs past/],
    ['label type 01', Buffer.from([0x40, 0]), /unknown label type/],
    ['label type 10', Buffer.from([0x80, 0]), /unknown label type/],
    [
      'a name over 255 octets',
      Buffer.concat([
        ...Array.from({ length: 5 }, () =>
          Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)]),
        ),
        Buffer.from([0]),
      ]),
      /longer than 255/,
    ],
  ];
  for (const [what, buf, message] of rejects) {
    it(`rejects ${what}`, () => {
      assert.throws(
        () => readName(buf, 0),
        (e: unknown) => e instanceof DnsFormatError && message.test(e.message),
      );
    });
  }
});

describe('DNS wire format: responses', () => {
  const query = encodeQuery({
    id: 7,
    name: 'x.example',
    type: DNS_TYPE.SMIMEA,
    udpPayloadSize: 4096,
  });

  it('decodes the header, question, answers with raw data and CNAME targets, and OPT', () => {
    const msg = decodeMessage(
      reply(query, {
        authenticData: true,
        answers: [
          { name: 'x.example', type: DNS_TYPE.CNAME, data: nameWire('Y.example') },
          {
            name: 'y.example',
            type: DNS_TYPE.SMIMEA,
            data: Buffer.from([3, 0, 0, 1, 2, 3]),
            ttl: 300,
          },
        ],
        additionals: [{ name: '', type: DNS_TYPE.OPT, class: 1232, ttl: 0, data: Buffer.alloc(0) }],
      }),
    );
    assert.equal(msg.header.id, 7);
    assert.equal(msg.header.response, true);
    assert.equal(msg.header.authenticData, true);
    assert.deepEqual(msg.questions, [{ name: 'x.example', type: 53, class: 1 }]);
    assert.equal(msg.answers[0]!.target, 'y.example');
    assert.deepEqual(msg.answers[1]!.data, Buffer.from([3, 0, 0, 1, 2, 3]));
    assert.equal(msg.answers[1]!.ttl, 300);
    assert.equal(msg.rcode, 0);
  });

  it('extends the RCODE with the OPT record (BADVERS = 16)', () => {
    const msg = decodeMessage(
      reply(query, {
        additionals: [
          { name: '', type: DNS_TYPE.OPT, class: 1232, ttl: 0x01000000, data: Buffer.alloc(0) },
        ],
      }),
    );
    assert.equal(msg.rcode, 16);
  });

  it('rejects a CNAME whose target does not fill its data', () => {
    const bad = reply(query, {
      answers: [
        {
          name: 'x.example',
          type: DNS_TYPE.CNAME,
          data: Buffer.concat([nameWire('y.example'), Buffer.from([0])]),
        },
      ],
    });
    assert.throws(() => decodeMessage(bad), /does not fill/);
  });

  it('rejects record data that runs past the message', () => {
    const good = reply(query, {
      answers: [{ name: 'x.example', type: 53, data: Buffer.alloc(20) }],
    });
    assert.throws(() => decodeMessage(good.subarray(0, good.length - 1)), /runs past/);
  });

  it('rejects counts that promise more records than the message holds', () => {
    const good = reply(query, {
      answers: [{ name: 'x.example', type: 53, data: Buffer.alloc(3) }],
    });
    good.writeUInt16BE(2, 6);
    assert.throws(() => decodeMessage(good), DnsFormatError);
  });

  it('rejects two OPT records', () => {
    const opt = { name: '', type: DNS_TYPE.OPT, class: 512, data: Buffer.alloc(0) };
    assert.throws(
      () => decodeMessage(reply(query, { additionals: [opt, opt] })),
      /more than one OPT/,
    );
  });

  it('any byte string decodes or fails with DnsFormatError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        try {
          decodeMessage(Buffer.from(bytes));
        } catch (err) {
          assert.ok(err instanceof DnsFormatError, String(err));
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('mutations of a valid response decode or fail with DnsFormatError', () => {
    const base = reply(query, {
      answers: [
        { name: 'x.example', type: DNS_TYPE.CNAME, data: Buffer.from([1, 0x79, 0xc0, 14]) },
        { name: 'y.x.example', type: 53, data: Buffer.alloc(40, 1) },
      ],
    });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.nat(base.length),
        (edits, cut) => {
          const b = Buffer.from(base);
          for (const [at, v] of edits) b[at] = v;
          for (const candidate of [b, b.subarray(0, cut)]) {
            try {
              decodeMessage(candidate);
            } catch (err) {
              assert.ok(err instanceof DnsFormatError, String(err));
            }
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('a record built by hand round-trips', () => {
    const rr = recordWire({ name: 'a.b', type: 53, data: Buffer.from([1, 2]) });
    const msg = decodeMessage(Buffer.concat([header(9, 0x8180, [0, 1, 0, 0]), rr]));
    assert.deepEqual(
      msg.answers.map((r) => [r.name, r.type, r.class, [...r.data]]),
      [['a.b', 53, 1, [1, 2]]],
    );
  });
});
