import { setTimeout as sleep } from 'node:timers/promises'
import type { ClientRecord } from '../clients.js'
import { hashSecret } from '../crypto.js'
import type { EventLogger } from '../events.js'
import { invalidGrant, invalidScope, temporarilyUnavailable } from '../oauth-errors.js'
import { checkBoundResource } from '../resource.js'
import { isScopeSubset, parseScopeParam } from '../scopes.js'
import { tokenResponse } from './issuance.js'
import type { GrantServiceOptions, GrantTypeParts } from './options.js'
import {
  sealLabel, storeKey, type GrantRecord, type RefreshRecord, type RepeatableAnswer, type TokenResponse
} from './records.js'
import { openWithToken, sealForToken } from './token-keys.js'
import type { UpstreamTokenShares } from './upstream-tokens.js'

export interface RefreshRequest {
  refreshToken: string
  scope?: string
  resource?: string | string[]
  log?: EventLogger
}

type RotationOptions = GrantTypeParts &
  Pick<GrantServiceOptions, 'store' | 'clock' | 'sealKeys' | 'refreshTtlMs' | 'refreshGraceMs' | 'events'> &
  { shares: UpstreamTokenShares }

/** Conditional grant writes lost to concurrent writers (an upstream refresh) before a refresh gives up. */
const MAX_ISSUE_ATTEMPTS = 5
/** How long a repeated refresh waits for the rotation it repeats to store its tokens (store writes only). */
const REPEAT_WAIT_MS = 5000
const REPEAT_POLL_MS = 20

/**
 * The refresh_token grant with rotation and reuse detection (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2):
 * each refresh token is rotated once; presenting it again revokes the whole grant, except within the
 * grace period, where it gets the same answer again (one live pair per grant, whichever the client kept).
 */
export class RefreshRotation {
  readonly #o: RotationOptions

  constructor (options: RotationOptions) {
    this.#o = options
  }

  async refresh (client: ClientRecord, p: RefreshRequest): Promise<TokenResponse> {
    const { store, clock, sealKeys } = this.#o
    const key = storeKey.refresh(hashSecret(p.refreshToken))
    const record = await store.get<RefreshRecord>(key)
    if (record === undefined || record.expiresAt <= clock.now()) throw invalidGrant('unknown or expired refresh token')
    if (record.clientId !== client.clientId) throw invalidGrant('refresh token issued to another client', 'warn')
    if (record.rotatedAt !== undefined) return await this.#repeat(record, p)
    const grant = await store.get<GrantRecord>(storeKey.grant(record.grantId))
    if (grant === undefined) throw invalidGrant('grant revoked or expired')
    checkRequest(p, grant)
    const keyText = openWithToken(sealKeys, p.refreshToken, record.wrappedKey, sealLabel.refresh(grant.id))
    if (keyText === undefined) throw invalidGrant('refresh token wrapped under a secret no longer configured')
    const held = await this.#o.shares.unlock(grant, Buffer.from(keyText, 'base64url'))
    if (held === undefined) throw invalidGrant('grant revoked or expired')
    // The upstream is refreshed before the client's token is spent: if the upstream is down, the
    // client keeps a refresh token it can retry with.
    let unlocked = await this.#o.upstreamRefreshes.fresh(held, p.log)

    // The rotation: one conditional write, which exactly one of several concurrent refreshes makes. It
    // records the new tokens (sealed for this token's holder) before they exist; the others wait for them.
    const now = clock.now()
    const tokens = this.#o.issuer.newTokens(unlocked, client)
    const tombstone: RefreshRecord = { ...record, rotatedAt: now, wrappedKey: '', version: (record.version ?? 0) + 1 }
    if (this.#o.refreshGraceMs > 0) {
      const answer: RepeatableAnswer = { ...tokens, scope: grant.scope }
      tombstone.answer = sealForToken(sealKeys, p.refreshToken, JSON.stringify(answer), `refresh-answer:${grant.id}`)
    }
    if (!await store.replace(key, record.version ?? 0, tombstone, Math.max(1, record.expiresAt - now))) {
      const rotated = await store.get<RefreshRecord>(key)
      if (rotated === undefined) throw invalidGrant('grant revoked while refreshing')
      return await this.#repeat(rotated, p)
    }
    // The grant's upstream tokens must last as long as the grant now does.
    const expiresAt = now + this.#o.refreshTtlMs
    const shareId = unlocked.grant.upstreamTokens
    if (shareId !== undefined) await this.#o.shares.outlast(shareId, expiresAt)
    // The grant is written only over the version read: a revocation in between (reuse detected by a
    // concurrent refresh, /revoke) wins. A write lost to another writer is made again over it.
    for (let attempt = 1; ; attempt++) {
      const renewed = { ...unlocked, grant: { ...unlocked.grant, expiresAt } }
      const issued = await this.#o.issuer.issue(renewed, 'replace', tokens)
      if (issued !== undefined) {
        // The index lease follows the grant's (older grants join it here); the tokens are issued either way.
        await this.#o.grantIndex.put(grant.userId, grant.id, renewed.grant.expiresAt).catch(() => false)
        const issuedTo = { clientId: client.clientId, grantId: grant.id, grantType: 'refresh_token' } as const
        this.#o.events?.emit('tokens_issued', issuedTo, p.log)
        return issued
      }
      const current = await store.get<GrantRecord>(storeKey.grant(grant.id))
      if (current === undefined || attempt >= MAX_ISSUE_ATTEMPTS) throw invalidGrant('grant revoked while refreshing')
      unlocked = { ...unlocked, grant: current }
    }
  }

