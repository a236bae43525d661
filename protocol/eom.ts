/**
 * End-of-message modifications: each is checked against the negotiated
 * actions and written at once, in call order, before the final decision.
 */

import { Action, type ActionName, MILTER_CHUNK_SIZE } from './constants.js';
import { MilterUsageError } from './errors.js';
import type { EndOfMessage } from './handler.js';
import type { HeaderValue, Modification } from './replies.js';

export interface ModificationSink {
  readonly actions: number;
  /** Writes one packet; resolves when the socket can take more. */
  send(m: Modification): Promise<void>;
}

export class EndOfMessageEditor implements EndOfMessage {
  private open = true;
  private lastWasBody = false;
  private bodyDone = false;
  private bodyInProgress = false;

  constructor(private readonly sink: ModificationSink) {}

  /** True while a body replacement is being written (no other packet may come between). */
  get replacingBody(): boolean {
    return this.bodyInProgress;
  }

  /** No modification is accepted after the final decision. */
  close(): void {
    this.open = false;
  }

  addHeader(name: string, value: HeaderValue): Promise<void> {
    return this.edit('ADDHDRS', { type: 'addHeader', name, value });
  }

  insertHeader(index: number, name: string, value: HeaderValue): Promise<void> {
    return this.edit('ADDHDRS', { type: 'insertHeader', index, name, value });
  }

  changeHeader(name: string, index: number, value: HeaderValue): Promise<void> {
    return this.edit('CHGHDRS', { type: 'changeHeader', name, index, value });
  }

  deleteHeader(name: string, index: number): Promise<void> {
    return this.edit('CHGHDRS', { type: 'changeHeader', name, index, value: '' });
  }

  addRecipient(address: string, args?: string): Promise<void> {
    if (args === undefined) return this.edit('ADDRCPT', { type: 'addRecipient', address });
    return this.edit('ADDRCPT_PAR', { type: 'addRecipient', address, args });
  }

  deleteRecipient(address: string): Promise<void> {
    return this.edit('DELRCPT', { type: 'deleteRecipient', address });
  }

  changeFrom(address: string, args?: string): Promise<void> {
    const m: Modification =
      args === undefined ? { type: 'changeFrom', address } : { type: 'changeFrom', address, args };
    return this.edit('CHGFROM', m);
  }

  quarantine(reason: string): Promise<void> {
    return this.edit('QUARANTINE', { type: 'quarantine', reason });
  }

  async progress(): Promise<void> {
    this.check(undefined);
    // Progress is no edit: it may sit between other packets but never inside a body replacement.
    if (this.bodyInProgress) return;
    await this.sink.send({ type: 'progress' });
  }

  /**
   * The new body, in as many pieces as convenient. The pieces are written to
   * the socket without a copy: they must not change until the message ends.
   */
  async replaceBody(body: Buffer | Iterable<Buffer> | AsyncIterable<Buffer>): Promise<void> {
    this.check('CHGBODY');
    if (this.bodyInProgress)
      throw new MilterUsageError('replaceBody called while another is running');
    if (this.bodyDone && !this.lastWasBody) {
      throw new MilterUsageError(
        'body replacement must be contiguous: another edit came in between',
      );
    }
    this.bodyInProgress = true;
    try {
      const source = Buffer.isBuffer(body) ? [body] : body;
      let sent = false;
      for await (const piece of source) {
        for (let off = 0; off < piece.length; off += MILTER_CHUNK_SIZE) {
          this.check('CHGBODY');
          await this.sink.send({
            type: 'replaceBody',
            chunk: piece.subarray(off, off + MILTER_CHUNK_SIZE),
          });
          sent = true;
        }
      }
      // An empty new body is still a replacement: one empty packet says so.
      if (!sent) {
        this.check('CHGBODY');
        await this.sink.send({ type: 'replaceBody', chunk: Buffer.alloc(0) });
      }
    } finally {
      this.bodyInProgress = false;
    }
    this.bodyDone = true;
    this.lastWasBody = true;
  }

  /** Async so that every misuse surfaces as a rejection; the packet is still written synchronously. */
  private async edit(action: ActionName, m: Modification): Promise<void> {
    this.check(action);
    if (this.bodyInProgress)
      throw new MilterUsageError('no other edit may come inside a body replacement');
    this.lastWasBody = false;
    await this.sink.send(m);
  }

  private check(action: ActionName | undefined): void {
    if (!this.open)
      throw new MilterUsageError('modification after the final end-of-message decision');
    if (action !== undefined && (this.sink.actions & Action[action]) === 0) {
      throw new MilterUsageError(`action ${action} was not negotiated with the MTA`);
    }
  }
}
