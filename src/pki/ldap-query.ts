/**
 * One search in one partner directory: the certificate attributes of the
 * entries whose mail is exactly one address. The directory belongs to someone
 * else, so everything about the exchange is bounded: connect time, time per
 * operation, entries, bytes; and a peer that does not speak LDAP is dropped
 * at its first byte instead of being waited for.
 */

import net from 'node:net';
import tls from 'node:tls';
import { Client, type Entry, EqualityFilter, ResultCodeError } from 'ldapts';
import type { LdapDirectoryAddress } from './ldap-url.js';

export interface LdapQueryOptions {
  readonly connectTimeoutMs: number;
  /** For each LDAP operation (bind, search) separately. */
  readonly timeoutMs: number;
  readonly sizeLimit: number;
  readonly maxResponseBytes: number;
  /** For ldaps:// (e.g. `{ ca }` for a private CA); Node's defaults otherwise. */
  readonly tls?: tls.ConnectionOptions;
  /** Simple bind before searching; anonymous without it. */
  readonly bind?: { readonly dn: string; readonly password: string };
}

export type CertificateAttribute = 'userCertificate' | 'userSMIMECertificate';

export interface DirectoryValue {
  readonly dn: string;
  readonly attribute: CertificateAttribute;
  readonly value: Buffer;
}

export interface DirectoryAnswer {
  readonly entries: number;
  /** The size limit was reached: there may be more entries than were read. */
  readonly limited: boolean;
  readonly values: DirectoryValue[];
}

/** The directory could not be asked or did not answer properly: a temporary failure. */
export class LdapQueryError extends Error {
  override readonly name = 'LdapQueryError';
}

const REQUESTED = ['userCertificate;binary', 'userCertificate', 'userSMIMECertificate'];

/**
 * Watches the bytes of one connection: an LDAP message is a BER SEQUENCE
 * (0x30), and the whole answer must stay under a byte budget. ldapts itself
 * would buffer garbage until the operation timeout and buffer any amount.
 */
class AnswerGuard {
  problem: string | undefined;
  private received = 0;

  constructor(private readonly maxBytes: number) {}

  watch<S extends net.Socket>(socket: S): S {
    // Prepended, so it runs before ldapts's own 'data' handler sees the chunk.
    socket.prependListener('data', (chunk: Buffer) => {
      if (this.received === 0 && chunk[0] !== 0x30) this.stop(socket, 'the answer is not LDAP');
      this.received += chunk.length;
      if (this.received > this.maxBytes)
        this.stop(socket, `the answer exceeds ${this.maxBytes} bytes`);
    });
    return socket;
  }

  private stop(socket: net.Socket, problem: string): void {
    this.problem ??= problem;
    socket.destroy(new Error(problem));
  }
}

function describe(err: unknown, opts: LdapQueryOptions): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  if (err.message === 'Connection timeout')
    return `no connection within ${opts.connectTimeoutMs} ms`;
  if (/Operation timed out/.test(err.message)) return `no answer within ${opts.timeoutMs} ms`;
  if (err instanceof ResultCodeError) {
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

function buffersOf(value: Entry[string]): Buffer[] {
  const list = Array.isArray(value) ? value : [value];
  // ldapts hands back as text whatever is valid UTF-8; no certificate is, but keep the bytes anyway.
  return list.map((v) => (Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8')));
}

function certificateAttribute(name: string): CertificateAttribute | undefined {
  const base = name.toLowerCase().replace(/;binary$/, '');
  if (base === 'usercertificate') return 'userCertificate';
  if (base === 'usersmimecertificate') return 'userSMIMECertificate';
  return undefined;
}

/**
 * Subtree search under the directory's base DN for `(mail=<mail>)`. The
 * filter is built as a structure, not parsed from text: the address travels
 * as the octets of an AttributeValueAssertion and cannot change the filter,
 * whatever characters it holds. Referrals are not followed.
 */
export async function searchByMail(
  directory: LdapDirectoryAddress,
  mail: string,
  opts: LdapQueryOptions,
): Promise<DirectoryAnswer> {
  const guard = new AnswerGuard(opts.maxResponseBytes);
  const client = new Client({
    url: directory.server,
    connectTimeout: opts.connectTimeoutMs,
    timeout: opts.timeoutMs,
    ...(opts.tls ? { tlsOptions: opts.tls } : {}),
    createConnection: ((port: number, host: string) =>
      guard.watch(net.connect(port, host))) as typeof net.connect,
    createSecureConnection: ((port: number, host: string, options?: tls.ConnectionOptions) =>
      guard.watch(tls.connect(port, host, options))) as typeof tls.connect,
  });
  try {
    if (opts.bind) await client.bind(opts.bind.dn, opts.bind.password);
    const { searchEntries } = await client.search(directory.baseDn, {
      scope: 'sub',
      derefAliases: 'never',
      filter: new EqualityFilter({ attribute: 'mail', value: mail }),
      sizeLimit: opts.sizeLimit,
      timeLimit: Math.max(1, Math.ceil(opts.timeoutMs / 1000)),
      attributes: REQUESTED,
      explicitBufferAttributes: REQUESTED,
    });
    // A server may ignore the size limit it was asked for.
    const entries = searchEntries.slice(0, opts.sizeLimit);
    const values: DirectoryValue[] = [];
    for (const entry of entries) {
      for (const [name, value] of Object.entries(entry)) {
        const attribute = name === 'dn' ? undefined : certificateAttribute(name);
        if (!attribute) continue;
        for (const v of buffersOf(value)) values.push({ dn: entry.dn, attribute, value: v });
      }
    }
    return { entries: entries.length, limited: searchEntries.length >= opts.sizeLimit, values };
  } catch (err) {
    throw new LdapQueryError(guard.problem ?? describe(err, opts));
  } finally {
    // Closes the socket in every case; a connection already gone makes this a no-op.
    await client.unbind().catch(() => {});
  }
}
