import { setTimeout as sleep } from 'node:timers/promises'
import type { Clock } from './clock.js'
import { seal, unseal } from './crypto.js'
import type { EventLogger, GatewayEvents, GrantRevocationReason } from './events.js'
import type { GrantRecord, UnlockedGrant } from './grants.js'
import { invalidGrant, temporarilyUnavailable } from './oauth-errors.js'
import type { Store } from './stores/types.js'
import { UpstreamError } from './upstream-as/errors.js'
import type { UpstreamTokens } from './upstream-as/token-endpoint.js'
import { storeKey } from './grants/records.js'

export interface UpstreamRefresher {
  refresh (refreshToken: string): Promise<UpstreamTokens>
}

export interface SealedUpstream { a: string, r?: string }

export interface UpstreamRefreshOptions {
  store: Store
  clock: Clock
  upstream: UpstreamRefresher
  /** The upstream request timeout: how long a replica may hold the refresh lock, and others wait for it. */
  upstreamTimeoutMs: number
  /**
   * How long before its expiry an upstream token is renewed, at most (the access token TTL): clients are
   * then never handed a token that expires soon because the upstream's does (their early-refresh windows).
   */
  renewAheadMs: number
  events?: GatewayEvents | undefined
  /** Ends the grant (GrantService.revokeGrant) when the upstream refuses its refresh token. */
  revokeGrant: (grantId: string, reason: GrantRevocationReason, log: EventLogger | undefined) => Promise<void>
  /** Drops this process's cached requests of the grant, which carry the old upstream token. */
  forget: (grantId: string) => void
}

/** An upstream token this close to expiry is always refreshed before it is handed on (clock skew, latency). */
const UPSTREAM_EXPIRY_MARGIN_MS = 60_000
/** How often a replica waiting for another's upstream refresh looks at the grant again. */
const LOCK_POLL_MS = 20
/** Conditional writes lost to concurrent writers (a client's refresh) before giving up. */
const MAX_WRITE_ATTEMPTS = 5

/**
 * Refreshing a grant's upstream token (GitHub App tokens expire after 8 h and rotate their refresh token:
 * two refreshes with one refresh token burn the second and log the user out). One refresh per grant at a
 * time: within a process concurrent callers share one promise, across replicas a short lock in the store
 * lets one replica refresh while the others wait and read its result from the grant.
 */
export class UpstreamRefreshes {
  readonly #o: UpstreamRefreshOptions
  readonly #running = new Map<string, Promise<GrantRecord>>()

  constructor (options: UpstreamRefreshOptions) {
    this.#o = options
  }

