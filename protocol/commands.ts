/**
 * MTA -> filter commands: typed values, and the codec both ways (the server
 * decodes them, the test/bench client encodes them).
 */

import { Cmd } from './constants.js';
import { MilterProtocolError } from './errors.js';
import { encodeFrame, type Frame } from './frame.js';

export type AddressFamily = 'unknown' | 'unix' | 'inet' | 'inet6';

export interface ConnectInfo {
  /** Client host name, or `[ip]` when it did not resolve. */
  readonly hostname: string;
  readonly family: AddressFamily;
  /** Absent for family `unknown`; 0 for `unix`. */
  readonly port?: number;
  /** IP address, or socket path for `unix`. */
  readonly address?: string;
}

export type MtaCommand =
  | {
      readonly type: 'optneg';
      readonly version: number;
      readonly actions: number;
      readonly steps: number;
    }
  | {
      readonly type: 'macro';
      readonly stage: number;
      readonly macros: ReadonlyArray<readonly [string, string]>;
    }
  | ({ readonly type: 'connect' } & ConnectInfo)
  | { readonly type: 'helo'; readonly name: string }
  | { readonly type: 'mail'; readonly address: string; readonly args: readonly string[] }
  | { readonly type: 'rcpt'; readonly address: string; readonly args: readonly string[] }
  | { readonly type: 'data' }
  | { readonly type: 'header'; readonly name: string; readonly value: Buffer }
  | { readonly type: 'eoh' }
  | { readonly type: 'body'; readonly chunk: Buffer }
  | { readonly type: 'eom'; readonly chunk: Buffer }
  | { readonly type: 'abort' }
  | { readonly type: 'quit' }
  | { readonly type: 'quitNewConnection' }
  | { readonly type: 'unknown'; readonly command: string }
  | { readonly type: 'unrecognised'; readonly cmd: number; readonly data: Buffer };

const FAMILY_CODES: Record<AddressFamily, number> = {
  unknown: 0x55, // 'U'
  unix: 0x4c, // 'L'
  inet: 0x34, // '4'
  inet6: 0x36, // '6'
};
const FAMILY_BY_CODE = new Map(
  Object.entries(FAMILY_CODES).map(([k, v]) => [v, k as AddressFamily]),
);

/** Splits NUL-terminated strings; a missing final terminator is tolerated. */
export function splitNul(data: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let start = 0;
  while (start < data.length) {
    let end = data.indexOf(0, start);
    if (end < 0) end = data.length;
    parts.push(data.subarray(start, end));
    start = end + 1;
  }
  return parts;
}

function text(b: Buffer | undefined): string {
  return b ? b.toString('utf8') : '';
}

function requireStrings(parts: Buffer[], n: number, what: string): void {
  if (parts.length < n) throw new MilterProtocolError(`${what} packet is missing fields`);
}

export function decodeCommand(frame: Frame): MtaCommand {
  const { cmd, data } = frame;
  switch (cmd) {
    case Cmd.OPTNEG:
      if (data.length < 12) throw new MilterProtocolError('option negotiation packet too short');
      return {
        type: 'optneg',
        version: data.readUInt32BE(0),
        actions: data.readUInt32BE(4),
        steps: data.readUInt32BE(8),
      };
    case Cmd.MACRO: {
      if (data.length < 1) throw new MilterProtocolError('macro packet without stage');
      const parts = splitNul(data.subarray(1));
      const macros: [string, string][] = [];
      for (let i = 0; i + 1 < parts.length; i += 2)
        macros.push([text(parts[i]), text(parts[i + 1])]);
      return { type: 'macro', stage: data[0]!, macros };
    }
    case Cmd.CONNECT:
      return decodeConnect(data);
    case Cmd.HELO:
      return { type: 'helo', name: text(splitNul(data)[0]) };
    case Cmd.MAIL:
    case Cmd.RCPT: {
      const parts = splitNul(data);
      requireStrings(parts, 1, cmd === Cmd.MAIL ? 'MAIL' : 'RCPT');
      const [address, ...args] = parts.map(text);
      return { type: cmd === Cmd.MAIL ? 'mail' : 'rcpt', address: address!, args };
    }
    case Cmd.DATA:
      return { type: 'data' };
    case Cmd.HEADER: {
      const nul = data.indexOf(0);
      if (nul < 0) throw new MilterProtocolError('header packet without name terminator');
      let end = data.length;
      if (end > nul + 1 && data[end - 1] === 0) end -= 1;
      return {
        type: 'header',
        name: data.toString('latin1', 0, nul),
        value: data.subarray(nul + 1, end),
      };
    }
    case Cmd.EOH:
      return { type: 'eoh' };
    case Cmd.BODY:
      return { type: 'body', chunk: data };
    case Cmd.BODYEOB:
      return { type: 'eom', chunk: data };
    case Cmd.ABORT:
      return { type: 'abort' };
    case Cmd.QUIT:
      return { type: 'quit' };
    case Cmd.QUIT_NC:
      return { type: 'quitNewConnection' };
    case Cmd.UNKNOWN:
      return { type: 'unknown', command: text(splitNul(data)[0]) };
    default:
      return { type: 'unrecognised', cmd, data };
  }
}

