import { setTimeout as sleep } from 'node:timers/promises'
import type { Clock } from './clock.js'
import type { EventLogger, GatewayEvents, GrantRevocationReason } from './events.js'
import { storeKey, type UnlockedGrant, type UpstreamTokenRecord } from './grants/records.js'
import { shareLockKey, type UpstreamTokenShares } from './grants/upstream-tokens.js'
import { invalidGrant, temporarilyUnavailable } from './oauth-errors.js'
import type { Store } from './stores/types.js'
import { UpstreamError } from './upstream-as/errors.js'
import type { UpstreamTokens } from './upstream-as/token-endpoint.js'

export interface UpstreamRefresher {
  refresh (refreshToken: string): Promise<UpstreamTokens>
}

export interface UpstreamRefreshOptions {
  store: Store
  clock: Clock
  upstream: UpstreamRefresher
  /** Where grants' upstream tokens are kept, shared by the grants of one person (lib/grants/upstream-tokens.ts). */
  shares: UpstreamTokenShares
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
/** How often a replica waiting for another's upstream refresh looks at the tokens again. */
const LOCK_POLL_MS = 20
/** Conditional writes lost to concurrent writers (a grant joining or leaving) before giving up. */
const MAX_WRITE_ATTEMPTS = 5

/**
 * Refreshing grants' upstream tokens (GitHub App tokens expire after 8 h and rotate their refresh token:
 * two refreshes with one refresh token burn the second and log the user out). The tokens are shared by a
 * person's grants (lib/grants/upstream-tokens.ts), and refreshed once for all of them: within a process
 * concurrent callers share one promise, across replicas a short lock in the store lets one replica refresh
 * while the others wait and read its result.
 */
export class UpstreamRefreshes {
  readonly #o: UpstreamRefreshOptions
  readonly #running = new Map<string, Promise<UpstreamTokenRecord>>()

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
  isFresh ({ upstream: { record } }: UnlockedGrant): boolean {
    return isFreshAt(record, this.#o.clock.now())
  }

  /** The grant with an upstream token that is not about to expire, refreshed if need be. */
  async fresh (unlocked: UnlockedGrant, log?: EventLogger): Promise<UnlockedGrant> {
    if (this.isFresh(unlocked)) return unlocked
    const current = await this.#o.shares.reread(unlocked)
    if (current === undefined) throw invalidGrant('grant revoked or expired')
    if (renewedSince(current, unlocked)) return await this.fresh(current, log)
    if (current.upstream.tokens.r === undefined) return await this.#expiredWithoutRefresh(current, log)
    return await this.#refreshed(current, log)
  }

  /**
   * The upstream rejected the grant's token (401): refresh it now, whatever its expiry said, or undefined
   * when it cannot be refreshed. A token that another request already replaced is not refreshed again.
   */
  async recover (unlocked: UnlockedGrant, log?: EventLogger): Promise<UnlockedGrant | undefined> {
    const current = await this.#o.shares.reread(unlocked)
    if (current === undefined) return undefined
    if (renewedSince(current, unlocked)) return current
    if (current.upstream.tokens.r === undefined) return undefined
    return await this.#refreshed(current, log)
  }

  /**
   * The tokens of an upstream sign-in, not held by any grant yet (a code exchange), fresh: nobody else can
   * hold them, so no lock. Expired without a way to refresh them: invalid_grant.
   */
  async freshTokens (tokens: UpstreamTokens, log?: EventLogger): Promise<UpstreamTokens> {
    const now = this.#o.clock.now()
    if (tokens.expiresAt === undefined || isFreshAt({ upstreamExpiresAt: tokens.expiresAt }, now)) return tokens
    if (tokens.refreshToken === undefined) {
      if (tokens.expiresAt > now) return tokens
      throw invalidGrant('upstream token expired and cannot be refreshed')
    }
    const renewed = await this.#callUpstream(tokens.refreshToken, log)
    if (typeof renewed === 'string') throw invalidGrant(`upstream refused the refresh: ${renewed}`)
    return withRefreshToken(renewed, tokens.refreshToken)
  }

  async #expiredWithoutRefresh (unlocked: UnlockedGrant, log: EventLogger | undefined): Promise<UnlockedGrant> {
    if ((unlocked.upstream.record.upstreamExpiresAt as number) > this.#o.clock.now()) return unlocked
    await this.#endHolders(unlocked.upstream.record, 'upstream_expired', log)
    throw invalidGrant('upstream token expired and cannot be refreshed')
  }

  /** The grant with its copy of the tokens after one refresh of its share, shared by every caller in this process. */
  async #refreshed (unlocked: UnlockedGrant, log: EventLogger | undefined): Promise<UnlockedGrant> {
    const shareId = unlocked.upstream.record.id
    let refresh = this.#running.get(shareId)
    if (refresh === undefined) {
      refresh = this.#acrossReplicas(unlocked, log).finally(() => { this.#running.delete(shareId) })
      this.#running.set(shareId, refresh)
    }
    await refresh
    const current = await this.#o.shares.reread(unlocked)
    if (current === undefined) throw invalidGrant('grant revoked or expired')
    return current
  }

