import { hashSecret } from '../crypto.js'
import type { GrantIndex } from '../grant-index.js'
import { BoundedTtlCache } from '../ttl-cache.js'
import type { GrantServiceOptions } from './options.js'
import { sealLabel, storeKey, type AccessRecord, type AuthenticatedRequest, type GrantRecord } from './records.js'
import { openWithToken } from './token-keys.js'
import type { UpstreamTokenShares } from './upstream-tokens.js'

type AccessOptions = Pick<GrantServiceOptions, 'store' | 'clock' | 'sealKeys' | 'tokenCacheTtlMs'> & {
  shares: UpstreamTokenShares
  /** Told of each use, which it records at most every few minutes per grant (the account page's "last used"). */
  grantIndex?: GrantIndex
}

/** The store channel (under its prefix) on which revoked grant ids go to every replica. */
const REVOCATIONS_CHANNEL = 'revocations'
const TOKEN_CACHE_MAX = 10_000

/**
 * Access tokens as the proxy meets them: each request's token checked against the store, or against a
 * bounded in-memory cache of recent answers, which every replica empties of a grant as soon as any
 * replica revokes it.
 */
export class AccessTokens {
  readonly #o: AccessOptions
  /** Validated access tokens by hash, so a proxied request costs no store round trip. */
  readonly #tokenCache: BoundedTtlCache<AuthenticatedRequest>

  constructor (options: AccessOptions) {
    this.#o = options
    this.#tokenCache = new BoundedTtlCache(TOKEN_CACHE_MAX, options.clock)
  }

  /**
   * The grant behind a live access token, unlocked, with its upstream token; undefined when the
   * token is unknown, expired or revoked. Answers from memory for up to `tokenCacheTtlMs`, which is
   * therefore how late a revocation made by another replica can take effect here.
   */
  async authenticate (accessToken: string): Promise<AuthenticatedRequest | undefined> {
    const hash = hashSecret(accessToken)
    const cached = this.#tokenCache.get(hash)
    if (cached !== undefined) {
      await this.#o.grantIndex?.markUsed(cached.grant.id, cached.grant.expiresAt)
      return cached
    }
    const now = this.#o.clock.now()
    const access = await this.#o.store.get<AccessRecord>(storeKey.access(hash))
    if (access === undefined || access.expiresAt <= now) return undefined
    const grant = await this.#o.store.get<GrantRecord>(storeKey.grant(access.grantId))
    if (grant === undefined) return undefined
    const keyText = openWithToken(this.#o.sealKeys, accessToken, access.wrappedKey, sealLabel.access(grant.id))
    if (keyText === undefined) return undefined
    const unlocked = await this.#o.shares.unlock(grant, Buffer.from(keyText, 'base64url'))
    if (unlocked === undefined) return undefined
    const found: AuthenticatedRequest = { ...unlocked, access }
    if (this.#o.tokenCacheTtlMs > 0) {
      this.#tokenCache.set(hash, found, Math.min(now + this.#o.tokenCacheTtlMs, access.expiresAt))
    }
    await this.#o.grantIndex?.markUsed(grant.id, grant.expiresAt)
    return found
  }

  /** Drops this process's cached tokens of the grant: revoked, or its upstream token replaced. */
  forget (grantId: string): void {
    this.#tokenCache.deleteWhere((entry) => entry.grant.id === grantId)
  }

  /**
   * Drops this process's cached tokens of every grant another replica revokes, as soon as it says so
   * (on stores that carry messages: Redis). Resolves to the function that stops listening; without such
   * a store, or while the messages are lost, `tokenCacheTtlMs` stays the bound.
   */
  async followRevocations (): Promise<() => Promise<void>> {
    if (this.#o.store.subscribe === undefined) return async () => {}
    return await this.#o.store.subscribe(REVOCATIONS_CHANNEL, (grantId) => { this.forget(grantId) })
  }

  /** Tells the other replicas to forget the grant; if the message is lost they let go within tokenCacheTtlMs. */
  async announceRevoked (grantId: string): Promise<void> {
    await this.#o.store.publish?.(REVOCATIONS_CHANNEL, grantId).catch(() => {})
  }
}
