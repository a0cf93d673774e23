import { hashSecret } from './crypto.js'
import type { Clock } from './clock.js'
import type { Store } from './stores/types.js'

const CACHE_MAX = 10_000

interface SessionOwner { grantId: string }

/**
 * MCP session ids bound to the grant that first used them (MCP security best practices, session
 * hijacking: "bind session IDs to user-specific data"). A session id is a handle, never a
 * credential: presented with another grant's token it is unknown (404), as if it did not exist.
 */
export class SessionStore {
  readonly #store: Store
  readonly #clock: Clock
  readonly #ttlMs: number
  readonly #cacheTtlMs: number
  /** Recent successful claims, so a session's every request does not cost a store round trip. */
  readonly #claims = new Map<string, number>()

  constructor (deps: { store: Store, clock: Clock, ttlMs: number, cacheTtlMs: number }) {
    this.#store = deps.store
    this.#clock = deps.clock
    this.#ttlMs = deps.ttlMs
    this.#cacheTtlMs = deps.cacheTtlMs
  }

  /** True when the session is this grant's, or nobody's yet (and now this grant's). */
  async claim (sessionId: string, grantId: string): Promise<boolean> {
    const now = this.#clock.now()
    const cacheKey = `${grantId}\n${sessionId}`
    if ((this.#claims.get(cacheKey) ?? 0) > now) return true
    const owner = await this.#store.get<SessionOwner>(key(sessionId))
    if (owner !== undefined && owner.grantId !== grantId) return false
    if (owner === undefined) await this.bind(sessionId, grantId)
    if (this.#cacheTtlMs > 0) {
      if (this.#claims.size >= CACHE_MAX) this.#claims.delete(this.#claims.keys().next().value as string)
      this.#claims.set(cacheKey, now + this.#cacheTtlMs)
    }
    return true
  }

  async bind (sessionId: string, grantId: string): Promise<void> {
    await this.#store.set<SessionOwner>(key(sessionId), { grantId }, this.#ttlMs)
  }

  async forget (sessionId: string): Promise<void> {
    for (const cacheKey of this.#claims.keys()) {
      if (cacheKey.endsWith(`\n${sessionId}`)) this.#claims.delete(cacheKey)
    }
    await this.#store.delete(key(sessionId))
  }
}

const key = (sessionId: string) => `mcp-session:${hashSecret(sessionId)}`