function decodeConnect(data: Buffer): MtaCommand {
  const nul = data.indexOf(0);
  if (nul < 0 || nul + 1 >= data.length) throw new MilterProtocolError('connect packet too short');
  const hostname = data.toString('utf8', 0, nul);
  const family = FAMILY_BY_CODE.get(data[nul + 1]!);
  if (!family)
    throw new MilterProtocolError(
      `connect packet with unknown family 0x${data[nul + 1]!.toString(16)}`,
    );
  if (family === 'unknown') return { type: 'connect', hostname, family };
  if (data.length < nul + 4) throw new MilterProtocolError('connect packet without port');
  const port = data.readUInt16BE(nul + 2);
  const address = text(splitNul(data.subarray(nul + 4))[0]);
  return { type: 'connect', hostname, family, port, address };
}

function nulStrings(...values: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [];
  for (const v of values) {
    parts.push(typeof v === 'string' ? Buffer.from(v, 'utf8') : v, ZERO);
  }
  return Buffer.concat(parts);
}
const ZERO = Buffer.alloc(1);

/** Encodes a command as the MTA would send it. */
export function encodeCommand(c: MtaCommand): Buffer {
  switch (c.type) {
    case 'optneg': {
      const b = Buffer.allocUnsafe(12);
      b.writeUInt32BE(c.version >>> 0, 0);
      b.writeUInt32BE(c.actions >>> 0, 4);
      b.writeUInt32BE(c.steps >>> 0, 8);
      return encodeFrame(Cmd.OPTNEG, b);
    }
    case 'macro':
      return encodeFrame(
        Cmd.MACRO,
        Buffer.concat([Buffer.from([c.stage]), nulStrings(...c.macros.flat())]),
      );
    case 'connect': {
      const head = Buffer.concat([nulStrings(c.hostname), Buffer.from([FAMILY_CODES[c.family]])]);
      if (c.family === 'unknown') return encodeFrame(Cmd.CONNECT, head);
      const port = Buffer.allocUnsafe(2);
      port.writeUInt16BE(c.port ?? 0, 0);
      return encodeFrame(Cmd.CONNECT, Buffer.concat([head, port, nulStrings(c.address ?? '')]));
    }
    case 'helo':
      return encodeFrame(Cmd.HELO, nulStrings(c.name));
    case 'mail':
      return encodeFrame(Cmd.MAIL, nulStrings(c.address, ...c.args));
    case 'rcpt':
      return encodeFrame(Cmd.RCPT, nulStrings(c.address, ...c.args));
    case 'data':
      return encodeFrame(Cmd.DATA);
    case 'header':
      return encodeFrame(Cmd.HEADER, nulStrings(Buffer.from(c.name, 'latin1'), c.value));
    case 'eoh':
      return encodeFrame(Cmd.EOH);
    case 'body':
      return encodeFrame(Cmd.BODY, c.chunk);
    case 'eom':
      return encodeFrame(Cmd.BODYEOB, c.chunk);
    case 'abort':
      return encodeFrame(Cmd.ABORT);
    case 'quit':
      return encodeFrame(Cmd.QUIT);
    case 'quitNewConnection':
      return encodeFrame(Cmd.QUIT_NC);
    case 'unknown':
      return encodeFrame(Cmd.UNKNOWN, nulStrings(c.command));
    case 'unrecognised':
      return encodeFrame(c.cmd, c.data);
  }
}
