/**
 * The DNS message format (RFC 1035 section 4, EDNS0 of RFC 6891), as much as
 * a stub resolver needs: one query out, a response in. Written by hand rather
 * than taken from a library so that every read is bounds-checked, name
 * compression cannot loop, and record data of any type (SMIMEA is 53) stays
 * raw bytes. Every defect in a response is a DnsFormatError, never a crash.
 */

export const DNS_TYPE = { A: 1, CNAME: 5, TXT: 16, OPT: 41, SMIMEA: 53 } as const;
export const DNS_CLASS_IN = 1;
export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

const RCODE_NAMES: Readonly<Record<number, string>> = {
  0: 'NOERROR',
  1: 'FORMERR',
  2: 'SERVFAIL',
  3: 'NXDOMAIN',
  4: 'NOTIMP',
  5: 'REFUSED',
  16: 'BADVERS',
};

export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE ${rcode}`;
}

export class DnsFormatError extends Error {
  override readonly name = 'DnsFormatError';
}

/** Bad input on our side (a name that cannot be queried). */
export class DnsQueryError extends Error {
  override readonly name = 'DnsQueryError';
}

export interface DnsHeader {
  readonly id: number;
  readonly response: boolean;
  readonly opcode: number;
  readonly authoritative: boolean;
  readonly truncated: boolean;
  readonly recursionDesired: boolean;
  readonly recursionAvailable: boolean;
  /** AD: the resolver validated the answer with DNSSEC (RFC 4035 3.2.3). */
  readonly authenticData: boolean;
  readonly checkingDisabled: boolean;
  /** The 4-bit header RCODE; see DnsMessage.rcode for the extended one. */
  readonly rcode: number;
  readonly questionCount: number;
  readonly answerCount: number;
  readonly authorityCount: number;
  readonly additionalCount: number;
}

export interface DnsQuestion {
  /** Lower case, no trailing dot, bytes outside [!-~] and `.`/`\` escaped as in zone files. */
  readonly name: string;
  readonly type: number;
  readonly class: number;
}

export interface DnsRecord {
  readonly name: string;
  readonly type: number;
  readonly class: number;
  readonly ttl: number;
  readonly data: Buffer;
  /** The decompressed target name, for CNAME records. */
  readonly target?: string;
}

export interface DnsMessage {
  readonly header: DnsHeader;
  readonly questions: readonly DnsQuestion[];
  readonly answers: readonly DnsRecord[];
  readonly authorities: readonly DnsRecord[];
  readonly additionals: readonly DnsRecord[];
  /** 12-bit RCODE: the header's, extended by the OPT record's upper bits. */
  readonly rcode: number;
}

const HEADER_SIZE = 12;
const MAX_NAME_WIRE = 255;
const MAX_LABEL = 63;

export function decodeHeader(buf: Buffer): DnsHeader {
  if (buf.length < HEADER_SIZE)
    throw new DnsFormatError(`message of ${buf.length} octets is shorter than a header`);
  const flags = buf.readUInt16BE(2);
  return {
    id: buf.readUInt16BE(0),
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    authoritative: (flags & 0x0400) !== 0,
    truncated: (flags & 0x0200) !== 0,
    recursionDesired: (flags & 0x0100) !== 0,
    recursionAvailable: (flags & 0x0080) !== 0,
    authenticData: (flags & 0x0020) !== 0,
    checkingDisabled: (flags & 0x0010) !== 0,
    rcode: flags & 0xf,
    questionCount: buf.readUInt16BE(4),
    answerCount: buf.readUInt16BE(6),
    authorityCount: buf.readUInt16BE(8),
    additionalCount: buf.readUInt16BE(10),
  };
}

function escapeLabel(label: Buffer): string {
  let out = '';
  for (const b of label) {
    if (b === 0x2e || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (b < 0x21 || b > 0x7e) out += `\\${b.toString().padStart(3, '0')}`;
    else if (b >= 0x41 && b <= 0x5a) out += String.fromCharCode(b + 0x20);
    else out += String.fromCharCode(b);
  }
  return out;
}

/**
 * The name at `start`, following compression pointers. A pointer must lead
 * before every octet this name has read so far, so a chain of pointers
 * always ends; the 255-octet limit bounds the rest.
 */
export function readName(buf: Buffer, start: number): { name: string; end: number } {
  const labels: string[] = [];
  let pos = start;
  let lowest = start;
  let end = -1;
  let wireLength = 1;
  for (;;) {
    if (pos >= buf.length) throw new DnsFormatError(`name at ${start} runs past the message`);
    const len = buf[pos]!;
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= buf.length) throw new DnsFormatError(`name at ${start}: cut pointer`);
      const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
      if (end < 0) end = pos + 2;
      if (target >= lowest)
        throw new DnsFormatError(`name at ${start}: compression pointer does not point back`);
      pos = target;
      lowest = target;
      continue;
    }
    if (kind !== 0) throw new DnsFormatError(`name at ${start}: unknown label type`);
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    if (pos + 1 + len > buf.length) throw new DnsFormatError(`name at ${start}: cut label`);
    wireLength += len + 1;
    if (wireLength > MAX_NAME_WIRE)
      throw new DnsFormatError(`name at ${start} is longer than ${MAX_NAME_WIRE} octets`);
    labels.push(escapeLabel(buf.subarray(pos + 1, pos + 1 + len)));
    pos += 1 + len;
  }
  return { name: labels.join('.'), end };
}

function need(buf: Buffer, pos: number, n: number, what: string): void {
  if (pos + n > buf.length) throw new DnsFormatError(`${what} runs past the message`);
}

function readQuestion(buf: Buffer, pos: number): { question: DnsQuestion; end: number } {
  const { name, end } = readName(buf, pos);
  need(buf, end, 4, 'question');
  return {
    question: { name, type: buf.readUInt16BE(end), class: buf.readUInt16BE(end + 2) },
    end: end + 4,
  };
}

/** Header and question section only: enough to tell whether a response answers our query. */
export function decodeQuestions(buf: Buffer): {
  header: DnsHeader;
  questions: DnsQuestion[];
  end: number;
} {
  const header = decodeHeader(buf);
  const questions: DnsQuestion[] = [];
  let pos = HEADER_SIZE;
  for (let i = 0; i < header.questionCount; i++) {
    const q = readQuestion(buf, pos);
    questions.push(q.question);
    pos = q.end;
  }
  return { header, questions, end: pos };
}

function readRecord(buf: Buffer, pos: number): { record: DnsRecord; end: number } {
  const owner = readName(buf, pos);
  need(buf, owner.end, 10, 'record header');
  const type = buf.readUInt16BE(owner.end);
  const cls = buf.readUInt16BE(owner.end + 2);
  const ttl = buf.readUInt32BE(owner.end + 4);
  const length = buf.readUInt16BE(owner.end + 8);
  const dataStart = owner.end + 10;
  need(buf, dataStart, length, `data of record ${owner.name}`);
  const data = buf.subarray(dataStart, dataStart + length);
  let target: string | undefined;
  if (type === DNS_TYPE.CNAME) {
    const t = readName(buf, dataStart);
    if (t.end !== dataStart + length)
      throw new DnsFormatError(`CNAME ${owner.name}: target does not fill the record data`);
    target = t.name;
  }
  const record: DnsRecord = {
    name: owner.name,
    type,
    class: cls,
    ttl,
    data,
    ...(target !== undefined ? { target } : {}),
  };
  return { record, end: dataStart + length };
}

export function decodeMessage(buf: Buffer): DnsMessage {
  const { header, questions, end } = decodeQuestions(buf);
  let pos = end;
  const section = (count: number): DnsRecord[] => {
    const out: DnsRecord[] = [];
    for (let i = 0; i < count; i++) {
      const r = readRecord(buf, pos);
      out.push(r.record);
      pos = r.end;
    }
    return out;
  };
  const answers = section(header.answerCount);
  const authorities = section(header.authorityCount);
  const additionals = section(header.additionalCount);
  const opts = additionals.filter((r) => r.type === DNS_TYPE.OPT);
  if (opts.length > 1) throw new DnsFormatError('more than one OPT record');
  const opt = opts[0];
  if (opt && opt.name !== '') throw new DnsFormatError('OPT record not owned by the root');
  const rcode = opt ? ((opt.ttl >>> 24) << 4) | header.rcode : header.rcode;
  return { header, questions, answers, authorities, additionals, rcode };
}

/** Labels of a name we query: letters, digits, hyphen, underscore; 1-63 octets each. */
function encodeName(name: string): Buffer {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  if (trimmed === '') return Buffer.from([0]);
  const parts: Buffer[] = [];
  for (const label of trimmed.split('.')) {
    if (label.length === 0 || label.length > MAX_LABEL || !/^[A-Za-z0-9_-]+$/.test(label))
      throw new DnsQueryError(`cannot query ${JSON.stringify(name)}: bad label`);
    parts.push(Buffer.from([label.length]), Buffer.from(label, 'ascii'));
  }
  parts.push(Buffer.from([0]));
  const wire = Buffer.concat(parts);
  if (wire.length > MAX_NAME_WIRE)
    throw new DnsQueryError(`cannot query ${JSON.stringify(name)}: longer than 255 octets`);
  return wire;
}

export interface QuerySpec {
  readonly id: number;
  readonly name: string;
  readonly type: number;
  /** Advertise EDNS0 with this UDP payload size; plain DNS when absent. */
  readonly udpPayloadSize?: number;
  /** Ask for the resolver's DNSSEC verdict in the AD bit (RFC 6840 5.7). */
  readonly authenticData?: boolean;
}

export function encodeQuery(spec: QuerySpec): Buffer {
  const header = Buffer.alloc(HEADER_SIZE);
  header.writeUInt16BE(spec.id & 0xffff, 0);
  header.writeUInt16BE(0x0100 | (spec.authenticData ? 0x0020 : 0), 2); // RD, AD
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(spec.udpPayloadSize ? 1 : 0, 10);
  const question = Buffer.alloc(4);
  question.writeUInt16BE(spec.type, 0);
  question.writeUInt16BE(DNS_CLASS_IN, 2);
  const parts = [header, encodeName(spec.name), question];
  if (spec.udpPayloadSize) {
    const opt = Buffer.alloc(11);
    opt.writeUInt16BE(DNS_TYPE.OPT, 1);
    opt.writeUInt16BE(spec.udpPayloadSize, 3);
    parts.push(opt); // root owner, TTL 0 (version 0, DO clear), no options
  }
  return Buffer.concat(parts);
}

/** The name as decodeMessage reports names: lower case, no trailing dot. */
export function canonicalName(name: string): string {
  return (name.endsWith('.') ? name.slice(0, -1) : name).toLowerCase();
}
