/** The cache a process uses, from configuration: Redis with a memory fallback, or memory alone. */

import type { Cache, CacheObserver } from './cache.js';
import { MemoryCache } from './memory.js';
import { RedisCache } from './redis.js';

export interface CacheSettings {
  readonly redisUrl: string | undefined;
}

export interface CacheHooks {
  readonly observe?: CacheObserver;
  readonly onRedisState?: (up: boolean) => void;
  readonly warn?: (message: string, detail: object) => void;
}

/** Every key of ours in a shared Redis starts with this. */
export const CACHE_PREFIX = 'domsec:';

export function createCache(settings: CacheSettings, hooks: CacheHooks = {}): Cache {
  const memory = new MemoryCache(100_000, hooks.observe);
  if (!settings.redisUrl) return memory;
  return new RedisCache({
    url: settings.redisUrl,
    prefix: CACHE_PREFIX,
    fallback: memory,
    ...(hooks.observe ? { observe: hooks.observe } : {}),
    ...(hooks.onRedisState ? { onState: hooks.onRedisState } : {}),
    ...(hooks.warn ? { warn: hooks.warn } : {}),
  });
}
