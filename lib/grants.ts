import type { ClientRecord } from './clients.js'
import { hashSecret } from './crypto.js'
import type { EventLogger, GrantRevocationReason } from './events.js'
import { GrantIndex } from './grant-index.js'
import { AccessTokens } from './grants/access.js'
import { AuthorizationCodes, type CodeExchange } from './grants/codes.js'
import { TokenIssuer } from './grants/issuance.js'
import type { GrantServiceOptions, GrantTypeParts } from './grants/options.js'
import {
  sealLabel, storeKey, type AccessRecord, type AuthenticatedRequest, type CodeGrant, type GrantRecord,
  type RefreshRecord, type TokenResponse, type UnlockedGrant, type UpstreamTokenRecord
} from './grants/records.js'
import { RefreshRotation, type RefreshRequest } from './grants/refresh.js'
import { openWithToken } from './grants/token-keys.js'
import { UpstreamTokenShares, openHolder } from './grants/upstream-tokens.js'
import { UpstreamRefreshes } from './upstream-refresh.js'

// What the routes and the upstream refresher read of a grant, from the one door they use.
export type { AuthenticatedRequest, GrantRecord, TokenResponse, UnlockedGrant } from './grants/records.js'

/** Grants a person may hold at once unless configured (--max-grants-per-user). */
export const DEFAULT_MAX_GRANTS_PER_USER = 100

/**
 * A grant as the account page and the operator see it: who, which client, what access, when. Nothing secret,
 * and nothing sealed.
 */
export interface GrantSummary {
  id: string
  userId: string
  clientId: string
  /** The client's name when it was granted; absent when it gave none (or on grants older than this field). */
  clientName?: string
  /** The gateway's scope on the grant's tokens. */
  scope: string
  /** What the upstream granted (GitHub's scopes). */
  upstreamScopes: string[]
  /** Who signed in upstream, when the upstream said. */
  upstreamLogin?: string
  /** Epoch ms; absent on grants older than the field. */
  createdAt?: number
  /** Epoch ms, to a few minutes (lib/grant-index.ts); absent when never used since it was recorded. */
  lastUsedAt?: number
  /** When the grant lapses unless refreshed, epoch ms. */
  expiresAt: number
}

/**
 * Codes, grants, access and refresh tokens. Pure OAuth logic over the store, with no HTTP in it:
 * the routes authenticate the client and shape replies, this decides. The one door the routes use;
 * the rules live in lib/grants/ (codes, refresh rotation, access tokens, issuance), and ending a
 * grant, which all of them need, lives here.
 *
 * Secrets at rest (the model of Cloudflare's workers-oauth-provider): tokens are opaque random
 * strings stored only as SHA-256 ids. Each grant has its own random key that opens its copy of the
 * upstream tokens (a person's grants share one set: lib/grants/upstream-tokens.ts); that key is stored
 * only wrapped under keys derived (HMAC with the operator's secret) from the grant's current access and
 * refresh tokens. A copy of the store alone, or of the store and the secret, opens nothing.
 */
export class GrantService {
  readonly #o: GrantServiceOptions
  readonly #access: AccessTokens
  readonly #upstream: UpstreamRefreshes
  readonly #codes: AuthorizationCodes
  readonly #rotation: RefreshRotation
  readonly #shares: UpstreamTokenShares
  readonly #index: GrantIndex

  constructor (options: GrantServiceOptions) {
    this.#o = options
    const upstreamTimeoutMs = options.upstreamTimeoutMs ?? 10_000
    const shares = new UpstreamTokenShares({
      store: options.store,
      clock: options.clock,
      sealKeys: options.sealKeys,
      lockTtlMs: upstreamTimeoutMs + 1000,
      renewAt: (expiresAt) => this.#upstream.renewAt(expiresAt)
    })
    this.#shares = shares
    const maxPerUser = options.maxGrantsPerUser ?? DEFAULT_MAX_GRANTS_PER_USER
    this.#index = new GrantIndex({ store: options.store, clock: options.clock, maxPerUser })
    this.#access = new AccessTokens({ ...options, shares, grantIndex: this.#index })
    const revokeGrant: GrantTypeParts['revokeGrant'] = async (grantId, reason, log) => {
      await this.revokeGrant(grantId, reason, log)
    }
    this.#upstream = new UpstreamRefreshes({
      shares,
      store: options.store,
      clock: options.clock,
      upstream: options.upstream,
      upstreamTimeoutMs,
      renewAheadMs: options.accessTtlMs,
      events: options.events,
      revokeGrant,
      forget: (grantId) => { this.#access.forget(grantId) }
    })
    const issuer = new TokenIssuer(options)
    const grantIndex = this.#index
    const pieces = { ...options, issuer, shares, upstreamRefreshes: this.#upstream, grantIndex, revokeGrant }
    this.#codes = new AuthorizationCodes(pieces)
    this.#rotation = new RefreshRotation(pieces)
  }

