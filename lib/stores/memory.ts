import { randomBytes } from 'node:crypto'
import type { Clock } from '../clock.js'
import { systemClock } from '../clock.js'
import { storeKind } from './records.js'
import type { Store } from './types.js'

export interface MemoryStoreOptions {
  /** How often expired entries are swept, in ms. Reads also expire lazily. */
  sweepIntervalMs?: number
  clock?: Clock
}

interface Entry {
  value: string
  expiresAt: number
}

/** The records of one kind that add() counts: key → expiry, and a lower bound of those expiries. */
interface KindCount {
  expiries: Map<string, number>
  earliest: number
}

/**
 * The embedded default store. Entries expire by TTL and a timer sweeps what nobody reads again. What
 * anyone can create unauthenticated (sign-ins, registrations) is bounded per kind through add(), which
 * refuses rather than evicts: nothing live is ever dropped to make room. Values are stored serialised, so
 * callers never share (and mutate) an object with the store, just as with Redis.
 */
export class MemoryStore implements Store {
  readonly #entries = new Map<string, Entry>()
  readonly #counts = new Map<string, KindCount>()
  readonly #clock: Clock
  readonly #sweeper: NodeJS.Timeout

  constructor (options: MemoryStoreOptions = {}) {
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
    this.#uncount(key)
    return value
  }

  async swap<T> (key: string, value: T, ttlMs: number): Promise<T | undefined> {
    const previous = this.#read<T>(key)
    this.#write(key, value, ttlMs)
    return previous
  }

  async replace<T> (key: string, expectedVersion: number, value: T, ttlMs: number): Promise<boolean> {
    const current = this.#read<unknown>(key)
    if (
      typeof current !== 'object' ||
      current === null ||
      ((current as { version?: number }).version ?? 0) !== expectedVersion
    ) return false
    this.#write(key, value, ttlMs)
    return true
  }

  async lock (key: string, ttlMs: number): Promise<string | undefined> {
    if (this.#read(key) !== undefined) return undefined
    const token = randomBytes(16).toString('base64url')
    this.#write(key, token, ttlMs)
    return token
  }

  async unlock (key: string, token: string): Promise<void> {
    if (this.#read(key) === token) this.#entries.delete(key)
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

  async add<T> (key: string, value: T, ttlMs: number, max: number): Promise<boolean> {
    if (!(ttlMs > 0)) throw new RangeError(`store TTL must be positive, got ${ttlMs}`)
    const kind = storeKind(key)
    let count = this.#counts.get(kind)
    if (count === undefined) {
      count = { expiries: new Map(), earliest: Infinity }
      this.#counts.set(kind, count)
    }
    const now = this.#clock.now()
    if (!count.expiries.has(key) && count.expiries.size >= max) {
      // Under a flood every refusal costs one comparison: the count is walked only once something in it expired.
      if (count.earliest <= now) sweepCount(count, now)
      if (count.expiries.size >= max) return false
    }
    this.#write(key, value, ttlMs)
    const expiresAt = now + ttlMs
    count.expiries.set(key, expiresAt)
    if (expiresAt < count.earliest) count.earliest = expiresAt
    return true
  }

  async release (key: string): Promise<void> {
    this.#uncount(key)
  }

  async delete (key: string): Promise<void> {
    this.#entries.delete(key)
    this.#uncount(key)
  }

  async ping (): Promise<boolean> {
    return true
  }

  async close (): Promise<void> {
    clearInterval(this.#sweeper)
    this.#entries.clear()
    this.#counts.clear()
  }

  /** Records of `kind` add() counts now, expired ones excluded (tests and metrics). */
  countOf (kind: string): number {
    const count = this.#counts.get(kind)
    if (count === undefined) return 0
    sweepCount(count, this.#clock.now())
    return count.expiries.size
  }

  /** Drops every expired entry and count. Runs on a timer; public so tests need not wait for it. */
  sweep (): void {
    const now = this.#clock.now()
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) this.#entries.delete(key)
    }
    for (const count of this.#counts.values()) {
      if (count.earliest <= now) sweepCount(count, now)
    }
  }

  #uncount (key: string): void {
    this.#counts.get(storeKind(key))?.expiries.delete(key)
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
    this.#entries.set(key, { value: JSON.stringify(value), expiresAt: this.#clock.now() + ttlMs })
  }
}

/** Forgets the expired records of a count and works out the earliest expiry left. */
function sweepCount (count: KindCount, now: number): void {
  let earliest = Infinity
  for (const [key, expiresAt] of count.expiries) {
    if (expiresAt <= now) count.expiries.delete(key)
    else if (expiresAt < earliest) earliest = expiresAt
  }
  count.earliest = earliest
}
