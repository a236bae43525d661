/**
 * One MTA connection, server side: frames in, handler calls, replies out.
 * Commands are handled strictly in order (no-reply steps let the MTA send
 * ahead, so they queue); exactly one reply per command that expects one.
 */

import type { Socket } from 'node:net';
import { decodeCommand, type MtaCommand } from './commands.js';
import {
  type ConnectionOptions,
  type ResolvedOptions,
  resolveOptions,
} from './connection-options.js';
import type { EventName } from './constants.js';
import { withinDeadline } from './deadline.js';
import { EndOfMessageEditor } from './eom.js';
import { MilterProtocolError, MilterTimeoutError } from './errors.js';
import { type Frame, FrameDecoder } from './frame.js';
import type {
  CloseReason,
  ConnectionContext,
  ConnectionHandler,
  MilterApplication,
  ProtocolLogger,
  Reply,
  TransactionContext,
  TransactionHandler,
} from './handler.js';
import { MacroStore } from './macros.js';
import { type Negotiated, negotiate } from './negotiate.js';
import { PacketWriter } from './packet-writer.js';
import { ReadPacing } from './read-pacing.js';
import { type Decision, Decisions } from './replies.js';

const NOOP_LOGGER: ProtocolLogger = { debug() {}, info() {}, warn() {}, error() {} };

interface Transaction {
  readonly handler: TransactionHandler;
  skipBody: boolean;
}

export type { ConnectionOptions } from './connection-options.js';

export class MilterConnection {
  private readonly opts: ResolvedOptions;
  private readonly log: ProtocolLogger;
  private readonly decoder: FrameDecoder;
  private readonly queue: Frame[] = [];
  private queuedBytes = 0;
  private readonly pacing: ReadPacing;
  private processing = false;
  private readonly macroStore = new MacroStore();
  private negotiated: Negotiated | undefined;
  private handler: ConnectionHandler | undefined;
  private context: ConnectionContext | undefined;
  private tx: Transaction | undefined;
  private txSeq = 0;
  private closed = false;
  private readonly writer: PacketWriter;
  private draining = false;
  private resolveDone!: () => void;
  /** Settles once the connection is closed and its handler told so. */
  readonly done: Promise<void>;

