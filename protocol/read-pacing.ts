/**
 * When a connection's socket is read: not while more than a bound of its
 * packets wait to be handled (backpressure), and not twice in one turn of
 * the event loop after a read that filled libuv's buffer. libuv reads up to
 * 32 x 64 KiB from one socket per turn before it serves another; a peer
 * streaming a 25 MB body would make a small message's packets on another
 * connection wait behind 2 MiB of it instead of 64 KiB.
 */

import type { Socket } from 'node:net';

/** What libuv reads from a stream at most at once: a read this long means more is waiting. */
export const FULL_READ_BYTES = 64 * 1024;

export class ReadPacing {
  private backpressure = false;
  private yielding = false;

  constructor(
    private readonly socket: Socket,
    /** Bytes of packets that may wait to be handled before reading pauses. */
    private readonly maxQueuedBytes: number,
    private readonly closed: () => boolean,
  ) {}

  /** After a read of `length` bytes, with `queuedBytes` now waiting. */
  afterRead(length: number, queuedBytes: number): void {
    if (queuedBytes > this.maxQueuedBytes) this.backpressure = true;
    if (length >= FULL_READ_BYTES && !this.yielding) {
      this.yielding = true;
      setImmediate(() => {
        this.yielding = false;
        this.update();
      });
    }
    this.update();
  }

  /** After a packet was taken to be handled, with `queuedBytes` still waiting. */
  afterTake(queuedBytes: number): void {
    if (this.backpressure && queuedBytes <= this.maxQueuedBytes / 2) {
      this.backpressure = false;
      this.update();
    }
  }

  private update(): void {
    if (this.closed()) return;
    const pause = this.backpressure || this.yielding;
    if (pause && !this.socket.isPaused()) this.socket.pause();
    else if (!pause && this.socket.isPaused()) this.socket.resume();
  }
}
