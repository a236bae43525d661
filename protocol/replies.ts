/**
 * Filter -> MTA packets: decisions (the one reply to a command), end-of-message
 * modifications and the option negotiation answer. Codec both ways.
 */

import { splitNul } from './commands.js';
import { MacroStage, type MacroStageName, Rsp } from './constants.js';
import { MilterProtocolError, MilterUsageError } from './errors.js';
import { encodeFrame, type Frame } from './frame.js';

/** The single reply that answers one MTA command. */
export type Decision =
  | { readonly type: 'continue' }
  | { readonly type: 'accept' }
  | { readonly type: 'reject' }
  | { readonly type: 'tempfail' }
  | { readonly type: 'discard' }
  | { readonly type: 'skip' }
  | { readonly type: 'connectionFail' }
  | { readonly type: 'shutdown' }
  | {
      readonly type: 'replyCode';
      readonly code: number;
      readonly xcode?: string;
      readonly text: string | readonly string[];
    };

export type HeaderValue = string | Buffer;

/** Changes the filter asks for at end of message, before its final decision. */
export type Modification =
  | { readonly type: 'addHeader'; readonly name: string; readonly value: HeaderValue }
  | {
      readonly type: 'insertHeader';
      readonly index: number;
      readonly name: string;
      readonly value: HeaderValue;
    }
  /** `index` is 1-based among headers of that name; an empty value deletes the header. */
  | {
      readonly type: 'changeHeader';
      readonly name: string;
      readonly index: number;
      readonly value: HeaderValue;
    }
  | { readonly type: 'addRecipient'; readonly address: string; readonly args?: string }
  | { readonly type: 'deleteRecipient'; readonly address: string }
  | { readonly type: 'changeFrom'; readonly address: string; readonly args?: string }
  | { readonly type: 'replaceBody'; readonly chunk: Buffer }
  | { readonly type: 'quarantine'; readonly reason: string }
  | { readonly type: 'progress' };

export interface NegotiationReply {
  readonly type: 'optneg';
  readonly version: number;
  readonly actions: number;
  readonly steps: number;
  /** Macros wanted per stage (set-symlist), space-separated names. */
  readonly macros?: Partial<Record<MacroStageName, string>>;
}

export type FilterPacket = Decision | Modification | NegotiationReply;

export const Decisions = {
  continue: { type: 'continue' },
  accept: { type: 'accept' },
  reject: { type: 'reject' },
  tempfail: { type: 'tempfail' },
  discard: { type: 'discard' },
  skip: { type: 'skip' },
} as const satisfies Record<string, Decision>;

/** A custom SMTP reply, e.g. `replyCode(550, '5.7.1', 'no certificate')`. */
export function replyCode(
  code: number,
  xcode: string | undefined,
  text: string | readonly string[],
): Decision {
  return xcode === undefined
    ? { type: 'replyCode', code, text }
    : { type: 'replyCode', code, xcode, text };
}

const MAX_REPLY_LINES = 32;
const MAX_REPLY_LINE = 980;

/** Formats an SMTP reply as libmilter's smfi_setmlreply does; throws MilterUsageError. */
export function formatReplyCode(d: Extract<Decision, { type: 'replyCode' }>): string {
  const { code, xcode } = d;
  if (!Number.isInteger(code) || code < 400 || code > 599) {
    throw new MilterUsageError(`reply code ${code} is not a 4xx or 5xx code`);
  }
  const klass = String(code)[0];
  if (xcode !== undefined && !new RegExp(`^${klass}\\.\\d{1,3}\\.\\d{1,3}$`).test(xcode)) {
    throw new MilterUsageError(`enhanced status ${xcode} does not match reply code ${code}`);
  }
  const lines = typeof d.text === 'string' ? [d.text] : [...d.text];
  if (lines.length === 0) lines.push('');
  if (lines.length > MAX_REPLY_LINES) {
    throw new MilterUsageError(`reply has ${lines.length} lines, more than ${MAX_REPLY_LINES}`);
  }
  return lines
    .map((line, i) => {
      if (/[\r\n\0]/.test(line))
        throw new MilterUsageError('reply text line contains CR, LF or NUL');
      if (line.length > MAX_REPLY_LINE) {
        throw new MilterUsageError(`reply text line longer than ${MAX_REPLY_LINE} characters`);
      }
      // The MTA runs the text through a printf-like expander: a bare % must be doubled.
      const escaped = line.replace(/%/g, '%%');
      const sep = i === lines.length - 1 ? ' ' : '-';
      return `${code}${sep}${xcode === undefined ? '' : `${xcode} `}${escaped}`;
    })
    .join('\r\n');
}

