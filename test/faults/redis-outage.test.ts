/**
 * Redis goes away under load and comes back: the milter serves its cache
 * from memory meanwhile, warns once when Redis goes and once when it is
 * back, and shows it in domsec_redis_up. No message is refused or lost.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadCertificatesPem } from '../../src/cms/certificate.js';
import { runCli, type ServingMilter, startServe } from '../helpers/cli.js';
import { type FakeServer, tcpProxy } from '../helpers/fake-tcp.js';
import { runMessage, servedMilter } from '../helpers/gateway-app.js';
import { type GatewayDomains, message, startGatewayDomains } from '../helpers/gateway-fixture.js';
import { dca, ou, person } from '../helpers/ldap-fixtures.js';
import { deliverAll, type LoadMessage, tally } from '../helpers/mail-load.js';
import { sample, scrape } from '../helpers/metrics-scrape.js';
import { type PostfixInstance, startPostfix } from '../helpers/postfix.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startSlapd, type TestSlapd } from '../helpers/slapd.js';
import { type SinkMessage, type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';
import { until } from '../helpers/wait.js';

const MESSAGES = 200;
const SESSIONS = 20;

const UNREACHABLE = 'Redis unreachable: serving the cache from memory until it is back';
const BACK = 'Redis reachable again';
const count = (text: string, needle: string) => text.split(needle).length - 1;
const idOf = (m: SinkMessage): string =>
  /^<(.+)@example\.org>$/.exec(m.header('message-id') ?? '')?.[1] ?? '(no id)';

/** domsec_redis_up as a scraper sees it, every 100 ms: the distinct values in order. */
function watchRedisUp(httpUrl: string): { values: number[]; stop(): Promise<void> } {
  const values: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const v = sample(await scrape(httpUrl), 'domsec_redis_up');
      if (v !== undefined && values.at(-1) !== v) values.push(v);
      await sleep(100);
    }
  })();
  return {
    values,
    async stop() {
      running = false;
      await loop;
    },
  };
}

