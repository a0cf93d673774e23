import { hashSecret } from './crypto.js'
import type { Store } from './stores/types.js'

interface SessionOwner { grantId: string }

/**
 * MCP session ids bound to the grant that first used them (MCP security best practices, session
 * hijacking: "bind session IDs to user-specific data"). A session id is a handle, never a
 * credential: presented with another grant's token it is unknown (404), as if it did not exist.
 */
export class SessionStore {
  readonly #store: Store
  readonly #ttlMs: number

  constructor (deps: { store: Store, ttlMs: number }) {
    this.#store = deps.store
    this.#ttlMs = deps.ttlMs
  }

  /** True when the session is this grant's, or nobody's yet (and now this grant's). */
  async claim (sessionId: string, grantId: string): Promise<boolean> {
    const owner = await this.#store.get<SessionOwner>(key(sessionId))
    if (owner !== undefined) return owner.grantId === grantId
    await this.bind(sessionId, grantId)
    return true
  }

  async bind (sessionId: string, grantId: string): Promise<void> {
    await this.#store.set<SessionOwner>(key(sessionId), { grantId }, this.#ttlMs)
  }

  async forget (sessionId: string): Promise<void> {
    await this.#store.delete(key(sessionId))
  }
}

const key = (sessionId: string) => `mcp-session:${hashSecret(sessionId)}`
