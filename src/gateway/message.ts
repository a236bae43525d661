/**
 * The message as the MTA handed it to us, rebuilt from milter events:
 * header fields (name and value exactly as sent, folding in LF form on the
 * wire) and body chunks (CRLF already), into the RFC 5322 bytes the
 * transform works on.
 */

import { concatSliced } from '../util/slices.js';

export interface ReceivedHeader {
  readonly name: string;
  /** The value as sent, with its leading whitespace (HDR_LEADSPC negotiated) or without. */
  readonly value: Buffer;
}

const CRLF = Buffer.from('\r\n');

/** Folded lines arrive joined by bare LF: back to CRLF for the message bytes. */
function crlfValue(value: Buffer): Buffer {
  if (!value.includes(0x0a)) return value;
  const s = value.toString('latin1').replace(/\r?\n/g, '\r\n');
  return Buffer.from(s, 'latin1');
}

export function headerBytes(h: ReceivedHeader, leadingSpaceKept: boolean): Buffer {
  // Without HDR_LEADSPC the MTA stripped exactly one space after the colon.
  const sep = leadingSpaceKept ? ':' : ': ';
  return Buffer.concat([Buffer.from(`${h.name}${sep}`, 'latin1'), crlfValue(h.value), CRLF]);
}

/** headerBytes(h, leadingSpaceKept).length, without building the bytes. */
export function headerLength(h: ReceivedHeader, leadingSpaceKept: boolean): number {
  let bareLf = 0;
  for (let p = h.value.indexOf(0x0a); p >= 0; p = h.value.indexOf(0x0a, p + 1))
    if (p === 0 || h.value[p - 1] !== 0x0d) bareLf++;
  return h.name.length + (leadingSpaceKept ? 1 : 2) + h.value.length + bareLf + CRLF.length;
}

/** The message's pieces in order: each header field, the blank line, the body chunks. */
function receivedParts(
  headers: readonly ReceivedHeader[],
  body: readonly Buffer[],
  leadingSpaceKept: boolean,
): Buffer[] {
  return [...headers.map((h) => headerBytes(h, leadingSpaceKept)), CRLF, ...body];
}

export function assembleReceived(
  headers: readonly ReceivedHeader[],
  body: readonly Buffer[],
  leadingSpaceKept: boolean,
): Buffer {
  return Buffer.concat(receivedParts(headers, body, leadingSpaceKept));
}

/**
 * The message as it arrives: header fields and body chunks, counted as
 * assembled. Once over `limit` bytes the body is no longer kept (what was
 * kept is dropped), so a huge message costs its header fields, not its size.
 * Header fields stay: spoofed Authentication-Results must still be found.
 */
export class ReceivedMessage {
  readonly headers: ReceivedHeader[] = [];
  private readonly chunks: Buffer[] = [];
  /** Bytes as assembled so far, the blank line included. */
  private bytes = CRLF.length;
  private held = 0;
  private over = false;

  constructor(
    readonly limit: number,
    private readonly leadingSpaceKept: boolean,
  ) {}

  get size(): number {
    return this.bytes;
  }

  get oversized(): boolean {
    return this.over;
  }

  /** Body bytes currently kept in memory. */
  get heldBytes(): number {
    return this.held;
  }

  addHeader(name: string, value: Buffer): void {
    const field = { name, value };
    this.headers.push(field);
    this.grow(headerLength(field, this.leadingSpaceKept));
  }

  addBody(chunk: Buffer): void {
    if (!this.over) {
      this.chunks.push(chunk);
      this.held += chunk.length;
    }
    this.grow(chunk.length);
  }

  /** The RFC 5322 bytes; only while not oversized. */
  assemble(): Buffer {
    if (this.over) throw new Error('an oversized message was not kept');
    return assembleReceived(this.headers, this.chunks, this.leadingSpaceKept);
  }

  /**
   * The message for the transform, copied a slice per turn of the event loop
   * (a 25 MB copy at once stalls the other connections); the chunks are let
   * go at once, so they are not held beside the transform's own copies.
   * `shared`: in shared memory, for a transform worker to read without
   * another copy of it here.
   */
  async take(shared = false): Promise<Buffer> {
    if (this.over) throw new Error('an oversized message was not kept');
    const parts = receivedParts(this.headers, this.chunks, this.leadingSpaceKept);
    this.chunks.length = 0;
    this.held = 0;
    return concatSliced(parts, shared);
  }

  private grow(n: number): void {
    this.bytes += n;
    if (!this.over && this.bytes > this.limit) {
      this.over = true;
      this.chunks.length = 0;
      this.held = 0;
    }
  }
}