const ZERO = Buffer.alloc(1);

function nul(...values: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [];
  for (const v of values) parts.push(typeof v === 'string' ? Buffer.from(v, 'utf8') : v, ZERO);
  return Buffer.concat(parts);
}

/** Header values fold with bare LF on the milter wire. */
function headerValue(v: HeaderValue): Buffer {
  const s = typeof v === 'string' ? v : v.toString('latin1');
  if (!s.includes('\r') && !s.includes('\0'))
    return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
  if (s.includes('\0')) throw new MilterUsageError('header value contains NUL');
  const folded = s.replace(/\r\n/g, '\n');
  if (folded.includes('\r')) throw new MilterUsageError('header value contains a bare CR');
  return typeof v === 'string' ? Buffer.from(folded, 'utf8') : Buffer.from(folded, 'latin1');
}

function headerName(name: string): Buffer {
  if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) {
    throw new MilterUsageError(`invalid header name ${JSON.stringify(name)}`);
  }
  return Buffer.from(name, 'latin1');
}

function u32(n: number, what: string): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
    throw new MilterUsageError(`${what} ${n} out of range`);
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n, 0);
  return b;
}

/** Encodes one packet exactly as it goes on the wire (one socket write each). */
export function encodeFilterPacket(p: FilterPacket): Buffer {
  switch (p.type) {
    case 'continue':
      return encodeFrame(Rsp.CONTINUE);
    case 'accept':
      return encodeFrame(Rsp.ACCEPT);
    case 'reject':
      return encodeFrame(Rsp.REJECT);
    case 'tempfail':
      return encodeFrame(Rsp.TEMPFAIL);
    case 'discard':
      return encodeFrame(Rsp.DISCARD);
    case 'skip':
      return encodeFrame(Rsp.SKIP);
    case 'connectionFail':
      return encodeFrame(Rsp.CONN_FAIL);
    case 'shutdown':
      return encodeFrame(Rsp.SHUTDOWN);
    case 'replyCode':
      return encodeFrame(Rsp.REPLYCODE, nul(formatReplyCode(p)));
    case 'addHeader':
      return encodeFrame(Rsp.ADDHEADER, nul(headerName(p.name), headerValue(p.value)));
    case 'insertHeader':
      return encodeFrame(
        Rsp.INSHEADER,
        Buffer.concat([
          u32(p.index, 'header index'),
          nul(headerName(p.name), headerValue(p.value)),
        ]),
      );
    case 'changeHeader':
      if (p.index < 1) throw new MilterUsageError('change header index is 1-based');
      return encodeFrame(
        Rsp.CHGHEADER,
        Buffer.concat([
          u32(p.index, 'header index'),
          nul(headerName(p.name), headerValue(p.value)),
        ]),
      );
    case 'addRecipient':
      return p.args === undefined
        ? encodeFrame(Rsp.ADDRCPT, nul(p.address))
        : encodeFrame(Rsp.ADDRCPT_PAR, nul(p.address, p.args));
    case 'deleteRecipient':
      return encodeFrame(Rsp.DELRCPT, nul(p.address));
    case 'changeFrom':
      return encodeFrame(
        Rsp.CHGFROM,
        p.args === undefined ? nul(p.address) : nul(p.address, p.args),
      );
    case 'replaceBody':
      return encodeFrame(Rsp.REPLBODY, p.chunk);
    case 'quarantine':
      return encodeFrame(Rsp.QUARANTINE, nul(p.reason));
    case 'progress':
      return encodeFrame(Rsp.PROGRESS);
    case 'optneg': {
      const parts = [u32(p.version, 'version'), u32(p.actions, 'actions'), u32(p.steps, 'steps')];
      for (const [stage, names] of Object.entries(p.macros ?? {}) as [MacroStageName, string][]) {
        parts.push(u32(MacroStage[stage], 'macro stage'), nul(names));
      }
      return encodeFrame(0x4f, Buffer.concat(parts));
    }
  }
}

const STAGE_BY_CODE = new Map<number, MacroStageName>(
  Object.entries(MacroStage).map(([k, v]) => [v, k as MacroStageName]),
);

