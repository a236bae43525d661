/**
 * Writes filter packets to the MTA's socket. Packets written in one turn of
 * the event loop leave in one system call (an end of message sends a dozen:
 * header edits, body chunks, the decision; a write each was the largest
 * single cost of the milter under load), and body replacement chunks are
 * written after their frame header rather than copied into a frame.
 */

import type { Socket } from 'node:net';
import { Rsp } from './constants.js';
import { MilterUsageError } from './errors.js';
import { frameHeader } from './frame.js';
import { encodeFilterPacket, type FilterPacket } from './replies.js';

export class PacketWriter {
  private corked = false;

  constructor(
    private readonly socket: Socket,
    /** True once the connection is closed for good: nothing more is written. */
    private readonly closed: () => boolean,
  ) {}

  /** Returns false when the socket's buffer is full (as Socket.write does). */
  write(p: FilterPacket): boolean {
    if (this.closed() || this.socket.destroyed) return true;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    if (p.type === 'replaceBody') {
      this.socket.write(frameHeader(Rsp.REPLBODY, p.chunk.length));
      return this.socket.write(p.chunk);
    }
    return this.socket.write(encodeFilterPacket(p));
  }

  /** Writes and, when the socket buffer is full, waits for it to drain (body replacement). */
  writeAndWait(p: FilterPacket): Promise<void> {
    if (this.closed()) return Promise.reject(new MilterUsageError('connection closed'));
    if (this.write(p)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }
}
