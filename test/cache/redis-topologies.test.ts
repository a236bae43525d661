// The Redis cache against the other topologies an administrator runs: a
// real Sentinel watching a real master, and a real three-master Cluster
// (redis-server processes and redis-cli, all on loopback).
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { MemoryCache } from '../../src/cache/memory.js';
import { RedisCache } from '../../src/cache/redis.js';
import { freePort } from '../helpers/ports.js';

const exec = promisify(execFile);
const cli = async (port: number, ...args: string[]) =>
  (await exec('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args])).stdout.trim();

let dir: string;
const children: ChildProcess[] = [];

async function server(args: string[], port: number): Promise<void> {
  const child = spawn('redis-server', args, { stdio: 'ignore', cwd: dir });
  children.push(child);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      if ((await cli(port, 'PING')) === 'PONG') return;
    } catch {}
    assert.ok(child.exitCode === null, `redis-server ${args.join(' ')} exited`);
    assert.ok(Date.now() < deadline, `redis-server on ${port} did not answer`);
    await sleep(50);
  }
}

function cacheFor(url: string): RedisCache {
  return new RedisCache({ url, prefix: 'domsec:', fallback: new MemoryCache() });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'domsec-redis-topo-'));
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

describe('Redis Sentinel', () => {
  it('the cache finds the master through Sentinel and stores there', async () => {
    const [master, sentinel] = [await freePort(), await freePort()];
    await server(
      ['--port', String(master), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      master,
    );
    const conf = join(dir, 'sentinel.conf');
    await writeFile(
      conf,
      `port ${sentinel}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor mymaster 127.0.0.1 ${master} 1\n`,
    );
    await server([conf, '--sentinel'], sentinel);
    const cache = cacheFor(`redis-sentinel://127.0.0.1:${sentinel}/mymaster`);
    try {
      assert.equal(await cache.ready(10_000), true, 'reached the master through Sentinel');
      await cache.set('partner:ldap:example.net', 'via-sentinel', 60);
      assert.equal(await cli(master, 'GET', 'domsec:partner:ldap:example.net'), 'via-sentinel');
      assert.equal(await cache.get('partner:ldap:example.net'), 'via-sentinel');
      assert.deepEqual(await cache.keys('partner:'), ['partner:ldap:example.net']);
    } finally {
      await cache.close();
    }
  });
});

describe('Redis Cluster', () => {
  it('keys spread over three masters: stored, read back, listed and deleted', async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    for (const p of ports) {
      await server(
        [
          '--port',
          String(p),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${p}.conf`),
        ],
        p,
      );
    }
    await exec('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    const deadline = Date.now() + 15_000;
    while (!(await cli(ports[0]!, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) {
      assert.ok(Date.now() < deadline, 'cluster did not become ok');
      await sleep(100);
    }
    const cache = cacheFor(`redis-cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`);
    try {
      assert.equal(await cache.ready(10_000), true);
      const domains = Array.from({ length: 30 }, (_, i) => `d${i}.example`);
      for (const d of domains) await cache.set(`partner:ldap:${d}`, d, 60);
      for (const d of domains) assert.equal(await cache.get(`partner:ldap:${d}`), d);
      // The keys really live on several masters, and keys() finds them all.
      const perNode = await Promise.all(ports.map((p) => cli(p, 'DBSIZE')));
      assert.ok(perNode.filter((n) => Number(n) > 0).length >= 2, `spread: ${perNode}`);
      assert.equal((await cache.keys('partner:ldap:')).length, domains.length);
      await cache.delete('partner:ldap:d0.example');
      assert.equal(await cache.get('partner:ldap:d0.example'), undefined);
    } finally {
      await cache.close();
    }
  });
});
