/**
 * Redis cache (ioredis; standalone, Sentinel or Cluster) with an in-memory
 * fallback: while Redis is unreachable every request is served from memory,
 * one warning is logged, the state is visible in a metric, and ioredis keeps
 * reconnecting. Writes, and values read from Redis, go to memory too, so the
 * fallback is warm.
 */

import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Cache, CacheObserver } from './cache.js';
import type { MemoryCache } from './memory.js';

export type RedisTarget =
  | { readonly kind: 'standalone'; readonly options: RedisOptions }
  | { readonly kind: 'sentinel'; readonly options: RedisOptions }
  | {
      readonly kind: 'cluster';
      readonly nodes: { host: string; port: number }[];
      readonly options: RedisOptions;
    };

export class RedisUrlError extends Error {
  override readonly name = 'RedisUrlError';
}

/**
 * The URL as error messages show it: credentials masked (`redis://***@host`).
 * Everything up to the last '@' goes, so a password with an unencoded '/'
 * or '@' is masked too (the rest of a Redis URL never holds an '@').
 */
export function redactRedisUrl(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/).*@/s, '$1***@');
}

/** A host name or an IP address literal: nothing else may reach ioredis (and its error messages). */
const HOST = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|[0-9A-Fa-f:.]+)$/;

function hostPorts(list: string, url: string): { host: string; port: number }[] {
  return list.split(',').map((hp) => {
    const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(hp.trim());
    if (!m || !HOST.test(m[1]!)) {
      // With credentials in the URL the item may be a piece of a mistyped
      // password: the redacted URL then shows all there is to see.
      const item = url.includes('@') ? '' : ` ${hp}`;
      throw new RedisUrlError(`${redactRedisUrl(url)}: bad host:port${item}`);
    }
    return { host: m[1]!, port: m[2] ? Number(m[2]) : 6379 };
  });
}

/**
 * redis://[:pass@]host:port[/db], rediss://... (TLS),
 * redis-sentinel://[:pass@]h1:p1,h2:p2/master[/db], redis-cluster://[:pass@]h1:p1,h2:p2
 */
export function parseRedisUrl(url: string): RedisTarget {
  const m =
    /^(redis|rediss|redis-sentinel|redis-cluster):\/\/(?:([^:@/]*):([^@/]*)@)?([^/]+)(?:\/(.*))?$/.exec(
      url,
    );
  if (!m)
    throw new RedisUrlError(
      `${redactRedisUrl(url)}: expected redis://host:port, redis-sentinel://h1:p1,h2:p2/master or redis-cluster://h1:p1,h2:p2`,
    );
  const [, scheme, user, password, hosts, path = ''] = m;
  const auth: RedisOptions = {
    ...(user ? { username: decodeURIComponent(user) } : {}),
    ...(password ? { password: decodeURIComponent(password) } : {}),
  };
  const nodes = hostPorts(hosts!, url);
  if (scheme === 'redis-cluster') return { kind: 'cluster', nodes, options: auth };
  if (scheme === 'redis-sentinel') {
    const [name, db] = path.split('/');
    if (!name)
      throw new RedisUrlError(`${redactRedisUrl(url)}: the Sentinel master name is missing`);
    return {
      kind: 'sentinel',
      options: { ...auth, sentinels: nodes, name, ...(db ? { db: Number(db) } : {}) },
    };
  }
  const db = path === '' ? undefined : Number(path);
  if (db !== undefined && !Number.isInteger(db))
    throw new RedisUrlError(`${redactRedisUrl(url)}: the database must be a number`);
  return {
    kind: 'standalone',
    options: {
      ...auth,
      host: nodes[0]!.host,
      port: nodes[0]!.port,
      ...(db !== undefined ? { db } : {}),
      ...(scheme === 'rediss' ? { tls: {} } : {}),
    },
  };
}

export interface RedisCacheOptions {
  readonly url: string;
  /** Namespace for every key, so several deployments can share one Redis. */
  readonly prefix: string;
  readonly fallback: MemoryCache;
  readonly observe?: CacheObserver;
  /** Told when Redis becomes reachable (true) or unreachable (false). */
  readonly onState?: (up: boolean) => void;
  readonly warn?: (message: string, detail: object) => void;
  readonly commandTimeoutMs?: number;
}

