/**
 * A stub resolver for one question at a time against one configured
 * recursive resolver. Node's `dns` module cannot ask for arbitrary types
 * (SMIMEA is 53), hence this. UDP with EDNS0 first, TCP when the answer is
 * truncated (SMIMEA records carry whole certificates). A response counts
 * only if it comes from the resolver's address (connected socket), carries
 * our random ID, is a response and repeats our question; anything else is
 * ignored, so a stray or spoofed datagram cannot end a lookup early.
 */

import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import {
  DnsConfigError,
  type DnsServerAddress,
  formatServerAddress,
  parseServerAddress,
} from './dns-server-address.js';
import {
  canonicalName,
  DNS_CLASS_IN,
  DNS_TYPE,
  type DnsMessage,
  type DnsRecord,
  decodeHeader,
  decodeMessage,
  decodeQuestions,
  encodeQuery,
  RCODE,
  rcodeName,
} from './dns-wire.js';

export type DnsAnswer =
  | {
      readonly status: 'found';
      /** Records of the asked type, owned by the name or the end of its CNAME chain. */
      readonly records: readonly DnsRecord[];
      /** The resolver set AD: it validated the answer with DNSSEC. */
      readonly authenticated: boolean;
      readonly transport: 'udp' | 'tcp';
    }
  | {
      readonly status: 'not-found';
      readonly rcode: 'NXDOMAIN' | 'NODATA';
      readonly authenticated: boolean;
    }
  | { readonly status: 'temporary-failure'; readonly reason: string };

/** What a certificate source needs from DNS (DnsClient, or a fake in tests). */
export interface DnsResolver {
  query(name: string, type: number): Promise<DnsAnswer>;
}

export interface DnsClientOptions {
  /** The recursive resolver: "host:port", "[v6]:port" or a bare address (port 53). */
  readonly server: string;
  /** Time for one attempt, UDP plus any TCP fallback, in ms. Default 2000. */
  readonly timeoutMs?: number;
  /** Attempts before the lookup fails temporarily. Default 2. */
  readonly attempts?: number;
  /** EDNS0 UDP payload size we advertise. Default 4096. */
  readonly udpPayloadSize?: number;
}

/** A failure of one attempt; the next attempt may succeed. */
class AttemptError extends Error {}

interface Expected {
  readonly id: number;
  readonly name: string;
  readonly type: number;
}

type Judged =
  | { readonly kind: 'ignore'; readonly reason: string }
  | { readonly kind: 'truncated' }
  | { readonly kind: 'malformed'; readonly reason: string }
  | { readonly kind: 'message'; readonly message: DnsMessage };

/** Whether `buf` answers our query, and if so what it says. */
function judge(buf: Buffer, expect: Expected): Judged {
  if (buf.length < 12) return { kind: 'ignore', reason: 'shorter than a DNS header' };
  const header = decodeHeader(buf);
  if (header.id !== expect.id) return { kind: 'ignore', reason: 'wrong query ID' };
  if (!header.response || header.opcode !== 0)
    return { kind: 'ignore', reason: 'not a response to a standard query' };
  let questions: ReturnType<typeof decodeQuestions>['questions'];
  try {
    questions = decodeQuestions(buf).questions;
  } catch (err) {
    return { kind: 'ignore', reason: `unreadable question: ${(err as Error).message}` };
  }
  const q = questions[0];
  if (
    questions.length !== 1 ||
    q!.name !== expect.name ||
    q!.type !== expect.type ||
    q!.class !== DNS_CLASS_IN
  )
    return { kind: 'ignore', reason: 'question does not match ours' };
  if (header.truncated) return { kind: 'truncated' };
  try {
    return { kind: 'message', message: decodeMessage(buf) };
  } catch (err) {
    return { kind: 'malformed', reason: `malformed response: ${(err as Error).message}` };
  }
}

function describeSocketError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') return 'connection refused (nothing listening)';
  if (code === 'ECONNRESET') return 'connection reset';
  return code ? `${code}: ${err.message}` : err.message;
}

export class DnsClient implements DnsResolver {
  readonly server: DnsServerAddress;
  readonly timeoutMs: number;
  readonly attempts: number;
  private readonly udpPayloadSize: number;

  constructor(options: DnsClientOptions) {
    this.server = parseServerAddress(options.server);
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.attempts = options.attempts ?? 2;
    this.udpPayloadSize = options.udpPayloadSize ?? 4096;
    if (!Number.isInteger(this.timeoutMs) || this.timeoutMs < 1)
      throw new DnsConfigError(`DNS timeout ${this.timeoutMs}: a positive number of ms`);
    if (!Number.isInteger(this.attempts) || this.attempts < 1 || this.attempts > 10)
      throw new DnsConfigError(`DNS attempts ${this.attempts}: 1 to 10`);
    if (
      !Number.isInteger(this.udpPayloadSize) ||
      this.udpPayloadSize < 512 ||
      this.udpPayloadSize > 65_535
    )
      throw new DnsConfigError(`EDNS0 payload size ${this.udpPayloadSize}: 512 to 65535`);
  }