  /** Drops cached tokens of grants other replicas revoke (AccessTokens.followRevocations). */
  async followRevocations (): Promise<() => Promise<void>> {
    return await this.#access.followRevocations()
  }

  /** Mints a single-use authorization code (OAuth 2.1 §4.1.2) for a finished flow. */
  async createCode (grant: CodeGrant): Promise<string> {
    return await this.#codes.create(grant)
  }

  /** The authorization_code grant (OAuth 2.1 §4.1.3): lib/grants/codes.ts. */
  async exchangeCode (client: ClientRecord, p: CodeExchange): Promise<TokenResponse> {
    return await this.#codes.exchange(client, p)
  }

  /** The refresh_token grant with rotation and reuse detection: lib/grants/refresh.ts. */
  async refresh (client: ClientRecord, p: RefreshRequest): Promise<TokenResponse> {
    return await this.#rotation.refresh(client, p)
  }

  /**
   * RFC 7009: revoking either token revokes the grant (and so both tokens and its hold on the upstream
   * tokens). Unknown tokens and other clients' tokens are ignored, as the RFC asks: 200 either way.
   */
  async revoke (client: ClientRecord, token: string, log?: EventLogger): Promise<void> {
    const hash = hashSecret(token)
    const refresh = await this.#o.store.get<RefreshRecord>(storeKey.refresh(hash))
    const access = refresh === undefined ? await this.#o.store.get<AccessRecord>(storeKey.access(hash)) : undefined
    const record = refresh ?? access
    if (record === undefined || record.clientId !== client.clientId) return
    // The token opens the grant's key, which opens the upstream tokens to revoke upstream if this was their last grant.
    const label = refresh === undefined ? sealLabel.access(record.grantId) : sealLabel.refresh(record.grantId)
    const keyText = record.wrappedKey === ''
      ? undefined
      : openWithToken(this.#o.sealKeys, token, record.wrappedKey, label)
    const key = keyText === undefined ? undefined : Buffer.from(keyText, 'base64url')
    await this.revokeGrant(record.grantId, 'client_revoked', log, key)
  }

  /**
   * Ends a grant and every token of it; reported (grant_revoked) only when there was one to end, and then true.
   * Every replica forgets it at once (followRevocations), and its holder's index drops it. When it was the last
   * grant to hold its upstream tokens and its key is at hand (a client revoking its own token), the tokens are
   * revoked upstream too, where the upstream offers that; without the key they cannot be opened.
   */
  async revokeGrant (
    grantId: string,
    reason: GrantRevocationReason,
    log?: EventLogger,
    key?: Buffer
  ): Promise<boolean> {
    this.#access.forget(grantId)
    const grant = await this.#o.store.take<GrantRecord>(storeKey.grant(grantId))
    if (grant === undefined) return false
    await this.#o.store.delete(storeKey.access(grant.accessHash))
    if (grant.refreshHash !== undefined) await this.#o.store.delete(storeKey.refresh(grant.refreshHash))
    this.#o.events?.emit('grant_revoked', { clientId: grant.clientId, grantId, reason }, log)
    await this.#access.announceRevoked(grantId)
    // Housekeeping: the grant is over either way, and an id left in the index is dropped when next listed.
    await this.#index.remove(grant.userId, [grantId]).catch(() => {})
    await this.#index.forgetUse(grantId).catch(() => {})
    if (grant.upstreamTokens !== undefined) {
      const last = await this.#shares.release(grant.upstreamTokens, grantId)
      if (last !== undefined && key !== undefined) await this.#revokeUpstream(last, grantId, key, log)
    }
    return true
  }

  /** Best effort: the grant is over either way, and a failure here is only logged. */
  async #revokeUpstream (
    last: UpstreamTokenRecord,
    grantId: string,
    key: Buffer,
    log: EventLogger | undefined
  ): Promise<void> {
    const revoke = this.#o.revokeUpstream
    if (revoke === undefined) return
    try {
      const revoked = await revoke(openHolder(last, grantId, key).a)
      log?.info({ grantId, upstreamTokenRevoked: revoked }, 'last grant of its upstream tokens revoked')
    } catch (err) {
      log?.warn({ grantId, err: err instanceof Error ? err.message : String(err) }, 'upstream token revocation failed')
    }
  }