  /**
   * A rotated refresh token presented again. Within the grace period: the answer its rotation gave, once
   * that rotation has stored its tokens. After it (or with no grace period): reuse, and the whole family
   * is revoked.
   */
  async #repeat (record: RefreshRecord, p: RefreshRequest): Promise<TokenResponse> {
    const { clock, events } = this.#o
    const rotatedAt = record.rotatedAt as number
    if (record.answer === undefined || clock.now() - rotatedAt >= this.#o.refreshGraceMs) {
      events?.emit('refresh_reuse_detected', { clientId: record.clientId, grantId: record.grantId }, p.log)
      await this.#o.revokeGrant(record.grantId, 'refresh_reuse', p.log)
      throw invalidGrant('refresh token reused; grant revoked', 'warn')
    }
    const sealed = openWithToken(this.#o.sealKeys, p.refreshToken, record.answer, `refresh-answer:${record.grantId}`)
    if (sealed === undefined) throw invalidGrant('refresh token wrapped under a secret no longer configured')
    const answer = JSON.parse(sealed) as RepeatableAnswer
    // The new refresh token's record, not the access token's: it lives as long as the grant, whatever
    // --refresh-grace is. A client that refreshes is registered for refresh tokens, so its answer has one.
    const grant = await this.#untilStored(record.grantId, storeKey.refresh(hashSecret(answer.refreshToken as string)))
    checkRequest(p, grant)
    events?.emit('refresh_repeated', { clientId: record.clientId, grantId: record.grantId }, p.log)
    return tokenResponse(answer, answer.accessExpiresAt - clock.now(), answer.scope)
  }

  /** The grant once the record `key` of the answer is stored: the rotation being repeated has finished. */
  async #untilStored (grantId: string, key: string): Promise<GrantRecord> {
    // Real time, not the service's clock: the wait is for another request's store writes.
    const deadline = Date.now() + REPEAT_WAIT_MS
    for (;;) {
      const grant = await this.#o.store.get<GrantRecord>(storeKey.grant(grantId))
      if (grant === undefined) throw invalidGrant('grant revoked or expired')
      if (await this.#o.store.get(key) !== undefined) return grant
      if (Date.now() > deadline) {
        const retry = 'the refresh is still in progress, try again'
        throw temporarilyUnavailable('the refresh being repeated did not finish', retry)
      }
      await sleep(REPEAT_POLL_MS)
    }
  }
}

/** A refresh may narrow the scope (OAuth 2.1 §4.3.1) and must name the grant's resource, if any (RFC 8707). */
function checkRequest (p: { scope?: string, resource?: string | string[] }, grant: GrantRecord): void {
  if (p.scope !== undefined && !isScopeSubset(parseScopeParam(p.scope), parseScopeParam(grant.scope))) {
    throw invalidScope(`asked for ${p.scope.slice(0, 200)}`)
  }
  checkBoundResource(p.resource, grant.resource)
}
