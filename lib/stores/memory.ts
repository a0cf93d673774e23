import type { Clock } from '../clock.js'
import { systemClock } from '../clock.js'
import type { Store } from './types.js'

export interface MemoryStoreOptions {
  /** The most entries kept at once; the oldest written is evicted first. */
  maxEntries?: number
  /** How often expired entries are swept, in ms. Reads also expire lazily. */
  sweepIntervalMs?: number
  clock?: Clock
}

interface Entry {
  value: string
  expiresAt: number
}

/**
 * The embedded default store. Entries expire by TTL, a timer sweeps what nobody reads again, and the
 * size is capped, so a flood of registrations or abandoned flows cannot grow memory without bound.
 * Values are stored serialised, so callers never share (and mutate) an object with the store, just
 * as with Redis.
 */
export class MemoryStore implements Store {
  readonly #entries = new Map<string, Entry>()
  readonly #maxEntries: number
  readonly #clock: Clock
  readonly #sweeper: NodeJS.Timeout

  constructor (options: MemoryStoreOptions = {}) {
    this.#maxEntries = options.maxEntries ?? 100_000
    this.#clock = options.clock ?? systemClock
    this.#sweeper = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 60_000)
    this.#sweeper.unref()
  }

  get size (): number {
    return this.#entries.size
  }

  async get<T> (key: string): Promise<T | undefined> {
    return this.#read<T>(key)
  }

  async set<T> (key: string, value: T, ttlMs: number): Promise<void> {
    this.#write(key, value, ttlMs)
  }

  async take<T> (key: string): Promise<T | undefined> {
    const value = this.#read<T>(key)
    this.#entries.delete(key)
    return value
  }

  async swap<T> (key: string, value: T, ttlMs: number): Promise<T | undefined> {
    const previous = this.#read<T>(key)
    this.#write(key, value, ttlMs)
    return previous
  }

  async increment (key: string, ttlMs: number): Promise<number> {
    const entry = this.#entries.get(key)
    if (entry === undefined || entry.expiresAt <= this.#clock.now()) {
      this.#write(key, 1, ttlMs)
      return 1
    }
    const count = Number(JSON.parse(entry.value)) + 1
    entry.value = JSON.stringify(count)
    return count
  }

  async delete (key: string): Promise<void> {
    this.#entries.delete(key)
  }

  async ping (): Promise<boolean> {
    return true
  }

  async close (): Promise<void> {
    clearInterval(this.#sweeper)
    this.#entries.clear()
  }

  /** Drops every expired entry. Runs on a timer; public so tests need not wait for it. */
  sweep (): void {
    const now = this.#clock.now()
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) this.#entries.delete(key)
    }
  }

  #read<T> (key: string): T | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= this.#clock.now()) {
      this.#entries.delete(key)
      return undefined
    }
    return JSON.parse(entry.value) as T
  }

  #write (key: string, value: unknown, ttlMs: number): void {
    if (!(ttlMs > 0)) throw new RangeError(`store TTL must be positive, got ${ttlMs}`)
    // Re-inserting moves the key to the end of the Map's order, so the first key is the oldest write.
    this.#entries.delete(key)
    this.#entries.set(key, { value: JSON.stringify(value), expiresAt: this.#clock.now() + ttlMs })
    if (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string
      this.#entries.delete(oldest)
    }
  }
}
