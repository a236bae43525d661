import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DnsAnswer, DnsClient } from '../../src/pki/dns-client.js';
import {
  DnsConfigError,
  parseServerAddress,
  systemResolver,
} from '../../src/pki/dns-server-address.js';
import { DNS_TYPE, DnsQueryError, decodeHeader, RCODE } from '../../src/pki/dns-wire.js';
import { type FakeDnsServer, nameWire, reply, startFakeDns } from '../helpers/dns-fake.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { freePort } from '../helpers/ports.js';

const SMIMEA = DNS_TYPE.SMIMEA;
const small = Buffer.from([3, 0, 0, 0xde, 0xad]);
const large = Buffer.concat([Buffer.from([3, 0, 0]), randomBytes(3000)]);

function found(a: DnsAnswer) {
  assert.equal(a.status, 'found', JSON.stringify(a));
  return a as Extract<DnsAnswer, { status: 'found' }>;
}
function failure(a: DnsAnswer): string {
  assert.equal(a.status, 'temporary-failure', JSON.stringify(a));
  return (a as Extract<DnsAnswer, { status: 'temporary-failure' }>).reason;
}

describe('DNS client against dnsmasq', () => {
  let dns: TestDnsServer;
  let client: DnsClient;
  before(async () => {
    dns = await startDnsServer({
      zone: 'zone.test',
      ipv6: true,
      records: [
        { name: 'small.zone.test', type: SMIMEA, data: small },
        { name: 'large.zone.test', type: SMIMEA, data: large },
      ],
      cnames: [
        { alias: 'alias.zone.test', target: 'small.zone.test' },
        { alias: 'dangling.zone.test', target: 'text.zone.test' },
      ],
      txt: [{ name: 'text.zone.test', text: 'no smimea here' }],
    });
    client = new DnsClient({ server: dns.address, timeoutMs: 2000 });
  });
  after(() => dns?.stop());

  it('finds a small record over UDP, rdata as raw bytes', async () => {
    const a = found(await client.query('small.zone.test', SMIMEA));
    assert.equal(a.transport, 'udp');
    assert.deepEqual(
      a.records.map((r) => r.data),
      [small],
    );
    assert.equal(a.authenticated, false);
  });

  it('falls back to TCP for a 3 KB record that UDP truncates', async () => {
    const a = found(await client.query('large.zone.test', SMIMEA));
    assert.equal(a.transport, 'tcp');
    assert.deepEqual(a.records[0]!.data, large);
  });

  it('the query name is case-insensitive', async () => {
    const a = found(await client.query('SMALL.Zone.Test.', SMIMEA));
    assert.deepEqual(a.records[0]!.data, small);
  });

  it('follows a CNAME inside the response', async () => {
    const a = found(await client.query('alias.zone.test', SMIMEA));
    assert.equal(a.records[0]!.name, 'small.zone.test');
    assert.deepEqual(a.records[0]!.data, small);
  });

  it('NXDOMAIN for an unknown name is not-found', async () => {
    assert.deepEqual(await client.query('nothing.zone.test', SMIMEA), {
      status: 'not-found',
      rcode: 'NXDOMAIN',
      authenticated: false,
    });
  });

  it('a name with other types only is NODATA: not-found', async () => {
    const a = await client.query('text.zone.test', SMIMEA);
    assert.deepEqual(a, { status: 'not-found', rcode: 'NODATA', authenticated: false });
  });

  it('a CNAME to a name without the type is NODATA', async () => {
    const a = await client.query('dangling.zone.test', SMIMEA);
    assert.equal(a.status === 'not-found' && a.rcode, 'NODATA');
  });

  it('REFUSED (a name outside the served zone) is a temporary failure', async () => {
    assert.match(failure(await client.query('elsewhere.example', SMIMEA)), /REFUSED/);
  });

  it('asks over IPv6 loopback', async () => {
    const v6 = new DnsClient({ server: `[::1]:${dns.port}`, timeoutMs: 2000 });
    assert.deepEqual(found(await v6.query('small.zone.test', SMIMEA)).records[0]!.data, small);
    assert.equal(found(await v6.query('large.zone.test', SMIMEA)).transport, 'tcp');
  });

  it('refuses a name it cannot encode before any traffic', async () => {
    await assert.rejects(client.query('bad name.zone.test', SMIMEA), DnsQueryError);
  });
});

