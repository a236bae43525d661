/**
 * One bounded LDAP session with a directory that belongs to someone else (a
 * partner's directory, or whatever server a certificate names): connect
 * time, time per operation and bytes are capped, a peer that does not speak
 * LDAP is dropped at its first byte instead of being waited for, referrals
 * are never followed, and the connection is closed whatever happens.
 */

import net from 'node:net';
import tls from 'node:tls';
import { Client, type Entry, ResultCodeError } from 'ldapts';

export interface LdapSessionOptions {
  readonly connectTimeoutMs: number;
  /** For each LDAP operation (bind, search) separately. */
  readonly timeoutMs: number;
  /** Every byte the server sends in this session, all messages together. */
  readonly maxResponseBytes: number;
  /** For ldaps:// (e.g. `{ ca }` for a private CA); Node's defaults otherwise. */
  readonly tls?: tls.ConnectionOptions;
  /** Simple bind before the work; anonymous without it. */
  readonly bind?: { readonly dn: string; readonly password: string };
}

/** The directory could not be asked or did not answer properly: a temporary failure. */
export class LdapQueryError extends Error {
  override readonly name = 'LdapQueryError';
}

/** What a search asks the server to spend at most, in its own unit (whole seconds). */
export const serverTimeLimit = (opts: LdapSessionOptions): number =>
  Math.max(1, Math.ceil(opts.timeoutMs / 1000));

/** The values of one attribute of a search entry, as bytes. */
export function buffersOf(value: Entry[string]): Buffer[] {
  const list = Array.isArray(value) ? value : [value];
  // ldapts hands back as text whatever is valid UTF-8 (unless asked for by its
  // exact name in explicitBufferAttributes); the text is those bytes, decoded.
  return list.map((v) => (Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8')));
}

const SEQUENCE = 0x30;
type Emit = (event: string | symbol, ...args: unknown[]) => boolean;

/**
 * Stands between the socket and ldapts: every LDAP message must be a BER
 * SEQUENCE (0x30) of definite length, and the whole answer must stay under a
 * byte budget. Whole messages are handed on, one at a time: ldapts would
 * otherwise buffer garbage until the operation timeout, buffer any amount,
 * and copy its buffer again for every chunk received (quadratic: measured
 * on loopback, a 15 MiB answer took 0.6 to 3 s and blocked the event loop
 * for up to 0.3 s at a time; framed first, 0.1 to 0.4 s and under 0.05 s).
 * Exported for its tests.
 */
export class AnswerFramer {
  problem: string | undefined;
  private received = 0;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the message at the head of the buffer, header included, once its header is in. */
  private needed: number | undefined;

  constructor(private readonly maxBytes: number) {}

  attach<S extends net.Socket>(socket: S): S {
    const emit = socket.emit.bind(socket) as Emit;
    // Readable streams deliver through emit('data'); intercepting it here
    // decides what every 'data' listener (ldapts's) sees.
    (socket as unknown as { emit: Emit }).emit = (event, ...args) => {
      if (event !== 'data' || !Buffer.isBuffer(args[0])) return emit(event, ...args);
      for (const message of this.take(socket, args[0])) emit('data', message);
      return true;
    };
    return socket;
  }

  private take(socket: net.Socket, chunk: Buffer): Buffer[] {
    if (this.problem) return [];
    this.received += chunk.length;
    if (this.received > this.maxBytes)
      return this.stop(socket, `the answer exceeds ${this.maxBytes} bytes`);
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const messages: Buffer[] = [];
    for (;;) {
      this.needed ??= this.headLength(socket);
      if (this.problem) return messages; // the whole ones before the fault
      if (this.needed === undefined || this.buffered < this.needed) return messages;
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      messages.push(all.subarray(0, this.needed));
      const rest = all.subarray(this.needed);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      this.needed = undefined;
    }
  }

  /** Length of the message starting the buffer, or undefined while its header is incomplete. */
  private headLength(socket: net.Socket): number | undefined {
    if (this.buffered === 0) return undefined;
    const head = this.chunks[0]!.length >= 6 ? this.chunks[0]! : Buffer.concat(this.chunks);
    if (head[0] !== SEQUENCE) return void this.stop(socket, 'the answer is not LDAP');
    if (head.length < 2) return undefined;
    const first = head[1]!;
    if (first < 0x80) return 2 + first;
    const octets = first & 0x7f;
    // 0x80 is BER's indefinite length, which LDAP excludes; over 4 octets is over 4 GiB.
    if (octets === 0 || octets > 4) return void this.stop(socket, 'the answer is not LDAP');
    if (head.length < 2 + octets) return undefined;
    let length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + head[2 + i]!;
    return 2 + octets + length;
  }

  private stop(socket: net.Socket, problem: string): [] {
    this.problem ??= problem;
    this.chunks = [];
    socket.destroy(new Error(problem));
    return [];
  }
}

function describe(err: unknown, opts: LdapSessionOptions): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  if (err.message === 'Connection timeout')
    return `no connection within ${opts.connectTimeoutMs} ms`;
  if (/Operation timed out/.test(err.message)) return `no answer within ${opts.timeoutMs} ms`;
  if (err instanceof ResultCodeError) {
    if (err.code === 10) return 'the directory answered with a referral, which is not followed';
    // "InvalidCredentialsError" -> "invalid credentials"; the server's own words when it gave any.
    const what = err.name
      .replace(/Error$/, '')
      .replace(/([a-z])([A-Z])/g, '$1 $2')
      .toLowerCase();
    const said = err.message.replace(/\s*Code: 0x[0-9a-f]+$/i, '').trim();
    return `the directory refused: ${what} (result code ${err.code})${said ? `: ${said}` : ''}`;
  }
  const text = err.message.split('\n').filter(Boolean).join(': ');
  return typeof code === 'string' && !text.includes(code) ? `${text} (${code})` : text;
}

/**
 * Connects to `server` (`ldap://host:port` or `ldaps://host:port`), binds
 * when asked to, runs `work`, and closes. Whatever goes wrong on the way
 * comes out as an LdapQueryError saying why in plain words; so does an
 * error `work` throws itself.
 */
export async function withLdapSession<T>(
  server: string,
  opts: LdapSessionOptions,
  work: (client: Client) => Promise<T>,
): Promise<T> {
  const framer = new AnswerFramer(opts.maxResponseBytes);
  const client = new Client({
    url: server,
    connectTimeout: opts.connectTimeoutMs,
    timeout: opts.timeoutMs,
    // ldapts speaks TLS on ldap:// too when given TLS options: give them to ldaps:// only.
    ...(opts.tls && server.startsWith('ldaps:') ? { tlsOptions: opts.tls } : {}),
    createConnection: ((port: number, host: string) =>
      framer.attach(net.connect(port, host))) as typeof net.connect,
    createSecureConnection: ((port: number, host: string, options?: tls.ConnectionOptions) =>
      framer.attach(tls.connect(port, host, options))) as typeof tls.connect,
  });
  try {
    if (opts.bind) await client.bind(opts.bind.dn, opts.bind.password);
    return await work(client);
  } catch (err) {
    if (err instanceof LdapQueryError) throw err;
    throw new LdapQueryError(framer.problem ?? describe(err, opts));
  } finally {
    // Closes the socket in every case; a connection already gone makes this a no-op.
    await client.unbind().catch(() => {});
  }
}
