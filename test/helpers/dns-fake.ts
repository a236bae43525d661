/**
 * Misbehaving DNS servers for unit tests: a UDP socket and a TCP listener on
 * one loopback port that answer whatever the test's functions return
 * (nothing, random bytes, a wrong ID, a truncated flag...). Plus a builder
 * for responses to a given query.
 */

import dgram from 'node:dgram';
import net from 'node:net';
import { decodeQuestions } from '../../src/pki/dns-wire.js';

/** The datagrams to send back for one query (none: stay silent). */
export type FakeHandler = (query: Buffer) => Buffer | readonly Buffer[] | undefined;

export interface FakeDnsOptions {
  readonly udp?: FakeHandler;
  /** 'hang': accept and never answer; 'close': accept and close; absent: no TCP listener. */
  readonly tcp?: 'hang' | 'close' | FakeHandler;
  readonly host?: '127.0.0.1' | '::1';
}

export interface FakeDnsServer {
  readonly port: number;
  readonly address: string;
  readonly udpQueries: Buffer[];
  readonly tcpQueries: Buffer[];
  tcpConnections(): number;
  close(): Promise<void>;
}

function bindUdp(host: string, handler: FakeHandler | undefined, seen: Buffer[]) {
  const socket = dgram.createSocket(host === '::1' ? 'udp6' : 'udp4');
  socket.on('message', (msg, rinfo) => {
    seen.push(msg);
    const out = handler?.(msg);
    for (const b of out === undefined ? [] : Array.isArray(out) ? out : [out as Buffer])
      socket.send(b, rinfo.port, rinfo.address);
  });
  return new Promise<dgram.Socket>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, host, () => resolve(socket));
  });
}

function listenTcp(
  host: string,
  port: number,
  mode: NonNullable<FakeDnsOptions['tcp']>,
  seen: Buffer[],
  sockets: Set<net.Socket>,
) {
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    if (mode === 'close') return s.destroy();
    if (mode === 'hang') return;
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
      const query = buf.subarray(2, 2 + buf.readUInt16BE(0));
      seen.push(query);
      const out = mode(query);
      for (const b of out === undefined ? [] : Array.isArray(out) ? out : [out as Buffer])
        s.write(Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]));
    });
  });
  return new Promise<net.Server>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

export async function startFakeDns(options: FakeDnsOptions): Promise<FakeDnsServer> {
  const host = options.host ?? '127.0.0.1';
  const udpQueries: Buffer[] = [];
  const tcpQueries: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  for (let i = 0; ; i++) {
    const udp = await bindUdp(host, options.udp, udpQueries);
    const port = udp.address().port;
    let tcp: net.Server | undefined;
    if (options.tcp) {
      try {
        tcp = await listenTcp(host, port, options.tcp, tcpQueries, sockets);
        tcp.on('connection', () => connections++);
      } catch (err) {
        udp.close();
        if (i < 5) continue; // the TCP port of that number was taken
        throw err;
      }
    }
    return {
      port,
      address: host === '::1' ? `[::1]:${port}` : `${host}:${port}`,
      udpQueries,
      tcpQueries,
      tcpConnections: () => connections,
      close: async () => {
        udp.close();
        for (const s of sockets) s.destroy();
        if (tcp) await new Promise((r) => tcp.close(r));
      },
    };
  }
}

/** A name in wire form, uncompressed. */
export function nameWire(name: string): Buffer {
  const labels = name === '' ? [] : name.split('.');
  return Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])),
    Buffer.from([0]),
  ]);
}

export interface FakeRecord {
  readonly name: string;
  readonly type: number;
  readonly data: Buffer;
  readonly class?: number;
  readonly ttl?: number;
}

export function recordWire(r: FakeRecord): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(r.type, 0);
  fixed.writeUInt16BE(r.class ?? 1, 2);
  fixed.writeUInt32BE(r.ttl ?? 60, 4);
  fixed.writeUInt16BE(r.data.length, 8);
  return Buffer.concat([nameWire(r.name), fixed, r.data]);
}

export interface ReplyOptions {
  readonly rcode?: number;
  readonly answers?: readonly FakeRecord[];
  readonly additionals?: readonly FakeRecord[];
  readonly truncated?: boolean;
  readonly authenticData?: boolean;
  /** Replace the query's ID. */
  readonly id?: number;
  /** Replace the question section (raw). */
  readonly question?: Buffer;
  /** Clear the QR bit (a reflected query). */
  readonly notResponse?: boolean;
}

/** A response to `query`: its ID and question, the given flags and answers. */
export function reply(query: Buffer, o: ReplyOptions = {}): Buffer {
  const questionEnd = decodeQuestions(query).end;
  const question = o.question ?? query.subarray(12, questionEnd);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(o.id ?? query.readUInt16BE(0), 0);
  const flags =
    (o.notResponse ? 0 : 0x8000) |
    (o.truncated ? 0x0200 : 0) |
    0x0100 |
    0x0080 |
    (o.authenticData ? 0x0020 : 0) |
    ((o.rcode ?? 0) & 0xf);
  header.writeUInt16BE(flags, 2);
  header.writeUInt16BE(o.question?.length === 0 ? 0 : 1, 4);
  header.writeUInt16BE(o.answers?.length ?? 0, 6);
  header.writeUInt16BE(o.additionals?.length ?? 0, 10);
  return Buffer.concat([
    header,
    question,
    ...(o.answers ?? []).map(recordWire),
    ...(o.additionals ?? []).map(recordWire),
  ]);
}
