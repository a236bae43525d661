/**
 * Milter packet framing: a u32 big-endian length that counts the command byte,
 * the command byte, then the data. The decoder is incremental (any split of
 * bytes across reads, many packets per read) and never allocates what the
 * wire merely announces: a length over the bound is an error before any data
 * is buffered.
 */

import { MilterProtocolError } from './errors.js';

export interface Frame {
  readonly cmd: number;
  readonly data: Buffer;
}

/** Default bound on one packet: a 1 MiB body chunk (SMFIP_MDS_1M) plus slack. */
export const DEFAULT_MAX_FRAME = 1024 * 1024 + 1024;

/** The 5 octets before a frame's data: length (command byte included) and command. */
export function frameHeader(cmd: number, dataLength: number): Buffer {
  const out = Buffer.allocUnsafe(5);
  out.writeUInt32BE(dataLength + 1, 0);
  out[4] = cmd;
  return out;
}

export function encodeFrame(cmd: number, data?: Buffer | Uint8Array): Buffer {
  const dataLength = data ? data.length : 0;
  const out = Buffer.allocUnsafe(5 + dataLength);
  out.writeUInt32BE(dataLength + 1, 0);
  out[4] = cmd;
  if (data) out.set(data, 5);
  return out;
}

export class FrameDecoder {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the packet being assembled (command byte included), or -1 before its header. */
  private expected = -1;

  constructor(readonly maxFrameLength: number = DEFAULT_MAX_FRAME) {}

  /** Bytes received but not yet returned as frames. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** Feeds bytes; returns every frame completed by them. Throws MilterProtocolError. */
  push(chunk: Buffer): Frame[] {
    const frames: Frame[] = [];
    if (chunk.length === 0) return frames;
    if (this.buffered === 0) {
      // Fast path: frames lying whole inside this chunk are sliced, not copied.
      let offset = 0;
      while (chunk.length - offset >= 4) {
        const length = this.checkLength(chunk.readUInt32BE(offset));
        if (chunk.length - offset - 4 < length) break;
        frames.push({
          cmd: chunk[offset + 4]!,
          data: chunk.subarray(offset + 5, offset + 4 + length),
        });
        offset += 4 + length;
      }
      if (offset < chunk.length) this.append(chunk.subarray(offset));
      if (this.buffered >= 4) this.expected = this.checkLength(this.peekLength());
      return frames;
    }
    this.append(chunk);
    for (;;) {
      if (this.expected < 0) {
        if (this.buffered < 4) break;
        this.expected = this.checkLength(this.peekLength());
      }
      if (this.buffered < 4 + this.expected) break;
      const packet = this.take(4 + this.expected);
      this.expected = -1;
      frames.push({ cmd: packet[4]!, data: packet.subarray(5) });
    }
    return frames;
  }

  private checkLength(length: number): number {
    if (length === 0) throw new MilterProtocolError('packet with length 0 has no command byte');
    if (length > this.maxFrameLength) {
      throw new MilterProtocolError(
        `packet of ${length} bytes exceeds the limit of ${this.maxFrameLength} bytes`,
      );
    }
    return length;
  }

  private append(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    const head = Buffer.concat(this.chunks, Math.min(this.buffered, 8));
    return head.readUInt32BE(0);
  }

  /** Removes and returns exactly n buffered bytes. */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const head = this.chunks[0]!;
        const want = n - filled;
        if (head.length <= want) {
          out.set(head, filled);
          filled += head.length;
          this.chunks.shift();
        } else {
          out.set(head.subarray(0, want), filled);
          this.chunks[0] = head.subarray(want);
          filled += want;
        }
      }
    }
    this.buffered -= n;
    return out;
  }
}
