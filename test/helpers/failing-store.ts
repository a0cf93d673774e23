import { StoreUnavailableError } from '../../lib/stores/index.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import type { Store } from '../../lib/stores/types.js'

interface Teardown { teardown (fn: () => unknown): void }

/**
 * A memory store whose reads of keys under `failing.prefix` throw StoreUnavailableError while the prefix is
 * set: Redis going away between two calls, for one kind of record. Set `failing.prefix` to undefined and
 * the store is back.
 */
export function failingStore (t: Teardown): { store: Store, failing: { prefix: string | undefined } } {
  const memory = new MemoryStore()
  t.teardown(async () => { await memory.close() })
  const failing: { prefix: string | undefined } = { prefix: undefined }
  const store: Store = {
    get: async <T>(key: string) => {
      if (failing.prefix !== undefined && key.startsWith(failing.prefix)) throw new StoreUnavailableError(new Error('down'))
      return await memory.get<T>(key)
    },
    set: async (key, value, ttlMs) => { await memory.set(key, value, ttlMs) },
    take: async (key) => await memory.take(key),
    swap: async (key, value, ttlMs) => await memory.swap(key, value, ttlMs),
    increment: async (key, ttlMs) => await memory.increment(key, ttlMs),
    add: async (key, value, ttlMs, max) => await memory.add(key, value, ttlMs, max),
    release: async (key) => { await memory.release(key) },
    delete: async (key) => { await memory.delete(key) },
    ping: async () => true,
    close: async () => {}
  }
  return { store, failing }
}
