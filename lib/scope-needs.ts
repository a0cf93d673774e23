import { hashSecret } from './crypto.js'
import { scopeUnion } from './scopes.js'
import type { Store } from './stores/types.js'

interface ScopeNeeds { scopes: string[] }

/**
 * Upstream scopes a user turned out to need (the upstream answered 403 insufficient_scope, as
 * GitHub's remote MCP server does for OAuth App tokens). The next authorization asks the upstream for
 * the configured scopes plus these, so a re-authorizing client comes back with enough.
 */
export class ScopeNeedStore {
  readonly #store: Store
  readonly #ttlMs: number

  constructor (deps: { store: Store, ttlMs: number }) {
    this.#store = deps.store
    this.#ttlMs = deps.ttlMs
  }

  async add (userId: string, scopes: readonly string[]): Promise<void> {
    const known = await this.get(userId)
    await this.#store.set<ScopeNeeds>(key(userId), { scopes: scopeUnion(known, scopes) }, this.#ttlMs)
  }

  async get (userId: string): Promise<string[]> {
    return (await this.#store.get<ScopeNeeds>(key(userId)))?.scopes ?? []
  }
}

const key = (userId: string) => `upstream-scope-needs:${hashSecret(userId)}`