describe('Redis outage under load', () => {
  let domains: GatewayDomains;
  let redis: TestRedis;
  let slapd: TestSlapd;
  let directory: FakeServer;
  let sink: SmtpSink;
  let postfix: PostfixInstance;
  let milter: ServingMilter;
  let netCa: string;
  let netEncryptionPem: string;

  before(async () => {
    [domains, redis, sink] = await Promise.all([
      startGatewayDomains(),
      startRedis(),
      startSmtpSink(),
    ]);
    netCa = join(dirname(domains.keys.netEncryptCert), 'ca/example.net.ca.crt.pem');
    netEncryptionPem = await readFile(domains.keys.netEncryptCert, 'utf8');
    // example.net publishes its encryption certificate in its directory (validated against its CA).
    slapd = await startSlapd({
      entries: [
        ou('partners', 'dc=example,dc=net'),
        person('net', 'ou=partners,dc=example,dc=net', dca('example.net'), {
          'userCertificate;binary': [loadCertificatesPem(netEncryptionPem)[0]!.der],
        }),
      ],
    });
    // The milter reaches the directory through a proxy that counts its connections.
    directory = await tcpProxy(slapd.port);
    milter = await startServe({
      ...domains.orgEnv,
      DOMSEC_PARTNER_SOURCES: 'ldap',
      DOMSEC_LDAP_URLS: `ldap://127.0.0.1:${directory.port}/ou=partners,dc=example,dc=net`,
      DOMSEC_TRUST_ANCHORS: netCa,
      DOMSEC_REVOCATION: 'off',
      DOMSEC_ENCRYPT_REQUIRED_DOMAINS: 'example.net',
      DOMSEC_REDIS_URL: redis.url,
      DOMSEC_LOG_LEVEL: 'warn',
    });
    postfix = await startPostfix({ relayPort: sink.port, milter: milter.address });
  });

  after(async () => {
    await postfix?.stop();
    await milter?.stop();
    await directory?.close();
    await Promise.all([domains?.stop(), redis?.stop(), slapd?.stop(), sink?.close()]);
  });

  test('200 messages over 20 sessions, Redis stopped and started mid-way: none refused or lost', async (t) => {
    // The first message puts example.net's certificate into the caches (Redis and memory).
    const first = await deliverAll(
      [
        {
          id: 'redis-0',
          from: 'alice@example.org',
          to: ['bob@example.net'],
          data: message('redis-0'),
        },
      ],
      { port: postfix.smtpPort, concurrency: 1 },
    );
    assert.deepEqual(first.accepted, ['redis-0']);
    await until(() => sink.messages.length === 1, 30_000, 'first message delivered');
    assert.equal(directory.accepted, 1, 'the directory asked once');

    const watch = watchRedisUp(milter.httpUrl);
    await until(() => watch.values.length > 0, 10_000, 'domsec_redis_up exposed');
    const messages: LoadMessage[] = Array.from({ length: MESSAGES }, (_, i) => ({
      id: `redis-${i + 1}`,
      from: 'alice@example.org',
      to: ['bob@example.net'],
      data: message(`redis-${i + 1}`),
    }));
    let accepted = 0;
    // Paced, so that Redis goes and comes back while mail is flowing.
    const load = deliverAll(messages, {
      port: postfix.smtpPort,
      concurrency: SESSIONS,
      rate: 25,
      deadlineMs: 120_000,
      onAccepted: () => accepted++,
    });
    await until(() => accepted >= 50, 60_000, '50 messages accepted');
    await redis.stop();
    await until(() => watch.values.at(-1) === 0, 10_000, 'domsec_redis_up 0');
    const down = { accepted, memoryHits: await memoryHits(), asked: directory.accepted };
    await until(() => accepted >= down.accepted + 50, 60_000, '50 more accepted, Redis down');
    const askedDuringOutage = directory.accepted - down.asked;
    await redis.start();
    await until(() => watch.values.at(-1) === 1, 15_000, 'domsec_redis_up 1 again');
    const up = { accepted, memoryHits: await memoryHits() };
    const report = await load;
    await watch.stop();
    await until(() => sink.messages.length >= MESSAGES + 1, 60_000, 'every message delivered');
    await sleep(500); // a duplicate would arrive just after

    const ids = ['redis-0', ...messages.map((m) => m.id)];
    const { missing, duplicated, unexpected } = tally(ids, sink.messages.map(idOf));
    t.diagnostic(
      `sent ${ids.length}, delivered ${sink.messages.length - duplicated.length}, lost ` +
        `${missing.length}; ${up.accepted - down.accepted} accepted while Redis was down; ` +
        `memory cache hits during the outage ${up.memoryHits - down.memoryHits}, directory ` +
        `asked ${askedDuringOutage} times meanwhile (${directory.accepted} in all); ` +
        `domsec_redis_up ${watch.values.join(' -> ')}`,
    );
    assert.deepEqual(report.refused, []);
    assert.equal(report.temporaryRefusals, 0, [...report.temporaryReasons].join('\n'));
    assert.deepEqual(report.unsent, []);
    assert.deepEqual(
      { missing, duplicated, unexpected },
      { missing: [], duplicated: [], unexpected: [] },
    );
    assert.ok(
      sink.messages.every((m) => /enveloped-data/.test(m.header('content-type') ?? '')),
      'every message encrypted',
    );
    assert.deepEqual(watch.values, [1, 0, 1]);
    assert.ok(up.accepted - down.accepted >= 50, 'mail flowed while Redis was down');
    // Every message looks its recipient domain up once; those that did so just
    // before Redis went (at most one per session) are not counted here.
    assert.ok(
      up.memoryHits - down.memoryHits >= up.accepted - down.accepted - SESSIONS,
      'the certificate came from memory meanwhile',
    );
    assert.equal(askedDuringOutage, 0, 'not from the directory');
    const log = milter.output();
    assert.equal(count(log, UNREACHABLE), 1, log);
    assert.equal(count(log, BACK), 1, log);
    assert.ok(log.indexOf(UNREACHABLE) < log.indexOf(BACK));
  });

  const memoryHits = async () =>
    sample(await scrape(milter.httpUrl), 'domsec_cache_requests_total', {
      cache: 'memory',
      result: 'hit',
    }) ?? 0;
});