  constructor(
    private readonly socket: Socket,
    private readonly app: MilterApplication,
    readonly id: number,
    options: ConnectionOptions = {},
  ) {
    this.opts = resolveOptions(options);
    this.log = options.logger ?? NOOP_LOGGER;
    this.decoder = new FrameDecoder(this.opts.maxFrameLength);
    this.writer = new PacketWriter(socket, () => this.closed);
    this.pacing = new ReadPacing(socket, this.opts.maxQueuedBytes, () => this.closed);
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
    socket.setNoDelay(true);
    socket.setTimeout(this.opts.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('timeout', () => this.onIdle());
    socket.on('error', (err) => {
      this.log.debug({ conn: id, err: err.message }, 'milter socket error');
    });
    socket.on('close', () => void this.finish('peerClosed'));
  }

  /** True between MAIL (or the first message event) and the end of that message. */
  get inTransaction(): boolean {
    return this.tx !== undefined;
  }

  /** Stop after the current message: close now if idle, otherwise when the message ends. */
  drain(): void {
    this.draining = true;
    if (!this.tx && !this.processing) this.socket.end();
  }

  /** Close at once (drain deadline passed). */
  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.protocolError(err);
      return;
    }
    for (const frame of frames) {
      this.queue.push(frame);
      this.queuedBytes += frame.data.length;
    }
    this.pacing.afterRead(chunk.length, this.queuedBytes);
    if (!this.processing && this.queue.length > 0) void this.processQueue();
  }

  private onIdle(): void {
    if (this.processing) {
      // A handler is working and the MTA waits for us: that is not idleness.
      this.socket.setTimeout(this.opts.idleTimeoutMs);
      return;
    }
    this.log.warn(
      { conn: this.id, idleMs: this.opts.idleTimeoutMs },
      'milter connection idle too long, closing',
    );
    this.socket.destroy();
    void this.finish('timeout');
  }

  private async processQueue(): Promise<void> {
    this.processing = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const frame = this.queue.shift()!;
        this.queuedBytes -= frame.data.length;
        this.pacing.afterTake(this.queuedBytes);
        await this.handleFrame(frame);
      }
    } catch (err) {
      if (err instanceof MilterProtocolError) this.protocolError(err);
      else {
        this.log.error({ conn: this.id, err: String(err) }, 'milter connection failed');
        this.socket.destroy();
        void this.finish('protocolError');
      }
    } finally {
      this.processing = false;
    }
    if (this.draining && !this.tx && !this.closed) this.socket.end();
  }

  private protocolError(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.log.warn({ conn: this.id, err: message }, 'milter protocol error, closing connection');
    this.opts.onFailure('protocol-error');
    this.socket.destroy();
    void this.finish('protocolError');
  }

  private async handleFrame(frame: Frame): Promise<void> {
    const c = decodeCommand(frame);
    if (c.type === 'optneg') return this.onNegotiate(c);
    if (c.type === 'macro') {
      this.macroStore.set(c.stage, c.macros);
      return;
    }
    if (c.type === 'quit') {
      this.socket.end();
      return this.finish('quit');
    }
    if (!this.handler || !this.negotiated) {
      throw new MilterProtocolError(
        `command '${String.fromCharCode(frame.cmd)}' before option negotiation`,
      );
    }
    return this.dispatch(c, this.handler);
  }

  private onNegotiate(c: Extract<MtaCommand, { type: 'optneg' }>): void {
    if (this.negotiated)
      throw new MilterProtocolError('second option negotiation on one connection');
    const result = negotiate(c, this.app.capabilities);
    if (!result.ok) throw new MilterProtocolError(`negotiation failed: ${result.reason}`);
    this.negotiated = result.negotiated;
    this.log.debug(
      {
        conn: this.id,
        offer: c,
        reply: { actions: result.reply.actions, steps: result.reply.steps },
      },
      'milter negotiated',
    );
    this.writer.write(result.reply);
    this.context = this.makeConnectionContext(result.negotiated);
    this.handler = this.app.openConnection(this.context);
  }

  private async dispatch(c: MtaCommand, h: ConnectionHandler): Promise<void> {
    switch (c.type) {
      case 'connect':
        return this.answer('connect', h.connect ? () => h.connect!(c) : undefined);
      case 'helo':
        return this.answer('helo', h.helo ? () => h.helo!(c.name) : undefined);
      case 'unknown':
        return this.answer('unknown', h.unknown ? () => h.unknown!(c.command) : undefined);
      case 'mail': {
        // Sendmail starts the next message without ABORT after a completed one.
        if (this.tx) await this.abortTransaction();
        const tx = this.beginTransaction(h);
        return this.answer('mail', tx.mail ? () => tx.mail!(c.address, c.args) : undefined);
      }
      case 'rcpt': {
        const tx = this.currentTransaction(h).handler;
        return this.answer('rcpt', tx.rcpt ? () => tx.rcpt!(c.address, c.args) : undefined);
      }
      case 'data': {
        const tx = this.currentTransaction(h).handler;
        return this.answer('data', tx.data ? () => tx.data!() : undefined);
      }
      case 'header': {
        const tx = this.currentTransaction(h).handler;
        return this.answer('header', tx.header ? () => tx.header!(c.name, c.value) : undefined);
      }
      case 'eoh': {
        const tx = this.currentTransaction(h).handler;
        return this.answer('eoh', tx.endOfHeaders ? () => tx.endOfHeaders!() : undefined);
      }
      case 'body':
        return this.onBody(this.currentTransaction(h), c.chunk, true);
      case 'eom':
        return this.onEndOfMessage(this.currentTransaction(h), c.chunk);
      case 'abort':
        await this.abortTransaction();
        this.macroStore.clearMessage();
        return;
      case 'quitNewConnection':
        await this.abortTransaction();
        await this.closeHandler('quitNewConnection');
        this.negotiated = undefined;
        this.handler = undefined;
        this.macroStore.clear();
        return;
      case 'unrecognised':
        throw new MilterProtocolError(`unknown command 0x${c.cmd.toString(16)}`);
      default:
        throw new MilterProtocolError(`unexpected command ${c.type}`);
    }
  }

  private beginTransaction(h: ConnectionHandler): TransactionHandler {
    const ctx: TransactionContext = {
      connection: this.context!,
      seq: ++this.txSeq,
      macro: (name) => this.macroStore.get(name),
      macros: () => this.macroStore.all(),
    };
    const handler = h.transaction(ctx);
    this.tx = { handler, skipBody: false };
    return handler;
  }

  /** The MTA may have switched MAIL off: then the first message event opens the transaction. */
  private currentTransaction(h: ConnectionHandler): Transaction {
    if (!this.tx) this.beginTransaction(h);
    return this.tx!;
  }

  private async onBody(tx: Transaction, chunk: Buffer, replies: boolean): Promise<void> {
    if (tx.skipBody || !tx.handler.body) {
      if (replies) this.respond('body', Decisions.continue);
      return;
    }
    const decision = await this.call(
      'body',
      () => tx.handler.body!(chunk),
      this.opts.stageTimeoutMs,
    );
    if (decision.type === 'skip') {
      tx.skipBody = true;
      // Without SMFIP_SKIP the MTA would not understand it: keep reading and ignore the rest.
      if (replies) this.respond('body', this.negotiated!.skip ? decision : Decisions.continue);
      return;
    }
    if (replies) this.respond('body', decision);
  }

  private async onEndOfMessage(tx: Transaction, lastChunk: Buffer): Promise<void> {
    if (lastChunk.length > 0) await this.onBody(tx, lastChunk, false);
    const negotiated = this.negotiated!;
    const editor = new EndOfMessageEditor({
      actions: negotiated.actions,
      send: (m) => this.writer.writeAndWait(m),
    });
    const interval = this.opts.progressIntervalMs;
    const timer =
      interval > 0
        ? setInterval(() => {
            if (!editor.replacingBody) editor.progress().catch(() => {});
          }, interval)
        : undefined;
    let decision: Decision;
    try {
      decision = await this.call(
        'eom',
        () => tx.handler.endOfMessage(editor),
        this.opts.eomTimeoutMs,
      );
    } finally {
      if (timer) clearInterval(timer);
      editor.close();
    }
    if (decision.type === 'skip') decision = Decisions.continue;
    this.writer.write(decision);
    this.tx = undefined;
    this.macroStore.clearMessage();
  }

  /** Calls a stage handler (if any) and sends its reply unless the MTA expects none. */
  private async answer(event: EventName, fn: (() => Reply) | undefined): Promise<void> {
    const decision = fn ? await this.call(event, fn, this.opts.stageTimeoutMs) : Decisions.continue;
    this.respond(event, decision);
  }

  private respond(event: EventName, decision: Decision): void {
    if (this.negotiated!.noReply.has(event)) {
      if (decision.type !== 'continue') {
        this.log.warn(
          { conn: this.id, event, decision: decision.type },
          'handler decided on a no-reply step; the MTA cannot be told',
        );
      }
      return;
    }
    if (decision.type === 'skip' && event !== 'body') decision = Decisions.continue;
    this.writer.write(decision);
  }

  /** Runs a handler with a deadline; a throw or a timeout becomes the failure decision. */
  private async call(stage: string, fn: () => Reply, timeoutMs: number): Promise<Decision> {
    try {
      return await withinDeadline(stage, fn, timeoutMs);
    } catch (err) {
      const failure = this.opts.failureDecision;
      this.opts.onFailure(err instanceof MilterTimeoutError ? 'handler-timeout' : 'handler-error');
      this.log.error(
        {
          conn: this.id,
          stage,
          err: err instanceof Error ? err.message : String(err),
          reply: failure.type,
        },
        err instanceof MilterTimeoutError ? 'milter handler timed out' : 'milter handler failed',
      );
      return failure;
    }
  }

  private async abortTransaction(): Promise<void> {
    const tx = this.tx;
    this.tx = undefined;
    if (!tx?.handler.abort) return;
    try {
      await tx.handler.abort();
    } catch (err) {
      this.log.error({ conn: this.id, err: String(err) }, 'milter abort handler failed');
    }
  }

  private async closeHandler(reason: CloseReason): Promise<void> {
    const h = this.handler;
    this.handler = undefined;
    if (!h?.close) return;
    try {
      await h.close(reason);
    } catch (err) {
      this.log.error({ conn: this.id, err: String(err) }, 'milter close handler failed');
    }
  }

  private async finish(reason: CloseReason): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    await this.abortTransaction();
    await this.closeHandler(reason);
    this.resolveDone();
  }

  private makeConnectionContext(negotiated: Negotiated): ConnectionContext {
    const socket = this.socket;
    return {
      id: this.id,
      negotiated,
      // A getter: asking the kernel for the peer name costs a syscall per connection.
      get peer() {
        const { remoteAddress, remotePort } = socket;
        return remoteAddress ? `${remoteAddress}:${remotePort}` : 'unix';
      },
      macro: (name) => this.macroStore.get(name),
      macros: () => this.macroStore.all(),
    };
  }
}