  /** Throws DnsQueryError for a name that cannot be asked; every network outcome is an answer. */
  async query(name: string, type: number): Promise<DnsAnswer> {
    const qname = canonicalName(name);
    encodeQuery({ id: 0, name: qname, type }); // refuses a bad name before any traffic
    let last = '';
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      const deadline = Date.now() + this.timeoutMs;
      try {
        const { message, transport } = await this.exchange(qname, type, deadline);
        return interpret(message, qname, type, transport);
      } catch (err) {
        if (!(err instanceof AttemptError)) throw err;
        last = err.message;
      }
    }
    const tries = this.attempts === 1 ? '1 attempt' : `${this.attempts} attempts`;
    return {
      status: 'temporary-failure',
      reason: `DNS ${formatServerAddress(this.server)}: ${last} (${tries})`,
    };
  }

  private async exchange(
    name: string,
    type: number,
    deadline: number,
  ): Promise<{ message: DnsMessage; transport: 'udp' | 'tcp' }> {
    const udp = { id: randomInt(0, 0x10000), name, type };
    const judged = await this.overUdp(udp, deadline);
    if (judged.kind === 'message') return { message: judged.message, transport: 'udp' };
    const tcp = { id: randomInt(0, 0x10000), name, type };
    return { message: await this.overTcp(tcp, deadline), transport: 'tcp' };
  }

  private encode(expect: Expected): Buffer {
    return encodeQuery({
      ...expect,
      udpPayloadSize: this.udpPayloadSize,
      authenticData: true,
    });
  }

  /** The response, or `truncated` when the answer needs TCP. */
  private overUdp(
    expect: Expected,
    deadline: number,
  ): Promise<Extract<Judged, { kind: 'message' | 'truncated' }>> {
    const query = this.encode(expect);
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket(this.server.family === 6 ? 'udp6' : 'udp4');
      let ignored = 0;
      let lastIgnored = '';
      let settled = false;
      const settle = (then: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.close();
        then();
      };
      const timer = setTimeout(
        () =>
          settle(() =>
            reject(
              new AttemptError(
                `no answer within ${this.timeoutMs} ms` +
                  (ignored > 0 ? ` (ignored ${ignored} datagram(s): ${lastIgnored})` : ''),
              ),
            ),
          ),
        Math.max(0, deadline - Date.now()),
      );
      socket.on('error', (err) =>
        settle(() => reject(new AttemptError(`UDP: ${describeSocketError(err)}`))),
      );
      socket.on('message', (buf) => {
        const j = judge(buf, expect);
        if (j.kind === 'ignore') {
          ignored++;
          lastIgnored = j.reason;
        } else if (j.kind === 'malformed') settle(() => reject(new AttemptError(j.reason)));
        else settle(() => resolve(j));
      });
      socket.connect(this.server.port, this.server.host, () => {
        if (!settled) socket.send(query);
      });
    });
  }

  private overTcp(expect: Expected, deadline: number): Promise<DnsMessage> {
    const query = this.encode(expect);
    const framed = Buffer.concat([Buffer.from([query.length >> 8, query.length & 0xff]), query]);
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: this.server.host, port: this.server.port });
      const chunks: Buffer[] = [];
      let received = 0;
      let settled = false;
      const settle = (then: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        then();
      };
      const fail = (reason: string) => settle(() => reject(new AttemptError(`TCP: ${reason}`)));
      const timer = setTimeout(
        () =>
          fail(
            `no complete answer within the ${this.timeoutMs} ms of the attempt (${received} octets received)`,
          ),
        Math.max(0, deadline - Date.now()),
      );
      socket.on('connect', () => socket.write(framed));
      socket.on('error', (err) => fail(describeSocketError(err)));
      socket.on('close', () => fail(`connection closed after ${received} octets`));
      socket.on('data', (d: Buffer) => {
        chunks.push(d);
        received += d.length;
        if (received < 2) return;
        const all = Buffer.concat(chunks);
        const length = all.readUInt16BE(0);
        if (received < 2 + length) return;
        const j = judge(all.subarray(2, 2 + length), expect);
        if (j.kind === 'message') settle(() => resolve(j.message));
        else if (j.kind === 'truncated') fail('response truncated even over TCP');
        else fail(j.reason);
      });
    });
  }
}

const MAX_CNAME_HOPS = 8;

/** RCODE and answer section to an answer, following CNAMEs only inside this response. */
function interpret(
  message: DnsMessage,
  name: string,
  type: number,
  transport: 'udp' | 'tcp',
): DnsAnswer {
  const authenticated = message.header.authenticData;
  if (message.rcode === RCODE.NXDOMAIN)
    return { status: 'not-found', rcode: 'NXDOMAIN', authenticated };
  if (message.rcode !== RCODE.NOERROR)
    return {
      status: 'temporary-failure',
      reason: `DNS: the resolver answered ${rcodeName(message.rcode)} for ${name}`,
    };
  const inClass = message.answers.filter((r) => r.class === DNS_CLASS_IN);
  const seen = new Set<string>();
  let owner = name;
  for (let hop = 0; hop <= MAX_CNAME_HOPS; hop++) {
    const records = inClass.filter((r) => r.type === type && r.name === owner);
    if (records.length > 0) return { status: 'found', records, authenticated, transport };
    const alias = inClass.find((r) => r.type === DNS_TYPE.CNAME && r.name === owner);
    if (!alias?.target) return { status: 'not-found', rcode: 'NODATA', authenticated };
    seen.add(owner);
    owner = alias.target;
    if (seen.has(owner))
      return { status: 'temporary-failure', reason: `DNS: CNAME loop at ${owner}` };
  }
  return {
    status: 'temporary-failure',
    reason: `DNS: CNAME chain from ${name} longer than ${MAX_CNAME_HOPS}`,
  };
}
