import type { Clock } from './clock.js'

/**
 * An in-process cache whose entries stop answering at their own deadline and whose size is capped: past the
 * cap the oldest entry is dropped, so keys an attacker chooses cannot grow memory. For store reads that a
 * request would otherwise repeat; a miss always means "ask the store".
 */
export class BoundedTtlCache<V> {
  readonly #entries = new Map<string, { value: V, until: number }>()
  readonly #maxEntries: number
  readonly #clock: Clock

  constructor (maxEntries: number, clock: Clock) {
    this.#maxEntries = maxEntries
    this.#clock = clock
  }

  /** The value, or undefined when absent or past its deadline (an expired entry is dropped). */
  get (key: string): V | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.until > this.#clock.now()) return entry.value
    this.#entries.delete(key)
    return undefined
  }

  /** Keeps `value` until the time `until` (ms since the epoch), dropping the oldest entry when full. */
  set (key: string, value: V, until: number): void {
    if (this.#entries.size >= this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value as string)
    this.#entries.set(key, { value, until })
  }

  delete (key: string): void {
    this.#entries.delete(key)
  }

  /** Drops every entry whose value matches, e.g. all tokens of one revoked grant. */
  deleteWhere (matches: (value: V) => boolean): void {
    for (const [key, entry] of this.#entries) {
      if (matches(entry.value)) this.#entries.delete(key)
    }
  }
}
