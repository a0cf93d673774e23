import type { Clock } from '../clock.js'
import { MemoryStore } from './memory.js'
import { RedisStore } from './redis.js'
import type { Store } from './types.js'

export type { Store } from './types.js'
export { StoreUnavailableError } from './redis.js'

/** The store a configuration names: `memory`, or a `redis://` / `rediss://` URL (connected before use). */
export async function openStore (spec: string, options: { keyPrefix: string, clock: Clock }): Promise<Store> {
  if (spec === 'memory') return new MemoryStore({ clock: options.clock })
  const store = new RedisStore({ url: spec, keyPrefix: options.keyPrefix })
  await store.connect()
  return store
}