export class RedisCache implements Cache {
  private readonly client: Redis | Cluster;
  private up = false;
  private warned = false;

  constructor(private readonly o: RedisCacheOptions) {
    const target = parseRedisUrl(o.url);
    const common: RedisOptions = {
      // Fail fast instead of queueing: the memory fallback answers meanwhile.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: o.commandTimeoutMs ?? 500,
      retryStrategy: (times) => Math.min(times * 200, 5000),
      lazyConnect: false,
    };
    this.client =
      target.kind === 'cluster'
        ? new Cluster(target.nodes, {
            redisOptions: { ...common, ...target.options },
            enableOfflineQueue: false,
          })
        : new Redis({ ...common, ...target.options });
    this.client.on('ready', () => this.setUp(true));
    this.client.on('error', (err: Error) => this.setUp(false, err));
    this.client.on('end', () => this.setUp(false));
    this.client.on('close', () => this.setUp(false));
  }

  get reachable(): boolean {
    return this.up;
  }

  /**
   * Waits until Redis answers, at most `timeoutMs`. A one-shot command (the
   * `certs` CLI) must act on the shared cache, not on the memory fallback
   * that serves while the first connection is still being made.
   */
  ready(timeoutMs: number): Promise<boolean> {
    if (this.up) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (up: boolean) => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        resolve(up);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(this.up), timeoutMs);
      this.client.on('ready', onReady);
    });
  }

  private setUp(up: boolean, err?: Error): void {
    if (up === this.up && !(err && !this.warned)) return;
    this.up = up;
    this.o.onState?.(up);
    if (!up && !this.warned) {
      this.warned = true;
      this.o.warn?.('Redis unreachable: serving the cache from memory until it is back', {
        err: err?.message ?? 'connection closed',
      });
    } else if (up && this.warned) {
      this.warned = false;
      this.o.warn?.('Redis reachable again', {});
    }
  }

  private k(key: string): string {
    return `${this.o.prefix}${key}`;
  }

  /** True while Redis is unreachable: memory alone answers, and a miss there proves nothing. */
  get degraded(): boolean {
    return !this.up;
  }

  /**
   * While Redis answers it is the truth: a value there is copied to memory for
   * as long as Redis keeps it (so an outage does not lose what another process
   * or `certs import` put there), and a key gone from Redis (`certs purge`) is
   * gone from memory too.
   */
  async get(key: string): Promise<string | undefined> {
    if (this.up) {
      try {
        const k = this.k(key);
        const [v, ttlMs] = await Promise.all([this.client.get(k), this.client.pttl(k)]);
        this.o.observe?.('redis', v === null ? 'miss' : 'hit');
        if (v === null) {
          await this.o.fallback.delete(key);
          return undefined;
        }
        if (ttlMs > 0) await this.o.fallback.set(key, v, ttlMs / 1000);
        return v;
      } catch {
        this.o.observe?.('redis', 'error');
      }
    }
    return this.o.fallback.get(key);
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    await this.o.fallback.set(key, value, ttlSeconds);
    if (!this.up || ttlSeconds <= 0) return;
    try {
      await this.client.set(this.k(key), value, 'EX', Math.max(1, Math.ceil(ttlSeconds)));
    } catch {
      this.o.observe?.('redis', 'error');
    }
  }

  async delete(key: string): Promise<void> {
    await this.o.fallback.delete(key);
    if (!this.up) return;
    try {
      await this.client.del(this.k(key));
    } catch {
      this.o.observe?.('redis', 'error');
    }
  }

  async keys(prefix: string): Promise<string[]> {
    if (!this.up) return this.o.fallback.keys(prefix);
    // A cluster spreads keys over its masters: each one is scanned.
    const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client];
    const out: string[] = [];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, batch] = await node.scan(cursor, 'MATCH', `${this.k(prefix)}*`, 'COUNT', 500);
        cursor = next;
        out.push(...batch.map((k) => k.slice(this.o.prefix.length)));
      } while (cursor !== '0');
    }
    return out;
  }

  async close(): Promise<void> {
    this.client.removeAllListeners();
    this.client.on('error', () => {});
    this.client.disconnect();
    await this.o.fallback.close();
  }
}
