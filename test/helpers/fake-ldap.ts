/**
 * A scripted LDAP server for what a real slapd refuses to hold: it answers
 * every search with the given entries, whatever their values (slapd checks
 * userCertificate syntax; other directories do not) and however many (a
 * server may ignore the size limit it is asked for).
 */

import { type FakeServer, fakeServer } from './fake-tcp.js';

export interface FakeEntry {
  readonly dn: string;
  readonly attributes: Readonly<Record<string, readonly Buffer[]>>;
}

function tlv(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  const length =
    n < 0x80
      ? Buffer.from([n])
      : n < 0x100
        ? Buffer.from([0x81, n])
        : n < 0x10000
          ? Buffer.from([0x82, n >> 8, n & 0xff])
          : n < 0x1000000
            ? Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff])
            : Buffer.from([0x84, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, body]);
}

const text = (s: string) => tlv(0x04, Buffer.from(s));

function message(id: Buffer, op: Buffer): Buffer {
  return tlv(0x30, tlv(0x02, id), op);
}

function entry(e: FakeEntry): Buffer {
  const attrs = Object.entries(e.attributes).map(([name, values]) =>
    tlv(0x30, text(name), tlv(0x31, ...values.map((v) => tlv(0x04, v)))),
  );
  return tlv(0x64, text(e.dn), tlv(0x30, ...attrs));
}

/** resultCode success, empty matchedDN and diagnostic. */
const done = (tag: number) => tlv(tag, tlv(0x0a, Buffer.from([0])), text(''), text(''));

/** Splits whole LDAPMessages off the front of `buffer`; the rest stays for the next chunk. */
function messages(buffer: Buffer): { complete: Buffer[]; rest: Buffer } {
  const complete: Buffer[] = [];
  let at = 0;
  while (buffer.length - at >= 2) {
    const first = buffer[at + 1]!;
    const lengthBytes = first & 0x80 ? first & 0x7f : 0;
    if (buffer.length - at < 2 + lengthBytes) break;
    let length = first & 0x80 ? 0 : first;
    for (let i = 0; i < lengthBytes; i++) length = length * 256 + buffer[at + 2 + i]!;
    const end = at + 2 + lengthBytes + length;
    if (end > buffer.length) break;
    complete.push(buffer.subarray(at + 2 + lengthBytes, end));
    at = end;
  }
  return { complete, rest: buffer.subarray(at) };
}

export function fakeLdapServer(entries: readonly FakeEntry[]): Promise<FakeServer> {
  return fakeServer(() => {
    let pending: Buffer = Buffer.alloc(0);
    return (chunk) => {
      const { complete, rest } = messages(Buffer.concat([pending, chunk]));
      pending = rest;
      const replies: Buffer[] = [];
      for (const body of complete) {
        // body: INTEGER messageID, then the protocol op whose tag says what it is.
        const idLength = body[1]!;
        const id = body.subarray(2, 2 + idLength);
        const op = body[2 + idLength];
        if (op === 0x60) replies.push(message(id, done(0x61)));
        else if (op === 0x63) {
          for (const e of entries) replies.push(message(id, entry(e)));
          replies.push(message(id, done(0x65)));
        }
      }
      return replies.length > 0 ? Buffer.concat(replies) : undefined;
    };
  });
}