  /**
   * When an upstream token that expires at `expiresAt`, issued now, is to be renewed: `renewAheadMs` before
   * its expiry, but past the middle of its life at the earliest (short-lived tokens are not refreshed on
   * every request) and a minute before its expiry at the latest.
   */
  renewAt (expiresAt: number): number {
    const lifetime = expiresAt - this.#o.clock.now()
    return expiresAt - Math.max(UPSTREAM_EXPIRY_MARGIN_MS, Math.min(this.#o.renewAheadMs, lifetime / 2))
  }

  /** True when the grant's upstream token never expires or is not due for renewal yet: fresh() has nothing to do. */
  isFresh ({ grant }: UnlockedGrant): boolean {
    if (grant.upstreamExpiresAt === undefined) return true
    return (grant.upstreamRenewAt ?? grant.upstreamExpiresAt - UPSTREAM_EXPIRY_MARGIN_MS) > this.#o.clock.now()
  }

  /** The grant with an upstream token that is not about to expire, refreshed if need be. */
  async fresh (unlocked: UnlockedGrant, log?: EventLogger): Promise<UnlockedGrant> {
    if (this.isFresh(unlocked)) return unlocked
    const current = await this.#storedCopy(unlocked)
    if (current === undefined) throw invalidGrant('grant revoked or expired')
    if (current.grant.sealedUpstream !== unlocked.grant.sealedUpstream) return await this.fresh(current, log)
    if (openUpstream(current).r === undefined) return await this.#expiredWithoutRefresh(current, log)
    return { grant: await this.#singleFlight(current, log), key: current.key }
  }

  /**
   * The upstream rejected the grant's token (401): refresh it now, whatever its expiry said, or undefined
   * when it cannot be refreshed. A token that another request already replaced is not refreshed again.
   */
  async recover (unlocked: UnlockedGrant, log?: EventLogger): Promise<UnlockedGrant | undefined> {
    const current = await this.#storedCopy(unlocked)
    if (current === undefined) return undefined
    if (current.grant.sealedUpstream !== unlocked.grant.sealedUpstream) return current
    if (openUpstream(current).r === undefined) return undefined
    return { grant: await this.#singleFlight(current, log), key: current.key }
  }

  /** fresh() for a grant not stored yet (a code exchange): nobody else can hold it, so no lock and no write. */
  async freshUnstored (unlocked: UnlockedGrant, log?: EventLogger): Promise<UnlockedGrant> {
    if (this.isFresh(unlocked)) return unlocked
    const { r: refreshToken } = openUpstream(unlocked)
    if (refreshToken === undefined) return await this.#expiredWithoutRefresh(unlocked, log)
    const tokens = await this.#callUpstream(refreshToken, log)
    if (typeof tokens === 'string') throw invalidGrant(`upstream refused the refresh: ${tokens}`)
    return { grant: this.#withUpstream(unlocked, tokens, refreshToken), key: unlocked.key }
  }

  async #expiredWithoutRefresh (unlocked: UnlockedGrant, log: EventLogger | undefined): Promise<UnlockedGrant> {
    if ((unlocked.grant.upstreamExpiresAt as number) > this.#o.clock.now()) return unlocked
    await this.#o.revokeGrant(unlocked.grant.id, 'upstream_expired', log)
    throw invalidGrant('upstream token expired and cannot be refreshed')
  }

  /** The store's copy: the one in hand may be old (token cache, another replica refreshed or revoked it). */
  async #storedCopy ({ grant, key }: UnlockedGrant): Promise<UnlockedGrant | undefined> {
    const current = await this.#o.store.get<GrantRecord>(storeKey.grant(grant.id))
    return current === undefined ? undefined : { grant: current, key }
  }

  async #singleFlight (unlocked: UnlockedGrant, log: EventLogger | undefined): Promise<GrantRecord> {
    const running = this.#running.get(unlocked.grant.id)
    if (running !== undefined) return await running
    const refresh = this.#acrossReplicas(unlocked, log)
    this.#running.set(unlocked.grant.id, refresh)
    try {
      return await refresh
    } finally {
      this.#running.delete(unlocked.grant.id)
    }
  }

  /**
   * Takes the grant's refresh lock, or waits for whoever holds it, until the grant's upstream token is no
   * longer the one `seen` holds. The grant is read after the lock is taken, so a replica that got the lock
   * just after another released it uses that one's result instead of refreshing again.
   */
  async #acrossReplicas (seen: UnlockedGrant, log: EventLogger | undefined): Promise<GrantRecord> {
    const lockKey = `lock:upstream-refresh:${seen.grant.id}`
    // Real time, not the service's clock: the wait is for another process's HTTP request.
    const deadline = Date.now() + this.#o.upstreamTimeoutMs + 1000
    for (;;) {
      const token = await this.#o.store.lock(lockKey, this.#o.upstreamTimeoutMs + 1000)
      try {
        const current = await this.#storedCopy(seen)
        if (current === undefined) throw invalidGrant('grant revoked or expired')
        if (current.grant.sealedUpstream !== seen.grant.sealedUpstream) return current.grant
        if (token !== undefined) return await this.#refresh(current, log)
      } finally {
        if (token !== undefined) await this.#o.store.unlock(lockKey, token)
      }
      if (Date.now() > deadline) throw temporarilyUnavailable('another replica\'s upstream refresh did not finish')
      await sleep(LOCK_POLL_MS)
    }
  }

  /** The refresh itself, under the lock: the upstream call, then a write that loses to any revocation. */
  async #refresh (unlocked: UnlockedGrant, log: EventLogger | undefined): Promise<GrantRecord> {
    const refreshToken = openUpstream(unlocked).r as string
    const tokens = await this.#callUpstream(refreshToken, log)
    if (typeof tokens === 'string') {
      // Refused: unless another replica refreshed meanwhile (a lock that outlived its TTL), the login is over.
      const current = await this.#storedCopy(unlocked)
      if (current !== undefined && current.grant.sealedUpstream !== unlocked.grant.sealedUpstream) return current.grant
      await this.#o.revokeGrant(unlocked.grant.id, 'upstream_refused', log)
      throw invalidGrant(`upstream refused the refresh: ${tokens}`)
    }
    let base = unlocked
    for (let attempt = 1; ; attempt++) {
      const updated = this.#withUpstream(base, tokens, refreshToken)
      updated.version = (base.grant.version ?? 0) + 1
      const ttlMs = Math.max(1, updated.expiresAt - this.#o.clock.now())
      if (await this.#o.store.replace(storeKey.grant(base.grant.id), base.grant.version ?? 0, updated, ttlMs)) {
        // Cached requests of this grant would go on with the old upstream token.
        this.#o.forget(base.grant.id)
        return updated
      }
      // Revoked meanwhile: the new upstream tokens die with it. Changed by a client's refresh: write again over it.
      const current = await this.#storedCopy(base)
      if (current === undefined) throw invalidGrant('grant revoked while its upstream token was refreshed')
      if (attempt >= MAX_WRITE_ATTEMPTS) {
        throw temporarilyUnavailable('the grant kept changing during the upstream refresh')
      }
      base = current
    }
  }

  /** The grant with the upstream's new tokens sealed in (some upstreams do not rotate: the old refresh token stays). */
  #withUpstream ({ grant, key }: UnlockedGrant, tokens: UpstreamTokens, refreshToken: string): GrantRecord {
    const merged: UpstreamTokens = { ...tokens, ...(tokens.refreshToken === undefined ? { refreshToken } : {}) }
    const { upstreamExpiresAt: _expiresAt, upstreamRenewAt: _renewAt, ...rest } = grant
    return {
      ...rest,
      sealedUpstream: seal(key, packUpstream(merged), grant.id),
      upstreamScopes: tokens.scopes.length > 0 ? tokens.scopes : grant.upstreamScopes,
      ...(tokens.expiresAt === undefined
        ? {}
        : { upstreamExpiresAt: tokens.expiresAt, upstreamRenewAt: this.renewAt(tokens.expiresAt) })
    }
  }

  /**
   * The upstream's new tokens, or its OAuth error code when it refused the refresh token (any other failure
   * throws).
   */
  async #callUpstream (refreshToken: string, log: EventLogger | undefined): Promise<UpstreamTokens | string> {
    try {
      return await this.#o.upstream.refresh(refreshToken)
    } catch (err) {
      if (err instanceof UpstreamError) this.#o.events?.emit('upstream_error', { kind: err.kind }, log)
      if (err instanceof UpstreamError && err.kind === 'oauth_error') return err.oauthError ?? 'unknown error'
      throw temporarilyUnavailable(`upstream refresh failed: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
}

export function openUpstream ({ grant, key }: UnlockedGrant): SealedUpstream {
  return JSON.parse(unseal([key], grant.sealedUpstream, grant.id)) as SealedUpstream
}

export function packUpstream (tokens: { accessToken: string, refreshToken?: string }): string {
  const payload: SealedUpstream = tokens.refreshToken === undefined
    ? { a: tokens.accessToken }
    : { a: tokens.accessToken, r: tokens.refreshToken }
  return JSON.stringify(payload)
}
