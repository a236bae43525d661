/**
 * The MTA side of the protocol, to drive a milter from tests and benchmarks.
 * It behaves like Postfix: it does not send events the filter switched off
 * and does not wait for replies to no-reply steps.
 */

import net from 'node:net';
import { type ConnectInfo, encodeCommand, type MtaCommand } from './commands.js';
import {
  ALL_ACTIONS,
  Cmd,
  EVENT_STEPS,
  type EventName,
  MILTER_CHUNK_SIZE,
  MILTER_VERSION,
} from './constants.js';
import { MilterProtocolError } from './errors.js';
import { type Frame, FrameDecoder } from './frame.js';
import type { ListenSpec } from './listen.js';
import {
  type Decision,
  decodeFilterPacket,
  isDecision,
  type Modification,
  type NegotiationReply,
} from './replies.js';

/** What Postfix 3.x offers. */
export const POSTFIX_OFFER = {
  version: MILTER_VERSION,
  actions: ALL_ACTIONS,
  steps: 0x1fffff,
} as const;

export interface EndOfMessageResult {
  readonly modifications: Modification[];
  readonly progress: number;
  readonly decision: Decision;
}

interface Waiter {
  readonly eom: boolean;
  readonly modifications: Modification[];
  progress: number;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

export interface MessageSpec {
  readonly connect?: ConnectInfo;
  readonly helo?: string;
  readonly from: string;
  readonly rcpts: readonly string[];
  readonly headers: ReadonlyArray<readonly [string, string | Buffer]>;
  readonly body: Buffer;
  readonly macros?: Partial<Record<'connect' | 'mail' | 'rcpt' | 'eom', Record<string, string>>>;
}

export class MilterClient {
  private readonly decoder = new FrameDecoder(1 << 30);
  private readonly waiters: Waiter[] = [];
  private negotiated: NegotiationReply | undefined;
  private failure: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('milter closed the connection')));
  }

  static connect(spec: ListenSpec, timeoutMs = 5000): Promise<MilterClient> {
    return new Promise((resolve, reject) => {
      const socket =
        spec.kind === 'unix' ? net.connect(spec.path) : net.connect(spec.port, spec.host);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`milter connect timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeListener('error', reject);
        resolve(new MilterClient(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** The filter's answer to option negotiation. */
  get negotiation(): NegotiationReply | undefined {
    return this.negotiated;
  }

  get closed(): boolean {
    return this.failure !== undefined;
  }

  async negotiate(
    offer: { version: number; actions: number; steps: number } = POSTFIX_OFFER,
  ): Promise<NegotiationReply> {
    const reply = await this.request({ type: 'optneg', ...offer }, false);
    if ((reply as { type: string }).type !== 'optneg') {
      throw new MilterProtocolError(
        `expected a negotiation reply, got ${(reply as { type: string }).type}`,
      );
    }
    this.negotiated = reply as NegotiationReply;
    return this.negotiated;
  }

  /** Sends macros for the command `stage` (a command byte from Cmd). No reply. */
  macros(stage: number, values: Record<string, string>): void {
    const macros = Object.entries(values).map(
      ([k, v]) => [k.length === 1 ? k : `{${k.replace(/^\{|\}$/g, '')}}`, v] as const,
    );
    this.socket.write(encodeCommand({ type: 'macro', stage, macros }));
  }

  connectEvent(info: ConnectInfo): Promise<Decision | undefined> {
    return this.event('connect', { type: 'connect', ...info });
  }
  helo(name: string): Promise<Decision | undefined> {
    return this.event('helo', { type: 'helo', name });
  }
  mail(address: string, args: string[] = []): Promise<Decision | undefined> {
    return this.event('mail', { type: 'mail', address, args });
  }
  rcpt(address: string, args: string[] = []): Promise<Decision | undefined> {
    return this.event('rcpt', { type: 'rcpt', address, args });
  }
  data(): Promise<Decision | undefined> {
    return this.event('data', { type: 'data' });
  }
  header(name: string, value: string | Buffer): Promise<Decision | undefined> {
    const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    return this.event('header', { type: 'header', name, value: v });
  }
  endOfHeaders(): Promise<Decision | undefined> {
    return this.event('eoh', { type: 'eoh' });
  }
  body(chunk: Buffer): Promise<Decision | undefined> {
    return this.event('body', { type: 'body', chunk });
  }
  unknown(command: string): Promise<Decision | undefined> {
    return this.event('unknown', { type: 'unknown', command });
  }

  /** Sends the body in MTA-sized chunks; stops early when the filter answers skip. */
  async bodyChunks(body: Buffer, chunkSize = MILTER_CHUNK_SIZE): Promise<Decision | undefined> {
    let last: Decision | undefined;
    for (let off = 0; off < body.length; off += chunkSize) {
      last = await this.body(body.subarray(off, off + chunkSize));
      if (last && last.type !== 'continue') return last;
    }
    return last;
  }

  endOfMessage(chunk: Buffer = Buffer.alloc(0)): Promise<EndOfMessageResult> {
    return this.request({ type: 'eom', chunk }, true) as Promise<EndOfMessageResult>;
  }

  abort(): void {
    this.socket.write(encodeCommand({ type: 'abort' }));
  }

  quit(): void {
    this.socket.end(encodeCommand({ type: 'quit' }));
  }

  /** QUIT_NC: the connection stays open for a new negotiation. */
  quitNewConnection(): void {
    this.negotiated = undefined;
    this.socket.write(encodeCommand({ type: 'quitNewConnection' }));
  }

  /** Writes raw bytes (for fuzzing and malformed-input tests). */
  writeRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Runs one whole message the way Postfix does; returns the decision at the first refusal. */
  async sendMessage(
    m: MessageSpec,
  ): Promise<{ stage: string; decision: Decision | undefined; eom?: EndOfMessageResult }> {
    if (m.macros?.mail) this.macros(Cmd.MAIL, m.macros.mail);
    let d = await this.mail(m.from);
    if (refused(d)) return { stage: 'mail', decision: d };
    for (const rcpt of m.rcpts) {
      if (m.macros?.rcpt) this.macros(Cmd.RCPT, { ...m.macros.rcpt, rcpt_addr: rcpt });
      d = await this.rcpt(rcpt);
      if (refused(d)) return { stage: 'rcpt', decision: d };
    }
    d = await this.data();
    if (refused(d)) return { stage: 'data', decision: d };
    for (const [name, value] of m.headers) {
      d = await this.header(name, value);
      if (refused(d)) return { stage: 'header', decision: d };
    }
    d = await this.endOfHeaders();
    if (refused(d)) return { stage: 'eoh', decision: d };
    d = await this.bodyChunks(m.body);
    if (refused(d) && d?.type !== 'skip') return { stage: 'body', decision: d };
    if (m.macros?.eom) this.macros(Cmd.BODYEOB, m.macros.eom);
    const eom = await this.endOfMessage();
    return { stage: 'eom', decision: eom.decision, eom };
  }

  private event(name: EventName, c: MtaCommand): Promise<Decision | undefined> {
    const steps = this.negotiated?.steps ?? 0;
    const bits = EVENT_STEPS[name];
    if ((steps & bits.no) !== 0) return Promise.resolve(undefined);
    if ((steps & bits.noReply) !== 0) {
      this.socket.write(encodeCommand(c));
      return Promise.resolve(undefined);
    }
    return this.request(c, false) as Promise<Decision>;
  }

  private request(c: MtaCommand, eom: boolean): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiters.push({ eom, modifications: [], progress: 0, resolve, reject });
      this.socket.write(encodeCommand(c));
    });
  }

  private onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.fail(err as Error);
      this.socket.destroy();
      return;
    }
    for (const frame of frames) {
      const waiter = this.waiters[0];
      if (!waiter) {
        this.fail(
          new MilterProtocolError(
            `unexpected packet '${String.fromCharCode(frame.cmd)}' from filter`,
          ),
        );
        return;
      }
      const packet = decodeFilterPacket(frame);
      if (packet.type === 'optneg' || !waiter.eom) {
        this.waiters.shift();
        waiter.resolve(packet);
      } else if (packet.type === 'progress') {
        waiter.progress++;
      } else if (isDecision(packet)) {
        this.waiters.shift();
        waiter.resolve({
          modifications: waiter.modifications,
          progress: waiter.progress,
          decision: packet,
        });
      } else {
        waiter.modifications.push(packet);
      }
    }
  }

  private fail(err: Error): void {
    if (!this.failure) this.failure = err;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
}

function refused(d: Decision | undefined): boolean {
  return d !== undefined && d.type !== 'continue';
}