describe('DNS client against misbehaving servers', () => {
  const fakes: FakeDnsServer[] = [];
  const fake = async (o: Parameters<typeof startFakeDns>[0]) => {
    const f = await startFakeDns(o);
    fakes.push(f);
    return f;
  };
  after(() => Promise.all(fakes.map((f) => f.close())));
  const answer = (q: Buffer) =>
    reply(q, { answers: [{ name: 'x.test', type: SMIMEA, data: small }] });
  const TIMEOUT = 300;
  const ATTEMPTS = 2;
  const MARGIN = 500;
  const timed = async (server: string) => {
    const c = new DnsClient({ server, timeoutMs: TIMEOUT, attempts: ATTEMPTS });
    const t0 = Date.now();
    const a = await c.query('x.test', SMIMEA);
    return { a, elapsed: Date.now() - t0 };
  };

  it('sends EDNS0 (payload 4096) with AD, and a fresh random ID per attempt', async () => {
    const f = await fake({ udp: () => undefined });
    await timed(f.address);
    assert.equal(f.udpQueries.length, ATTEMPTS);
    const [q1, q2] = f.udpQueries as [Buffer, Buffer];
    assert.equal(decodeHeader(q1).additionalCount, 1);
    assert.deepEqual(q1.subarray(-11), Buffer.from([0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]));
    assert.equal(decodeHeader(q1).authenticData, true);
    assert.notEqual(decodeHeader(q1).id, decodeHeader(q2).id);
  });

  it('reports the AD bit of the answer', async () => {
    const f = await fake({
      udp: (q) =>
        reply(q, { authenticData: true, answers: [{ name: 'x.test', type: SMIMEA, data: small }] }),
    });
    assert.equal(found((await timed(f.address)).a).authenticated, true);
  });

  it('nothing listening: temporary failure, connection refused, without waiting', async () => {
    const port = await freePort();
    const { a, elapsed } = await timed(`127.0.0.1:${port}`);
    assert.match(failure(a), /connection refused.*2 attempts/);
    assert.ok(elapsed < TIMEOUT, `${elapsed} ms`);
  });

  it('a UDP server that never answers: temporary failure after every attempt timed out', async () => {
    const f = await fake({ udp: () => undefined });
    const { a, elapsed } = await timed(f.address);
    assert.match(failure(a), /no answer within 300 ms \(2 attempts\)/);
    assert.ok(elapsed >= TIMEOUT * ATTEMPTS - 20, `${elapsed} ms`);
    assert.ok(elapsed < TIMEOUT * ATTEMPTS + MARGIN, `${elapsed} ms`);
    assert.equal(f.udpQueries.length, ATTEMPTS);
  });

  it('truncated over UDP and a TCP listener that never answers: failure within the attempts', async () => {
    const f = await fake({ udp: (q) => reply(q, { truncated: true }), tcp: 'hang' });
    const { a, elapsed } = await timed(f.address);
    assert.match(failure(a), /TCP: no complete answer within the 300 ms/);
    assert.ok(elapsed < TIMEOUT * ATTEMPTS + MARGIN, `${elapsed} ms`);
    assert.equal(f.tcpConnections(), ATTEMPTS);
  });

  it('truncated over UDP and nothing on TCP: temporary failure', async () => {
    const f = await fake({ udp: (q) => reply(q, { truncated: true }), tcp: 'close' });
    assert.match(failure((await timed(f.address)).a), /TCP: connection closed after 0 octets/);
  });

  it('truncated over UDP, answered over TCP', async () => {
    const f = await fake({ udp: (q) => reply(q, { truncated: true }), tcp: answer });
    const a = found((await timed(f.address)).a);
    assert.equal(a.transport, 'tcp');
    assert.equal(f.tcpQueries.length, 1);
  });

  it('a TCP answer that is truncated again is a failure', async () => {
    const f = await fake({
      udp: (q) => reply(q, { truncated: true }),
      tcp: (q) => reply(q, { truncated: true }),
    });
    assert.match(failure((await timed(f.address)).a), /truncated even over TCP/);
  });

  it('random bytes are ignored: temporary failure when no real answer comes', async () => {
    const f = await fake({ udp: () => [randomBytes(7), randomBytes(200)] });
    const { a, elapsed } = await timed(f.address);
    assert.match(failure(a), /no answer within 300 ms \(ignored 2 datagram\(s\)/);
    assert.ok(elapsed < TIMEOUT * ATTEMPTS + MARGIN, `${elapsed} ms`);
  });

  it('an answer with the wrong ID is ignored', async () => {
    const f = await fake({ udp: (q) => reply(q, { id: q.readUInt16BE(0) ^ 0x5a5a }) });
    assert.match(failure((await timed(f.address)).a), /wrong query ID/);
  });

  it('a spoofed answer with the wrong ID does not stop the real one', async () => {
    const f = await fake({
      udp: (q) => [
        reply(q, {
          id: q.readUInt16BE(0) ^ 1,
          answers: [{ name: 'x.test', type: SMIMEA, data: large.subarray(0, 50) }],
        }),
        answer(q),
      ],
    });
    assert.deepEqual(found((await timed(f.address)).a).records[0]!.data, small);
  });

  it('an answer to another question is ignored', async () => {
    const f = await fake({
      udp: (q) =>
        reply(q, { question: Buffer.concat([nameWire('y.test'), Buffer.from([0, 53, 0, 1])]) }),
    });
    assert.match(failure((await timed(f.address)).a), /question does not match/);
  });

  it('a reflected query (QR clear) is ignored', async () => {
    const f = await fake({
      udp: (q) =>
        reply(q, { notResponse: true, answers: [{ name: 'x.test', type: SMIMEA, data: small }] }),
    });
    assert.match(failure((await timed(f.address)).a), /not a response/);
  });

  it('our ID and question followed by garbage: malformed, failed at once', async () => {
    const f = await fake({
      udp: (q) => {
        const r = reply(q, { answers: [{ name: 'x.test', type: SMIMEA, data: small }] });
        return r.subarray(0, r.length - 3); // record data cut short, TC not set
      },
    });
    const { a, elapsed } = await timed(f.address);
    assert.match(failure(a), /malformed response: .*runs past the message/);
    assert.ok(elapsed < TIMEOUT, `${elapsed} ms`);
  });

  for (const [name, rcode] of [
    ['SERVFAIL', RCODE.SERVFAIL],
    ['FORMERR', RCODE.FORMERR],
    ['REFUSED', RCODE.REFUSED],
  ] as const) {
    it(`${name} is a temporary failure naming the RCODE, not retried`, async () => {
      const f = await fake({ udp: (q) => reply(q, { rcode }) });
      assert.match(failure((await timed(f.address)).a), new RegExp(`answered ${name}`));
      assert.equal(f.udpQueries.length, 1);
    });
  }

  it('records owned by names outside the CNAME chain are not taken', async () => {
    const f = await fake({
      udp: (q) => reply(q, { answers: [{ name: 'intruder.test', type: SMIMEA, data: small }] }),
    });
    assert.deepEqual((await timed(f.address)).a, {
      status: 'not-found',
      rcode: 'NODATA',
      authenticated: false,
    });
  });

  it('records of another class are not taken', async () => {
    const f = await fake({
      udp: (q) => reply(q, { answers: [{ name: 'x.test', type: SMIMEA, class: 3, data: small }] }),
    });
    assert.equal((await timed(f.address)).a.status, 'not-found');
  });

  it('a CNAME loop is a temporary failure', async () => {
    const f = await fake({
      udp: (q) =>
        reply(q, {
          answers: [
            { name: 'x.test', type: DNS_TYPE.CNAME, data: nameWire('y.test') },
            { name: 'y.test', type: DNS_TYPE.CNAME, data: nameWire('x.test') },
          ],
        }),
    });
    assert.match(failure((await timed(f.address)).a), /CNAME loop/);
  });

  it('a CNAME chain longer than 8 is a temporary failure', async () => {
    const f = await fake({
      udp: (q) =>
        reply(q, {
          answers: [
            { name: 'x.test', type: DNS_TYPE.CNAME, data: nameWire('c0.test') },
            ...Array.from({ length: 10 }, (_, i) => ({
              name: `c${i}.test`,
              type: DNS_TYPE.CNAME,
              data: nameWire(`c${i + 1}.test`),
            })),
            { name: 'c10.test', type: SMIMEA, data: small },
          ],
        }),
    });
    assert.match(failure((await timed(f.address)).a), /longer than 8/);
  });

  it('works over IPv6 loopback', async () => {
    const f = await fake({ udp: answer, host: '::1' });
    assert.equal(found((await timed(f.address)).a).transport, 'udp');
  });
});

describe('DNS client configuration', () => {
  it('parses resolver addresses', () => {
    assert.deepEqual(parseServerAddress('127.0.0.1:5353'), {
      host: '127.0.0.1',
      port: 5353,
      family: 4,
    });
    assert.deepEqual(parseServerAddress('192.0.2.1'), { host: '192.0.2.1', port: 53, family: 4 });
    assert.deepEqual(parseServerAddress('[::1]:53'), { host: '::1', port: 53, family: 6 });
    assert.deepEqual(parseServerAddress('2001:db8::1'), {
      host: '2001:db8::1',
      port: 53,
      family: 6,
    });
    for (const bad of [
      'resolver.example:53',
      '127.0.0.1:0',
      '127.0.0.1:65536',
      '127.0.0.1:x',
      '[127.0.0.1]:53',
      '',
    ])
      assert.throws(() => parseServerAddress(bad), DnsConfigError, bad);
  });

  it('rejects bad timeouts and attempt counts', () => {
    assert.throws(() => new DnsClient({ server: '127.0.0.1', timeoutMs: 0 }), DnsConfigError);
    assert.throws(() => new DnsClient({ server: '127.0.0.1', attempts: 0 }), DnsConfigError);
    assert.throws(
      () => new DnsClient({ server: '127.0.0.1', udpPayloadSize: 100 }),
      DnsConfigError,
    );
  });

  it('takes the first usable nameserver of resolv.conf', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'resolv-'));
    try {
      const file = join(dir, 'resolv.conf');
      await writeFile(
        file,
        '# comment\nsearch example\nnameserver not-an-ip\nnameserver fd00::53\nnameserver 192.0.2.53\n',
      );
      assert.equal(await systemResolver(file), '[fd00::53]:53');
      await writeFile(file, 'options edns0\n  nameserver 192.0.2.53 \n');
      assert.equal(await systemResolver(file), '192.0.2.53:53');
      await writeFile(file, 'search example\n');
      assert.equal(await systemResolver(file), undefined);
      assert.equal(await systemResolver(join(dir, 'missing')), undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
