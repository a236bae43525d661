/**
 * The milter server: accepts MTA connections on a TCP or unix socket and runs
 * one MilterConnection each. Closing drains: no new connections, open
 * messages finish, idle connections close, stragglers are cut at a deadline.
 */

import { promises as fs } from 'node:fs';
import net from 'node:net';
import type { MilterApplication } from './handler.js';
import { formatListenSpec, type ListenSpec } from './listen.js';
import { type ConnectionOptions, MilterConnection } from './session.js';

export interface ServerOptions extends ConnectionOptions {
  /** Connections beyond this are refused by the kernel-facing server. */
  readonly maxConnections?: number;
  /** Permissions of a unix socket (default 0o660: the MTA's group may connect). */
  readonly unixSocketMode?: number;
  /** Told whenever the number of open connections changes. */
  readonly onConnectionCount?: (count: number) => void;
}

export class MilterServer {
  private readonly server: net.Server;
  private readonly connections = new Set<MilterConnection>();
  private nextId = 1;
  private listening: ListenSpec | undefined;

  constructor(
    private readonly app: MilterApplication,
    private readonly options: ServerOptions = {},
  ) {
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server.maxConnections = options.maxConnections ?? 1000;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** The bound address; for `inet` with port 0, the port the kernel chose. */
  get address(): ListenSpec | undefined {
    const a = this.server.address();
    if (!this.listening) return undefined;
    if (this.listening.kind === 'inet' && a && typeof a === 'object') {
      return { kind: 'inet', host: this.listening.host, port: a.port };
    }
    return this.listening;
  }

  async listen(spec: ListenSpec): Promise<ListenSpec> {
    if (spec.kind === 'unix') await removeStaleSocket(spec.path);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      const done = () => {
        this.server.off('error', onError);
        resolve();
      };
      if (spec.kind === 'unix') this.server.listen(spec.path, done);
      else this.server.listen(spec.port, spec.host, done);
    });
    if (spec.kind === 'unix') await fs.chmod(spec.path, this.options.unixSocketMode ?? 0o660);
    this.listening = spec;
    return this.address!;
  }

  describe(): string {
    return this.address ? formatListenSpec(this.address) : 'not listening';
  }

  /**
   * Stops accepting, lets open messages finish, then resolves. Connections
   * still open after `drainTimeoutMs` are cut (the MTA applies its default
   * action, tempfail in our deploy files, so nothing is lost).
   */
  async close(drainTimeoutMs = 30_000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.connections) c.drain();
    const all = Promise.all([...this.connections].map((c) => c.done));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), drainTimeoutMs);
    });
    const outcome = await Promise.race([all, deadline]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.options.logger?.warn(
        { open: this.connections.size, drainTimeoutMs },
        'drain deadline passed, closing remaining milter connections',
      );
      for (const c of this.connections) c.destroy();
      await Promise.all([...this.connections].map((c) => c.done));
    }
    await closed;
  }

  private accept(socket: net.Socket): void {
    const conn = new MilterConnection(socket, this.app, this.nextId++, this.options);
    this.connections.add(conn);
    this.options.onConnectionCount?.(this.connections.size);
    void conn.done.then(() => {
      this.connections.delete(conn);
      this.options.onConnectionCount?.(this.connections.size);
    });
  }
}

/** A socket file left by a crashed process is removed; one in use is an error. */
async function removeStaleSocket(path: string): Promise<void> {
  const stat = await fs.lstat(path).catch(() => undefined);
  if (!stat) return;
  if (!stat.isSocket()) throw new Error(`${path} exists and is not a socket`);
  const inUse = await new Promise<boolean>((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (inUse) throw new Error(`${path} is in use by another process`);
  await fs.unlink(path);
}
