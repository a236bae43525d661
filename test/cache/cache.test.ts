import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { MemoryCache } from '../../src/cache/memory.js';
import { parseRedisUrl, RedisCache } from '../../src/cache/redis.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await sleep(20);
  }
}

describe('memory cache', () => {
  test('expires entries and evicts the least recently used', async () => {
    let now = 0;
    const seen: string[] = [];
    const c = new MemoryCache(
      2,
      (_c, r) => seen.push(r),
      () => now,
    );
    await c.set('a', '1', 10);
    await c.set('b', '2', 10);
    assert.equal(await c.get('a'), '1'); // a is now the most recent
    await c.set('c', '3', 10); // evicts b
    assert.equal(await c.get('b'), undefined);
    assert.equal(await c.get('c'), '3');
    now = 10_001;
    assert.equal(await c.get('a'), undefined, 'expired');
    assert.deepEqual(seen, ['hit', 'miss', 'hit', 'miss']);
  });

  test('keys by prefix, zero TTL stores nothing', async () => {
    const c = new MemoryCache();
    await c.set('cert:example.net', 'x', 60);
    await c.set('ocsp:123', 'y', 60);
    await c.set('cert:nothing', 'z', 0);
    assert.deepEqual(await c.keys('cert:'), ['cert:example.net']);
  });
});

describe('Redis URL forms', () => {
  test('standalone, TLS, Sentinel and Cluster', () => {
    assert.deepEqual(parseRedisUrl('redis://127.0.0.1:6380/2'), {
      kind: 'standalone',
      options: { host: '127.0.0.1', port: 6380, db: 2 },
    });
    assert.deepEqual(parseRedisUrl('rediss://:s3cret@cache.example:6379').kind, 'standalone');
    assert.equal(
      (parseRedisUrl('rediss://:s3cret@cache.example:6379') as { options: { password?: string } })
        .options.password,
      's3cret',
    );
    const s = parseRedisUrl('redis-sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster');
    assert.equal(s.kind, 'sentinel');
    assert.deepEqual((s.options as { sentinels: unknown }).sentinels, [
      { host: '10.0.0.1', port: 26379 },
      { host: '10.0.0.2', port: 26379 },
    ]);
    const c = parseRedisUrl('redis-cluster://h1:7000,h2:7001');
    assert.deepEqual(c.kind === 'cluster' && c.nodes, [
      { host: 'h1', port: 7000 },
      { host: 'h2', port: 7001 },
    ]);
    assert.throws(() => parseRedisUrl('memcached://x'), /expected redis:\/\//);
    assert.throws(() => parseRedisUrl('redis-sentinel://h:1'), /master name is missing/);
  });
});

describe('Redis cache with a real redis-server', () => {
  let redis: TestRedis;
  const caches: RedisCache[] = [];
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const c of caches) await c.close();
    await redis.stop();
  });

  function cache(prefix = 'domsec:', events: string[] = []): RedisCache {
    const c = new RedisCache({
      url: redis.url,
      prefix,
      fallback: new MemoryCache(),
      onState: (up) => events.push(up ? 'up' : 'down'),
      warn: (m) => events.push(m),
      commandTimeoutMs: 300,
    });
    caches.push(c);
    return c;
  }

  test('values are shared through Redis, with their TTL and prefix', async () => {
    const a = cache();
    const b = cache();
    const other = cache('other:');
    await until(() => a.reachable && b.reachable && other.reachable);
    await a.set('cert:example.net', 'CERT', 120);
    assert.equal(await b.get('cert:example.net'), 'CERT', 'another replica sees it');
    assert.equal(await other.get('cert:example.net'), undefined, 'prefixes isolate deployments');
    const raw = new Redis({ port: redis.port, host: '127.0.0.1' });
    const ttl = await raw.ttl('domsec:cert:example.net');
    raw.disconnect();
    assert.ok(ttl > 100 && ttl <= 120, `ttl ${ttl}`);
    assert.deepEqual(await b.keys('cert:'), ['cert:example.net']);
  });

  test('Redis is the truth while it answers: a value read there survives an outage, a purged key is gone', async () => {
    const writer = cache('truth:');
    const reader = cache('truth:');
    await until(() => writer.reachable && reader.reachable);
    assert.equal(reader.degraded, false);
    // Another process (or `certs import`) stored these; this reader only read them.
    await writer.set('imported', 'CERT', 120);
    await writer.set('purged', 'OLD', 120);
    assert.equal(await reader.get('imported'), 'CERT');
    assert.equal(await reader.get('purged'), 'OLD');
    await writer.delete('purged'); // `certs purge`
    assert.equal(await reader.get('purged'), undefined, 'the purge is seen at once');
    await redis.stop();
    await until(() => !reader.reachable);
    assert.equal(reader.degraded, true, 'a miss now proves nothing');
    assert.equal(await reader.get('imported'), 'CERT', 'kept from the read, for the outage');
    assert.equal(await reader.get('purged'), undefined, 'not resurrected');
    await redis.start();
    await until(() => reader.reachable, 15_000);
    assert.equal(reader.degraded, false);
  });

  test('Redis down: served from memory, one warning; back: reconnects', async () => {
    const events: string[] = [];
    const c = cache('fallback:', events);
    await until(() => c.reachable);
    await c.set('k1', 'before', 60);
    await redis.stop();
    await until(() => !c.reachable);
    assert.equal(await c.get('k1'), 'before', 'memory fallback answers');
    await c.set('k2', 'during', 60);
    assert.equal(await c.get('k2'), 'during');
    await sleep(500);
    assert.equal(events.filter((e) => e.startsWith('Redis unreachable')).length, 1, 'warned once');
    await redis.start();
    await until(() => c.reachable, 15_000);
    assert.ok(events.includes('Redis reachable again'));
    await c.set('k3', 'after', 60);
    const fresh = cache('fallback:');
    await until(() => fresh.reachable);
    assert.equal(await fresh.get('k3'), 'after', 'writes reach Redis again');
  });
});
