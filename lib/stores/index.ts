import type { Cluster, Redis } from 'ioredis'
import type { Clock } from '../clock.js'
import { MemoryStore } from './memory.js'
import type { Store } from './types.js'

export type { Store } from './types.js'
export { StoreFullError, StoreUnavailableError } from './errors.js'

/** The connection of each store openStore() opened on Redis, for what shares it (the rate limiter). */
const redisClients = new WeakMap<Store, Redis | Cluster>()

/** The store a configuration names: `memory`, or a Redis URL (lib/stores/redis-url.ts; connected before use). */
export async function openStore (spec: string, options: { keyPrefix: string, clock: Clock }): Promise<Store> {
  if (spec === 'memory') return new MemoryStore({ clock: options.clock })
  // Loaded for a Redis store only: an in-memory gateway does without ioredis, about 1 MB of resident heap
  // that every full collection would mark (bench/HISTORY.md).
  const { RedisStore } = await import('./redis.js')
  const store = new RedisStore({ url: spec, keyPrefix: options.keyPrefix })
  try {
    await store.connect()
  } catch (err) {
    // Or its client would go on reconnecting, and keep a process that carries on without it (a CLI) alive.
    await store.close()
    throw err
  }
  redisClients.set(store, store.client)
  return store
}

/**
 * The Redis connection (or cluster client) behind a store that openStore() opened on Redis;
 * undefined for any other store.
 */
export function redisClientOf (store: Store): Redis | Cluster | undefined {
  return redisClients.get(store)
}
