/**
 * One cache interface for certificates and revocation answers. Values are
 * strings (JSON by the callers); every entry has a TTL. Implementations:
 * in-memory LRU (the default) and Redis with an in-memory fallback.
 */

export interface Cache {
  /**
   * True while a shared store (Redis) is unreachable and this process's memory
   * answers alone: a miss then does not mean nobody stored the key. Absent or
   * false: a miss is a miss.
   */
  readonly degraded?: boolean;
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** Keys starting with `prefix` (after the cache's own key prefix); for `certs list|purge`. */
  keys(prefix: string): Promise<string[]>;
  close(): Promise<void>;
}

/** Told of every request, for metrics: which cache answered and how. */
export type CacheObserver = (cache: 'memory' | 'redis', result: 'hit' | 'miss' | 'error') => void;