function str(b: Buffer | undefined): string {
  return b ? b.toString('utf8') : '';
}

/** Decodes a packet sent by a filter (the client side of tests and benchmarks). */
export function decodeFilterPacket(frame: Frame): FilterPacket {
  const { cmd, data } = frame;
  switch (cmd) {
    case Rsp.CONTINUE:
      return Decisions.continue;
    case Rsp.ACCEPT:
      return Decisions.accept;
    case Rsp.REJECT:
      return Decisions.reject;
    case Rsp.TEMPFAIL:
      return Decisions.tempfail;
    case Rsp.DISCARD:
      return Decisions.discard;
    case Rsp.SKIP:
      return Decisions.skip;
    case Rsp.CONN_FAIL:
      return { type: 'connectionFail' };
    case Rsp.SHUTDOWN:
      return { type: 'shutdown' };
    case Rsp.REPLYCODE: {
      const full = str(splitNul(data)[0]);
      const code = Number(full.slice(0, 3));
      const lines = full.split('\r\n').map((l) => l.slice(4).replace(/%%/g, '%'));
      const xm = /^(\d\.\d{1,3}\.\d{1,3}) /.exec(lines[0] ?? '');
      const xcode = xm?.[1];
      const text = xcode ? lines.map((l) => l.slice(xcode.length + 1)) : lines;
      return replyCode(code, xcode, text.length === 1 ? text[0]! : text);
    }
    case Rsp.ADDHEADER: {
      const [name, value] = splitNul(data);
      return { type: 'addHeader', name: str(name), value: str(value) };
    }
    case Rsp.INSHEADER:
    case Rsp.CHGHEADER: {
      if (data.length < 4) throw new MilterProtocolError('header modification packet too short');
      const index = data.readUInt32BE(0);
      const [name, value] = splitNul(data.subarray(4));
      return cmd === Rsp.INSHEADER
        ? { type: 'insertHeader', index, name: str(name), value: str(value) }
        : { type: 'changeHeader', index, name: str(name), value: str(value) };
    }
    case Rsp.ADDRCPT:
      return { type: 'addRecipient', address: str(splitNul(data)[0]) };
    case Rsp.ADDRCPT_PAR: {
      const [address, args] = splitNul(data);
      return { type: 'addRecipient', address: str(address), args: str(args) };
    }
    case Rsp.DELRCPT:
      return { type: 'deleteRecipient', address: str(splitNul(data)[0]) };
    case Rsp.CHGFROM: {
      const [address, args] = splitNul(data);
      return args === undefined
        ? { type: 'changeFrom', address: str(address) }
        : { type: 'changeFrom', address: str(address), args: str(args) };
    }
    case Rsp.REPLBODY:
      return { type: 'replaceBody', chunk: data };
    case Rsp.QUARANTINE:
      return { type: 'quarantine', reason: str(splitNul(data)[0]) };
    case Rsp.PROGRESS:
      return { type: 'progress' };
    case 0x4f: {
      if (data.length < 12) throw new MilterProtocolError('negotiation reply too short');
      const macros: Partial<Record<MacroStageName, string>> = {};
      let off = 12;
      while (off + 4 <= data.length) {
        const stage = STAGE_BY_CODE.get(data.readUInt32BE(off));
        const end = data.indexOf(0, off + 4);
        const names = data.toString('utf8', off + 4, end < 0 ? data.length : end);
        if (stage) macros[stage] = names;
        off = end < 0 ? data.length : end + 1;
      }
      const reply: NegotiationReply = {
        type: 'optneg',
        version: data.readUInt32BE(0),
        actions: data.readUInt32BE(4),
        steps: data.readUInt32BE(8),
      };
      return Object.keys(macros).length > 0 ? { ...reply, macros } : reply;
    }
    default:
      throw new MilterProtocolError(`unknown filter response 0x${cmd.toString(16)}`);
  }
}

/** True for packets that end the exchange for one MTA command. */
export function isDecision(p: FilterPacket): p is Decision {
  return (
    p.type === 'continue' ||
    p.type === 'accept' ||
    p.type === 'reject' ||
    p.type === 'tempfail' ||
    p.type === 'discard' ||
    p.type === 'skip' ||
    p.type === 'connectionFail' ||
    p.type === 'shutdown' ||
    p.type === 'replyCode'
  );
}
