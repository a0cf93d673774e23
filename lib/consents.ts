import { hashSecret } from './crypto.js'
import { isScopeSubset } from './scopes.js'
import type { Store } from './stores/types.js'

interface ConsentRecord {
  /** The upstream scopes the user approved for this client. */
  scopes: string[]
}

/**
 * Remembered consent, per user and client (MCP security best practices: "per-client consent
 * storage", checked before anything goes upstream). It answers the question only; the user still
 * signs in on every authorization. A request for scopes beyond those approved asks again.
 */
export class ConsentStore {
  readonly #store: Store
  readonly #ttlMs: number

  constructor (deps: { store: Store, ttlMs: number }) {
    this.#store = deps.store
    this.#ttlMs = deps.ttlMs
  }

  async remember (userId: string, clientId: string, scopes: string[]): Promise<void> {
    await this.#store.set<ConsentRecord>(key(userId, clientId), { scopes }, this.#ttlMs)
  }

  async covers (userId: string, clientId: string, scopes: string[]): Promise<boolean> {
    const consent = await this.#store.get<ConsentRecord>(key(userId, clientId))
    return consent !== undefined && isScopeSubset(scopes, consent.scopes)
  }
}

const key = (userId: string, clientId: string) => `consent:${hashSecret(`${userId}\n${clientId}`)}`