  /** The live grants of a person, oldest first; ids the index holds whose grant is gone are dropped from it. */
  async grantsOf (userId: string): Promise<GrantSummary[]> {
    const ids = await this.#index.grantIds(userId)
    const records = await Promise.all(ids.map(async (id) => await this.#o.store.get<GrantRecord>(storeKey.grant(id))))
    const gone = ids.filter((_id, i) => records[i]?.userId !== userId)
    // Best effort: the list is right either way, and the next listing tries again.
    if (gone.length > 0) await this.#index.remove(userId, gone).catch(() => {})
    const held = records.filter((grant): grant is GrantRecord => grant?.userId === userId)
    const summaries = await Promise.all(held.map(async (grant) => await this.#summary(grant)))
    return summaries.sort((a, b) => (a.createdAt ?? 0) - (b.createdAt ?? 0) || a.id.localeCompare(b.id))
  }

  /** Everyone who holds (or lately held) a grant, sorted: the operator's `grants list` without --user. */
  async grantHolders (): Promise<string[]> {
    return await this.#index.users()
  }

  /** One live grant, as the account page and the operator see it. */
  async findGrant (grantId: string): Promise<GrantSummary | undefined> {
    const grant = await this.#o.store.get<GrantRecord>(storeKey.grant(grantId))
    return grant === undefined ? undefined : await this.#summary(grant)
  }

  async #summary (grant: GrantRecord): Promise<GrantSummary> {
    const lastUsedAt = await this.#index.lastUsed(grant.id)
    // What the upstream granted is on the shared upstream tokens (not secret), or on a grant from before them.
    const shared = grant.upstreamTokens === undefined
      ? undefined
      : await this.#o.store.get<UpstreamTokenRecord>(storeKey.upstreamTokens(grant.upstreamTokens))
    return {
      id: grant.id,
      userId: grant.userId,
      clientId: grant.clientId,
      ...(grant.clientName === undefined ? {} : { clientName: grant.clientName }),
      scope: grant.scope,
      upstreamScopes: shared?.upstreamScopes ?? grant.upstreamScopes ?? [],
      ...(grant.upstreamUser === undefined ? {} : { upstreamLogin: grant.upstreamUser.login }),
      ...(grant.createdAt === undefined ? {} : { createdAt: grant.createdAt }),
      ...(lastUsedAt === undefined ? {} : { lastUsedAt }),
      expiresAt: grant.expiresAt
    }
  }

  /** The grant behind a live access token (lib/grants/access.ts); undefined when it is no longer live. */
  async authenticate (accessToken: string): Promise<AuthenticatedRequest | undefined> {
    return await this.#access.authenticate(accessToken)
  }

  /**
   * The upstream access token of an unlocked grant, for the proxy. It never leaves the server. An
   * authenticated request carries it unsealed already (cached with it); every grant this service hands
   * back after a refresh is a new `{ grant, key }`, so a carried token always belongs to its grant.
   */
  upstreamAccessToken (unlocked: UnlockedGrant): string {
    return unlocked.upstream.tokens.a
  }

  /** True when the grant's upstream token never expires or has time left: freshUpstream() has nothing to do. */
  isUpstreamFresh (unlocked: UnlockedGrant): boolean {
    return this.#upstream.isFresh(unlocked)
  }

  /** The grant with an upstream token that is not about to expire (lib/upstream-refresh.ts). */
  async freshUpstream (unlocked: UnlockedGrant, log?: EventLogger): Promise<UnlockedGrant> {
    return await this.#upstream.fresh(unlocked, log)
  }

  /** The upstream rejected the grant's token: a refreshed grant, or undefined when it cannot be refreshed. */
  async recoverUpstream (unlocked: UnlockedGrant, log?: EventLogger): Promise<UnlockedGrant | undefined> {
    return await this.#upstream.recover(unlocked, log)
  }
}