/**
 * A partner certificate put into the shared cache by `certs import` lives in
 * Redis alone. When Redis goes away, a domain that requires encryption must
 * not bounce for want of it: a milter that has used it keeps a copy, and one
 * that never saw it answers 4xx (the sender retries), never 5xx.
 */
describe('an imported certificate during a Redis outage', () => {
  let domains: GatewayDomains;
  let redis: TestRedis;
  const milters: ServingMilter[] = [];
  let env: Record<string, string>;

  const PLAIN = Buffer.from(message('imported'));
  const send = (m: ServingMilter) =>
    runMessage(servedMilter(m.port), PLAIN, {
      from: '<alice@example.org>',
      rcpts: ['<bob@example.net>'],
      address: '127.0.0.1',
    });
  const replyOf = (o: Awaited<ReturnType<typeof send>>) =>
    o.decision?.type === 'replyCode'
      ? `${o.decision.code} ${o.decision.xcode} ${String(o.decision.text)}`
      : o.decision?.type;
  const encrypted = (o: Awaited<ReturnType<typeof send>>) =>
    o.edits.some(
      (e) =>
        (e.type === 'changeHeader' || e.type === 'addHeader' || e.type === 'insertHeader') &&
        e.name.toLowerCase() === 'content-type' &&
        /enveloped-data/.test(String(e.value)),
    );
  const redisState = async (m: ServingMilter, up: 0 | 1) => {
    for (const deadline = Date.now() + 15_000; ; await sleep(50)) {
      if (sample(await scrape(m.httpUrl), 'domsec_redis_up') === up) return;
      assert.ok(Date.now() < deadline, `domsec_redis_up ${up}`);
    }
  };
  const serve = async () => {
    const m = await startServe(env);
    milters.push(m);
    return m;
  };

  before(async () => {
    [domains, redis] = await Promise.all([startGatewayDomains(), startRedis()]);
    env = {
      DOMSEC_LOCAL_DOMAINS: 'example.org',
      DOMSEC_KEYS_DIR: domains.orgEnv['DOMSEC_KEYS_DIR']!,
      // An imported certificate must chain to an anchor like any other.
      DOMSEC_TRUST_ANCHORS: domains.keys.netCa,
      DOMSEC_PARTNER_SOURCES: 'harvested',
      DOMSEC_ENCRYPT_REQUIRED_DOMAINS: 'example.net',
      DOMSEC_REDIS_URL: redis.url,
      DOMSEC_LOG_LEVEL: 'warn',
    };
    const imported = await runCli(
      ['certs', 'import', domains.keys.netEncryptCert, '--domain', 'example.net'],
      env,
    );
    assert.equal(imported.code, 0, imported.stderr);
  });

  after(async () => {
    await Promise.all(milters.map((m) => m.stop()));
    await Promise.all([domains?.stop(), redis?.stop()]);
  });

  test('a milter that used it keeps encrypting; one that never saw it answers 450, not 550', async () => {
    const warm = await serve();
    await redisState(warm, 1);
    const before = await send(warm);
    assert.equal(before.decision?.type, 'accept', replyOf(before));
    assert.ok(encrypted(before), 'encrypted with the imported certificate');

    await redis.stop();
    await redisState(warm, 0);
    const during = await send(warm);
    assert.equal(during.decision?.type, 'accept', replyOf(during));
    assert.ok(encrypted(during), 'still encrypted, from memory');

    const cold = await serve();
    await redisState(cold, 0);
    const refused = await send(cold);
    assert.match(replyOf(refused) ?? '', /^450 4\.7\.1 /);
  });
});
