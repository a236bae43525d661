import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import {
  type FakeServer,
  fakeServer,
  garbageServer,
  hangingServer,
  resettingServer,
} from '../helpers/fake-tcp.js';
import { dca, nonsense, ou, person, recordingSource } from '../helpers/ldap-fixtures.js';
import { freePort } from '../helpers/ports.js';
import { startSlapd, type TestSlapd } from '../helpers/slapd.js';
import { until } from '../helpers/wait.js';

function openSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - start };
}

/**
 * Directories that are down, hang, reset or talk nonsense: each is a temporary
 * failure within its time bound, and the next directory (a real slapd
 * holding example.org) is still asked.
 */
describe('LDAP directories that fail', () => {
  let org: DomainPki;
  let a: TestSlapd;
  let closedUrl: string;
  const fakes: FakeServer[] = [];
  const aPartners = () => a.url('ou=partners,dc=example,dc=net');
  const fake = async (server: Promise<FakeServer>) => {
    const f = await server;
    fakes.push(f);
    return f;
  };

  before(async () => {
    org = await generateDomainPki('example.org', { algo: 'ec-p256' });
    a = await startSlapd({
      entries: [
        ou('partners', 'dc=example,dc=net'),
        person('org', 'ou=partners,dc=example,dc=net', dca('example.org'), {
          'userCertificate;binary': [org.encryption.certificate.der],
        }),
      ],
    });
    closedUrl = `ldap://127.0.0.1:${await freePort()}/dc=example,dc=net`;
  });

  after(async () => {
    await Promise.all([a?.stop(), ...fakes.map((f) => f.close())]);
  });

  it('a directory that is down is a temporary failure naming it, and the next is still asked', async () => {
    const found = recordingSource([closedUrl, aPartners()]);
    const r1 = await found.s.lookup('example.org', new Date());
    assert.equal(r1.status, 'found');
    assert.equal(found.notes[0]?.directory, closedUrl);
    assert.match(found.notes[0]?.message ?? '', /ECONNREFUSED/);

    const r2 = await recordingSource([closedUrl, aPartners()]).s.lookup(
      'nobody.example',
      new Date(),
    );
    assert.equal(r2.status, 'temporary-failure');
    assert.ok(
      r2.status === 'temporary-failure' && r2.reason.includes(closedUrl),
      JSON.stringify(r2),
    );
    assert.match(r2.status === 'temporary-failure' ? r2.reason : '', /ECONNREFUSED/);
  });

  it('a server that accepts and never answers fails within the operation timeout', async () => {
    const hanging = await fake(hangingServer());
    const url = `ldap://127.0.0.1:${hanging.port}/dc=example,dc=net`;
    const { value: r, ms } = await timed(() =>
      recordingSource([url], { timeoutMs: 400 }).s.lookup('example.org', new Date()),
    );
    assert.equal(r.status, 'temporary-failure');
    assert.match(r.status === 'temporary-failure' ? r.reason : '', /no answer within 400 ms/);
    assert.ok(r.status === 'temporary-failure' && r.reason.includes(url));
    assert.ok(ms >= 350 && ms < 400 + 1500, `${ms} ms`);
    assert.equal(hanging.accepted, 1);

    const next = await recordingSource([url, aPartners()], { timeoutMs: 400 }).s.lookup(
      'example.org',
      new Date(),
    );
    assert.equal(next.status, 'found');
  });

  it('an ldaps:// handshake that never completes fails within the connect timeout', async () => {
    const hanging = await fake(hangingServer());
    const url = `ldaps://127.0.0.1:${hanging.port}/dc=example,dc=net`;
    const { value: r, ms } = await timed(() =>
      recordingSource([url], { connectTimeoutMs: 300, timeoutMs: 5000 }).s.lookup(
        'example.org',
        new Date(),
      ),
    );
    assert.match(
      r.status === 'temporary-failure' ? r.reason : JSON.stringify(r),
      /no connection within 300 ms/,
    );
    assert.ok(ms >= 250 && ms < 300 + 1500, `${ms} ms`);
  });

  it('a server answering random bytes is a temporary failure at once, not after the timeout', async () => {
    const garbage = await fake(garbageServer(nonsense(512)));
    const url = `ldap://127.0.0.1:${garbage.port}/dc=example,dc=net`;
    const { value: r, ms } = await timed(() =>
      recordingSource([url], { timeoutMs: 5000 }).s.lookup('example.org', new Date()),
    );
    assert.equal(r.status, 'temporary-failure');
    assert.match(r.status === 'temporary-failure' ? r.reason : '', /the answer is not LDAP/);
    assert.ok(ms < 2000, `${ms} ms`);
    const next = await recordingSource([url, aPartners()]).s.lookup('example.org', new Date());
    assert.equal(next.status, 'found');
  });

  it('a server that accepts and resets the connection is a temporary failure at once', async () => {
    const reset = await fake(resettingServer());
    const url = `ldap://127.0.0.1:${reset.port}/dc=example,dc=net`;
    const { value: r, ms } = await timed(() =>
      recordingSource([url], { timeoutMs: 5000 }).s.lookup('example.org', new Date()),
    );
    assert.equal(r.status, 'temporary-failure');
    assert.ok(r.status === 'temporary-failure' && r.reason.includes(url), JSON.stringify(r));
    assert.match(r.status === 'temporary-failure' ? r.reason : '', /ECONNRESET|closed/);
    assert.ok(ms < 2000, `${ms} ms`);
    assert.equal(reset.accepted, 1);
    const next = await recordingSource([url, aPartners()]).s.lookup('example.org', new Date());
    assert.equal(next.status, 'found');
  });

  it('an answer that starts like BER but never completes fails within the timeout', async () => {
    // SEQUENCE claiming 2 GiB of content: a naive client waits (and buffers) forever.
    const garbage = await fake(garbageServer(Buffer.from('30847fffffff020101', 'hex')));
    const url = `ldap://127.0.0.1:${garbage.port}/dc=example,dc=net`;
    const { value: r, ms } = await timed(() =>
      recordingSource([url], { timeoutMs: 400 }).s.lookup('example.org', new Date()),
    );
    assert.match(r.status === 'temporary-failure' ? r.reason : '', /no answer within 400 ms/);
    assert.ok(ms < 400 + 1500, `${ms} ms`);
  });

  it('an answer larger than maxResponseBytes is cut off', async () => {
    const big = Buffer.alloc(64 * 1024, 0x41);
    big[0] = 0x30;
    const flood = await fake(fakeServer(() => () => big));
    const url = `ldap://127.0.0.1:${flood.port}/dc=example,dc=net`;
    const r = await recordingSource([url], { maxResponseBytes: 16 * 1024 }).s.lookup(
      'example.org',
      new Date(),
    );
    assert.match(
      r.status === 'temporary-failure' ? r.reason : JSON.stringify(r),
      /exceeds 16384 bytes/,
    );
    // The real directory's whole answer fits under a small budget.
    const ok = await recordingSource([aPartners()], { maxResponseBytes: 16 * 1024 }).s.lookup(
      'example.org',
      new Date(),
    );
    assert.equal(ok.status, 'found');
  });

  it('leaves no socket open after found, timed-out and garbage lookups', async () => {
    await until(() => openSockets() === 0, 2000, 'no sockets before');
    const hanging = await fake(hangingServer());
    const garbage = await fake(garbageServer(nonsense(64)));
    const { s } = recordingSource(
      [
        `ldap://127.0.0.1:${hanging.port}/dc=x`,
        `ldap://127.0.0.1:${garbage.port}/dc=x`,
        closedUrl,
        aPartners(),
      ],
      { timeoutMs: 300 },
    );
    assert.equal((await s.lookup('example.org', new Date())).status, 'found');
    assert.equal((await s.lookup('nobody.example', new Date())).status, 'temporary-failure');
    await until(() => openSockets() === 0, 2000, 'every socket closed');
  });
});