  /**
   * Takes the share's lock, or waits for whoever holds it, until the tokens are no longer the ones `seen`
   * holds. The share is read after the lock is taken, so a replica that got the lock just after another
   * released it uses that one's result instead of refreshing again.
   */
  async #acrossReplicas (seen: UnlockedGrant, log: EventLogger | undefined): Promise<UpstreamTokenRecord> {
    const lockKey = shareLockKey(seen.upstream.record.id)
    // Real time, not the service's clock: the wait is for another process's HTTP request.
    const deadline = Date.now() + this.#o.upstreamTimeoutMs + 1000
    for (;;) {
      const token = await this.#o.store.lock(lockKey, this.#o.upstreamTimeoutMs + 1000)
      try {
        const current = await this.#o.shares.reread(seen)
        if (current === undefined) throw invalidGrant('grant revoked or expired')
        if (renewedSince(current, seen)) return current.upstream.record
        if (token !== undefined) return await this.#refresh(current, log)
      } finally {
        if (token !== undefined) await this.#o.store.unlock(lockKey, token)
      }
      if (Date.now() > deadline) throw temporarilyUnavailable('another replica\'s upstream refresh did not finish')
      await sleep(LOCK_POLL_MS)
    }
  }

  /** The refresh itself, under the lock: the upstream call, then a write for every grant that holds the tokens. */
  async #refresh (unlocked: UnlockedGrant, log: EventLogger | undefined): Promise<UpstreamTokenRecord> {
    const refreshToken = unlocked.upstream.tokens.r as string
    const tokens = await this.#callUpstream(refreshToken, log)
    let read = unlocked.upstream.record
    if (typeof tokens === 'string') {
      // Refused: unless the tokens were renewed meanwhile (a lock that outlived its TTL, a new sign-in), the
      // upstream login is over, for every grant that holds it.
      const current = await this.#o.shares.reread(unlocked)
      if (current !== undefined && renewedSince(current, unlocked)) return current.upstream.record
      await this.#endHolders(read, 'upstream_refused', log)
      throw invalidGrant(`upstream refused the refresh: ${tokens}`)
    }
    for (let attempt = 1; ; attempt++) {
      const renewed = await this.#o.shares.renew(read, withRefreshToken(tokens, refreshToken))
      if (renewed !== undefined) {
        // Cached requests of these grants would go on with the old upstream token.
        for (const grantId of Object.keys(renewed.holders)) this.#o.forget(grantId)
        return renewed
      }
      // A grant joined or left, or the share was kept longer: write again over it. Renewed by a sign-in: that stands.
      const current = await this.#o.store.get<UpstreamTokenRecord>(storeKey.upstreamTokens(read.id))
      if (current === undefined) throw invalidGrant('grant revoked while its upstream token was refreshed')
      if (current.generation !== read.generation) return current
      if (attempt >= MAX_WRITE_ATTEMPTS) throw temporarilyUnavailable('the upstream tokens kept changing')
      read = current
    }
  }

  /** Every grant that holds these tokens ends: the upstream no longer takes them. */
  async #endHolders (
    record: UpstreamTokenRecord,
    reason: GrantRevocationReason,
    log: EventLogger | undefined
  ): Promise<void> {
    for (const grantId of Object.keys(record.holders)) await this.#o.revokeGrant(grantId, reason, log)
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

/** True when `current` holds other tokens than `seen` did: someone renewed them in between. */
function renewedSince (current: UnlockedGrant, seen: UnlockedGrant): boolean {
  return current.upstream.record.generation !== seen.upstream.record.generation
}

function isFreshAt (record: { upstreamExpiresAt?: number, upstreamRenewAt?: number }, now: number): boolean {
  if (record.upstreamExpiresAt === undefined) return true
  return (record.upstreamRenewAt ?? record.upstreamExpiresAt - UPSTREAM_EXPIRY_MARGIN_MS) > now
}

/** Some upstreams do not rotate refresh tokens: the old one stays (RFC 6749 §6). */
function withRefreshToken (tokens: UpstreamTokens, refreshToken: string): UpstreamTokens {
  return tokens.refreshToken === undefined ? { ...tokens, refreshToken } : tokens
}
