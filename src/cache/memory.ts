/** In-memory LRU with per-entry expiry; a Map keeps insertion order, which is the LRU order here. */

import type { Cache, CacheObserver } from './cache.js';

interface Entry {
  readonly value: string;
  readonly expires: number;
}

export class MemoryCache implements Cache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly maxEntries = 100_000,
    private readonly observe: CacheObserver = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  async get(key: string): Promise<string | undefined> {
    return this.getSync(key);
  }

  getSync(key: string): string | undefined {
    const e = this.entries.get(key);
    if (!e || e.expires <= this.now()) {
      if (e) this.entries.delete(key);
      this.observe('memory', 'miss');
      return undefined;
    }
    // Touch: move to the most recently used end.
    this.entries.delete(key);
    this.entries.set(key, e);
    this.observe('memory', 'hit');
    return e.value;
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    this.setSync(key, value, ttlSeconds);
  }

  setSync(key: string, value: string, ttlSeconds: number): void {
    if (ttlSeconds <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { value, expires: this.now() + ttlSeconds * 1000 });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  async delete(key: string): Promise<void> {
    this.entries.delete(key);
  }

  async keys(prefix: string): Promise<string[]> {
    const now = this.now();
    return [...this.entries]
      .filter(([k, e]) => k.startsWith(prefix) && e.expires > now)
      .map(([k]) => k);
  }

  async close(): Promise<void> {
    this.entries.clear();
  }
}
