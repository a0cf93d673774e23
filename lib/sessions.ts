import { hashSecret } from './crypto.js'
import type { Clock } from './clock.js'
import type { Store } from './stores/types.js'
import { BoundedTtlCache } from './ttl-cache.js'

const CACHE_MAX = 10_000

interface SessionOwner { grantId: string }

/**
 * MCP session ids bound to the grant they were issued to (MCP security best practices, session
 * hijacking: "bind session IDs to user-specific data"). Only ids the upstream hands out through the
 * gateway are bound (`bind`, when its answer carries a new one): an id nobody was given binds nothing,
 * so made-up ids cannot fill the store, and the upstream answers for them itself. A session id is a
 * handle, never a credential: presented with another grant's token it is unknown (404), as if it did
 * not exist.
 */
export class SessionStore {
  readonly #store: Store
  readonly #clock: Clock
  readonly #ttlMs: number
  readonly #cacheTtlMs: number
  /** Owners read recently, so a session's every request does not cost a store round trip. A session has one owner. */
  readonly #owners: BoundedTtlCache<string>

  constructor (deps: { store: Store, clock: Clock, ttlMs: number, cacheTtlMs: number }) {
    this.#store = deps.store
    this.#clock = deps.clock
    this.#ttlMs = deps.ttlMs
    this.#cacheTtlMs = deps.cacheTtlMs
    this.#owners = new BoundedTtlCache(CACHE_MAX, deps.clock)
  }

  /** False only when the session id is bound to another grant. */
  async mayUse (sessionId: string, grantId: string): Promise<boolean> {
    const known = this.#owners.get(sessionId)
    if (known !== undefined) return known === grantId
    const now = this.#clock.now()
    const owner = await this.#store.get<SessionOwner>(key(sessionId))
    if (owner === undefined) return true
    this.#remember(sessionId, owner.grantId, now)
    return owner.grantId === grantId
  }

  async bind (sessionId: string, grantId: string): Promise<void> {
    await this.#store.set<SessionOwner>(key(sessionId), { grantId }, this.#ttlMs)
    this.#remember(sessionId, grantId, this.#clock.now())
  }

  async forget (sessionId: string): Promise<void> {
    this.#owners.delete(sessionId)
    await this.#store.delete(key(sessionId))
  }

  #remember (sessionId: string, grantId: string, now: number): void {
    if (this.#cacheTtlMs <= 0) return
    this.#owners.set(sessionId, grantId, now + this.#cacheTtlMs)
  }
}

const key = (sessionId: string) => `mcp-session:${hashSecret(sessionId)}`
