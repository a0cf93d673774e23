import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/*
 * What the demo authorization server remembers, in memory: maps that forget an entry when it expires and
 * drop the oldest one when full, so that a flood of registrations or sign-ins cannot grow them without
 * bound. Keys of tokens and codes are their SHA-256 hashes, never the values themselves.
 */

export class ExpiringMap<V> {
  readonly #entries = new Map<string, { value: V, expiresAt: number }>()
  readonly #max: number
  readonly #ttlMs: number
  readonly #now: () => number

  constructor (max: number, ttlMs: number, now: () => number = Date.now) {
    this.#max = max
    this.#ttlMs = ttlMs
    this.#now = now
  }

  set (key: string, value: V): void {
    this.#entries.delete(key)
    // A Map iterates in insertion order: the first key is the oldest.
    if (this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value as string)
    this.#entries.set(key, { value, expiresAt: this.#now() + this.#ttlMs })
  }

  get (key: string): V | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(key)
      return undefined
    }
    return entry.value
  }

  /** Gets and forgets: a code or a refresh token is good once. */
  take (key: string): V | undefined {
    const value = this.get(key)
    this.#entries.delete(key)
    return value
  }

  delete (key: string): void {
    this.#entries.delete(key)
  }
}

/** An opaque, unguessable value: 32 random bytes, base64url. */
export const randomToken = (): string => randomBytes(32).toString('base64url')

export const sha256 = (value: string): string => createHash('sha256').update(value).digest('base64url')

/** Compares two secrets in constant time (hashed first, so their lengths leak nothing either). */
export function sameSecret (a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest())
}
