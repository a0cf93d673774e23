import { StoreUnavailableError } from '../../lib/stores/index.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import type { Store } from '../../lib/stores/types.js'
import type { Teardown } from './teardown.js'

/**
 * A memory store whose reads of keys under `failing.prefix` throw StoreUnavailableError while the prefix is
 * set: Redis going away between two calls, for one kind of record. Set `failing.prefix` to undefined and
 * the store is back.
 */
export function failingStore (t: Teardown): { store: Store, failing: { prefix: string | undefined } } {
  const memory = new MemoryStore()
  t.teardown(async () => { await memory.close() })
  const failing: { prefix: string | undefined } = { prefix: undefined }
  const store = delegatingStore(memory, {
    get: async <T>(key: string) => {
      if (failing.prefix !== undefined && key.startsWith(failing.prefix)) throw new StoreUnavailableError(new Error('down'))
      return await memory.get<T>(key)
    }
  })
  return { store, failing }
}

/** A Store that hands every call to `inner`, but for the methods in `overrides`: spies and faults for tests. */
export function delegatingStore (inner: Store, overrides: Partial<Store> = {}): Store {
  return {
    get: async (key) => await inner.get(key),
    set: async (key, value, ttlMs) => { await inner.set(key, value, ttlMs) },
    take: async (key) => await inner.take(key),
    swap: async (key, value, ttlMs) => await inner.swap(key, value, ttlMs),
    increment: async (key, ttlMs) => await inner.increment(key, ttlMs),
    add: async (key, value, ttlMs, max) => await inner.add(key, value, ttlMs, max),
    release: async (key) => { await inner.release(key) },
    replace: async (key, expectedVersion, value, ttlMs) => await inner.replace(key, expectedVersion, value, ttlMs),
    lock: async (key, ttlMs) => await inner.lock(key, ttlMs),
    unlock: async (key, token) => { await inner.unlock(key, token) },
    delete: async (key) => { await inner.delete(key) },
    ping: async () => await inner.ping(),
    close: async () => {},
    ...(inner.publish === undefined || inner.subscribe === undefined
      ? {}
      : { publish: inner.publish.bind(inner), subscribe: inner.subscribe.bind(inner) }),
    ...overrides
  }
}
