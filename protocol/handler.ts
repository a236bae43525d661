/**
 * The typed handler API. An application declares its capabilities and opens
 * one ConnectionHandler per MTA connection; that opens one TransactionHandler
 * per message (MAIL FROM .. end of message or abort). Every stage method may
 * be sync or async; returning nothing means "continue".
 */

import type { ConnectInfo } from './commands.js';
import type { Capabilities, Negotiated } from './negotiate.js';
import type { Decision, HeaderValue } from './replies.js';

export type Reply = Decision | undefined | Promise<Decision | undefined>;

/** Pino-compatible logging surface; the protocol layer logs nothing without one. */
export interface ProtocolLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface MacroReader {
  /** A macro by name: `i`, `auth_authen` or `{auth_authen}`. */
  macro(name: string): string | undefined;
  /** Every macro currently known, latest stage winning. */
  macros(): Map<string, string>;
}

export interface ConnectionContext extends MacroReader {
  /** Sequence number of this connection within the server. */
  readonly id: number;
  readonly negotiated: Negotiated;
  /** Address of the MTA end of the milter socket (not the SMTP client). */
  readonly peer: string;
}

export interface TransactionContext extends MacroReader {
  readonly connection: ConnectionContext;
  /** Sequence number of this transaction within the connection (1-based). */
  readonly seq: number;
}

export type CloseReason =
  | 'quit'
  | 'quitNewConnection'
  | 'peerClosed'
  | 'protocolError'
  | 'timeout'
  | 'shutdown';

export interface ConnectionHandler {
  connect?(info: ConnectInfo): Reply;
  helo?(name: string): Reply;
  unknown?(command: string): Reply;
  /** A message begins; the returned handler sees its events. */
  transaction(ctx: TransactionContext): TransactionHandler;
  close?(reason: CloseReason): void | Promise<void>;
}

export interface TransactionHandler {
  mail?(address: string, args: readonly string[]): Reply;
  rcpt?(address: string, args: readonly string[]): Reply;
  data?(): Reply;
  /** `value` as the MTA sent it: one leading space stripped unless headerLeadingSpace was negotiated. */
  header?(name: string, value: Buffer): Reply;
  endOfHeaders?(): Reply;
  body?(chunk: Buffer): Reply;
  /** Modifications go through `eom` before the returned final decision. */
  endOfMessage(eom: EndOfMessage): Reply;
  /** The message was abandoned (ABORT, a new MAIL without end of message, or connection loss). */
  abort?(): void | Promise<void>;
}

/** Modifications allowed at end of message; each checks that its action was negotiated. */
export interface EndOfMessage {
  addHeader(name: string, value: HeaderValue): Promise<void>;
  /** `index` is 0-based over all headers, as the MTA counts them. */
  insertHeader(index: number, name: string, value: HeaderValue): Promise<void>;
  /** `index` is 1-based among the headers called `name`. */
  changeHeader(name: string, index: number, value: HeaderValue): Promise<void>;
  deleteHeader(name: string, index: number): Promise<void>;
  /**
   * Replaces the body; the bytes are sent in packets of at most 65535 bytes,
   * contiguously, straight from the given buffers (do not change them afterwards).
   */
  replaceBody(body: Buffer | Iterable<Buffer> | AsyncIterable<Buffer>): Promise<void>;
  addRecipient(address: string, args?: string): Promise<void>;
  deleteRecipient(address: string): Promise<void>;
  changeFrom(address: string, args?: string): Promise<void>;
  quarantine(reason: string): Promise<void>;
  /** Tells the MTA we are still working (restarts its timer). */
  progress(): Promise<void>;
}

export interface MilterApplication {
  readonly capabilities: Capabilities;
  openConnection(ctx: ConnectionContext): ConnectionHandler;
}
