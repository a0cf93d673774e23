import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ClientRecord } from './clients.js'
import { hashSecret, randomToken, seal } from './crypto.js'
import type { EventLogger, GatewayEventMap, GrantRevocationReason } from './events.js'
import { TokenIssuer, tokenResponse } from './grants/issuance.js'
import type { GrantServiceOptions } from './grants/options.js'
import type {
  AccessRecord, AuthenticatedRequest, CodeGrant, CodeRecord, GrantRecord, RefreshRecord, RepeatableAnswer,
  TokenResponse, UnlockedGrant
} from './grants/records.js'
import { openWithToken, sealForToken } from './grants/token-keys.js'
import { invalidGrant, invalidScope, temporarilyUnavailable } from './oauth-errors.js'
import { verifyS256 } from './pkce.js'
import { checkBoundResource } from './resource.js'
import { isScopeSubset, parseScopeParam } from './scopes.js'
import { BoundedTtlCache } from './ttl-cache.js'
import { UpstreamRefreshes, openUpstream, packUpstream } from './upstream-refresh.js'

export type { UpstreamRefresher } from './upstream-refresh.js'
export type { GrantServiceOptions } from './grants/options.js'
export type {
  AccessRecord, AuthenticatedRequest, CodeGrant, GrantRecord, TokenResponse, UnlockedGrant
} from './grants/records.js'

/** The store channel (under its prefix) on which revoked grant ids go to every replica. */
const REVOCATIONS_CHANNEL = 'revocations'
/** Conditional grant writes lost to concurrent writers (an upstream refresh) before a refresh gives up. */
const MAX_ISSUE_ATTEMPTS = 5
/** How long a repeated refresh waits for the rotation it repeats to store its tokens (store writes only). */
const REPEAT_WAIT_MS = 5000
const REPEAT_POLL_MS = 20
const TOKEN_CACHE_MAX = 10_000

/**
 * Codes, grants, access and refresh tokens. Pure OAuth logic over the store, with no HTTP in it:
 * the routes authenticate the client and shape replies, this decides.
 *
 * Secrets at rest (the model of Cloudflare's workers-oauth-provider): tokens are opaque random
 * strings stored only as SHA-256 ids. Each grant has its own random key that seals its upstream
 * tokens; that key is stored only wrapped under keys derived (HMAC with the operator's secret) from
 * the grant's current access and refresh tokens. A copy of the store alone opens nothing.
 */
export class GrantService {
  readonly #o: GrantServiceOptions
  readonly #upstream: UpstreamRefreshes
  readonly #issuer: TokenIssuer
  /** Validated access tokens by hash, so a proxied request costs no store round trip. */
  readonly #tokenCache: BoundedTtlCache<AuthenticatedRequest>

  constructor (options: GrantServiceOptions) {
    this.#o = options
    this.#tokenCache = new BoundedTtlCache(TOKEN_CACHE_MAX, options.clock)
    this.#issuer = new TokenIssuer(options)
    this.#upstream = new UpstreamRefreshes({
      store: options.store,
      clock: options.clock,
      upstream: options.upstream,
      upstreamTimeoutMs: options.upstreamTimeoutMs ?? 10_000,
      renewAheadMs: options.accessTtlMs,
      events: options.events,
      revokeGrant: async (grantId, reason, log) => { await this.revokeGrant(grantId, reason, log) },
      forget: (grantId) => { this.#forget(grantId) }
    })
  }

  /**
   * Drops this process's cached tokens of every grant another replica revokes, as soon as it says so
   * (on stores that carry messages: Redis). Resolves to the function that stops listening; without such
   * a store, or while the messages are lost, `tokenCacheTtlMs` stays the bound.
   */
  async followRevocations (): Promise<() => Promise<void>> {
    if (this.#o.store.subscribe === undefined) return async () => {}
    return await this.#o.store.subscribe(REVOCATIONS_CHANNEL, (grantId) => { this.#forget(grantId) })
  }

  /** Mints a single-use authorization code (OAuth 2.1 §4.1.2) for a finished flow. */
  async createCode (grant: CodeGrant): Promise<string> {
    const code = randomToken('gwo_')
    const codeHash = hashSecret(code)
    const { upstream, ...rest } = grant
    const record: CodeRecord = {
      ...rest,
      expiresAt: this.#o.clock.now() + this.#o.codeTtlMs,
      sealedUpstream: sealForToken(this.#o.sealKeys, code, packUpstream(upstream), `code:${codeHash}`),
      upstreamScopes: upstream.scopes,
      ...(upstream.expiresAt === undefined ? {} : { upstreamExpiresAt: upstream.expiresAt, upstreamRenewAt: this.#upstream.renewAt(upstream.expiresAt) })
    }
    await this.#o.store.set(`code:${codeHash}`, record, this.#o.codeTtlMs)
    return code
  }

  /**
   * The authorization_code grant (OAuth 2.1 §4.1.3). The code is bound to its client, redirect URI,
   * PKCE challenge and resource. A second *valid* use revokes what the first one issued (§4.1.3,
   * RFC 9700 §4.2.4); an invalid replay (wrong verifier) revokes nothing, or anyone could revoke.
   */
  async exchangeCode (client: ClientRecord, p: { code: string, codeVerifier: string, redirectUri?: string, resource?: string | string[], log?: EventLogger }): Promise<TokenResponse> {
    const codeHash = hashSecret(p.code)
    const key = `code:${codeHash}`
    const code = await this.#o.store.get<CodeRecord>(key)
    if (code === undefined || code.expiresAt <= this.#o.clock.now()) throw invalidGrant('unknown or expired code')
    if (code.clientId !== client.clientId) throw invalidGrant('code issued to another client', 'warn')
    if (p.redirectUri !== undefined && p.redirectUri !== code.redirectUri) throw invalidGrant('redirect_uri differs from the authorization request')
    if (!verifyS256(p.codeVerifier, code.codeChallenge)) throw invalidGrant('PKCE verification failed', 'warn')
    this.#checkResource(p.resource, code.resource)
    if (code.consumedBy !== undefined) {
      this.#emit('code_replay_detected', { clientId: client.clientId, grantId: code.consumedBy }, p.log)
      await this.revokeGrant(code.consumedBy, 'code_replay', p.log)
      throw invalidGrant('code replayed; the grant it issued is revoked', 'warn')
    }

    const upstream = openWithToken(this.#o.sealKeys, p.code, code.sealedUpstream, `code:${codeHash}`)
    // Sealed under a secret that is no longer configured: as good as expired.
    if (upstream === undefined) throw invalidGrant('code sealed under a secret no longer configured')
    const now = this.#o.clock.now()
    const grantKey = randomBytes(32)
    const id = randomToken('gwg_')
    let unlocked: UnlockedGrant = {
      key: grantKey,
      grant: {
        id,
        clientId: code.clientId,
        userId: code.userId,
        scope: code.scope,
        resource: code.resource,
        sealedUpstream: seal(grantKey, upstream, id),
        upstreamScopes: code.upstreamScopes,
        accessHash: '',
        expiresAt: now + this.#o.refreshTtlMs,
        ...(code.upstreamExpiresAt === undefined ? {} : { upstreamExpiresAt: code.upstreamExpiresAt }),
        ...(code.upstreamRenewAt === undefined ? {} : { upstreamRenewAt: code.upstreamRenewAt })
      }
    }
    unlocked = await this.#upstream.freshUnstored(unlocked, p.log)
    const issued = await this.#issuer.issue(unlocked, 'create', this.#issuer.newTokens(unlocked, client)) as TokenResponse

    // Consume last, so a code is never used up without its tokens being stored. The tombstone keeps
    // no upstream token, only the grant to revoke if the code comes back.
    const tombstone: CodeRecord = { ...code, sealedUpstream: '', consumedBy: id }
    const previous = await this.#o.store.swap<CodeRecord>(key, tombstone, this.#o.codeTtlMs)
    if (previous === undefined || previous.consumedBy !== undefined) {
      this.#emit('code_replay_detected', { clientId: client.clientId, grantId: id }, p.log)
      await this.revokeGrant(id, 'code_replay', p.log)
      if (previous?.consumedBy !== undefined) await this.revokeGrant(previous.consumedBy, 'code_replay', p.log)
      throw invalidGrant('code used twice concurrently; both grants revoked', 'warn')
    }
    this.#emit('tokens_issued', { clientId: client.clientId, grantId: id, grantType: 'authorization_code' }, p.log)
    return issued
  }

  /**
   * The refresh_token grant with rotation and reuse detection (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2):
   * each refresh token is rotated once; presenting it again revokes the whole grant, except within the
   * grace period, where it gets the same answer again (one live pair per grant, whichever the client kept).
   */
  async refresh (client: ClientRecord, p: { refreshToken: string, scope?: string, resource?: string | string[], log?: EventLogger }): Promise<TokenResponse> {
    const key = `refresh:${hashSecret(p.refreshToken)}`
    const record = await this.#o.store.get<RefreshRecord>(key)
    if (record === undefined || record.expiresAt <= this.#o.clock.now()) throw invalidGrant('unknown or expired refresh token')
    if (record.clientId !== client.clientId) throw invalidGrant('refresh token issued to another client', 'warn')
    if (record.rotatedAt !== undefined) return await this.#repeat(record, p)
    const grant = await this.#o.store.get<GrantRecord>(`grant:${record.grantId}`)
    if (grant === undefined) throw invalidGrant('grant revoked or expired')
    this.#checkRequest(p, grant)
    const keyText = openWithToken(this.#o.sealKeys, p.refreshToken, record.wrappedKey, `refresh:${grant.id}`)
    if (keyText === undefined) throw invalidGrant('refresh token wrapped under a secret no longer configured')
    const grantKey = Buffer.from(keyText, 'base64url')
    // The upstream is refreshed before the client's token is spent: if the upstream is down, the
    // client keeps a refresh token it can retry with.
    let unlocked = await this.freshUpstream({ grant, key: grantKey }, p.log)

    // The rotation: one conditional write, which exactly one of several concurrent refreshes makes. It
    // records the new tokens (sealed for this token's holder) before they exist; the others wait for them.
    const now = this.#o.clock.now()
    const tokens = this.#issuer.newTokens(unlocked, client)
    const tombstone: RefreshRecord = { ...record, rotatedAt: now, wrappedKey: '', version: (record.version ?? 0) + 1 }
    if (this.#o.refreshGraceMs > 0) {
      const answer: RepeatableAnswer = { ...tokens, scope: grant.scope }
      tombstone.answer = sealForToken(this.#o.sealKeys, p.refreshToken, JSON.stringify(answer), `refresh-answer:${grant.id}`)
    }
    if (!await this.#o.store.replace(key, record.version ?? 0, tombstone, Math.max(1, record.expiresAt - now))) {
      const rotated = await this.#o.store.get<RefreshRecord>(key)
      if (rotated === undefined) throw invalidGrant('grant revoked while refreshing')
      return await this.#repeat(rotated, p)
    }
    // The grant is written only over the version read: a revocation in between (reuse detected by a
    // concurrent refresh, /revoke) wins. A write lost to an upstream refresh is made again over it.
    for (let attempt = 1; ; attempt++) {
      const issued = await this.#issuer.issue({ grant: { ...unlocked.grant, expiresAt: now + this.#o.refreshTtlMs }, key: unlocked.key }, 'replace', tokens)
      if (issued !== undefined) {
        this.#emit('tokens_issued', { clientId: client.clientId, grantId: grant.id, grantType: 'refresh_token' }, p.log)
        return issued
      }
      const current = await this.#o.store.get<GrantRecord>(`grant:${grant.id}`)
      if (current === undefined || attempt >= MAX_ISSUE_ATTEMPTS) throw invalidGrant('grant revoked while refreshing')
      unlocked = { grant: current, key: unlocked.key }
    }
  }

  /**
   * A rotated refresh token presented again. Within the grace period: the answer its rotation gave, once
   * that rotation has stored its tokens. After it (or with no grace period): reuse, and the whole family
   * is revoked.
   */
  async #repeat (record: RefreshRecord, p: { refreshToken: string, scope?: string, resource?: string | string[], log?: EventLogger }): Promise<TokenResponse> {
    const rotatedAt = record.rotatedAt as number
    if (record.answer === undefined || this.#o.clock.now() - rotatedAt >= this.#o.refreshGraceMs) {
      this.#emit('refresh_reuse_detected', { clientId: record.clientId, grantId: record.grantId }, p.log)
      await this.revokeGrant(record.grantId, 'refresh_reuse', p.log)
      throw invalidGrant('refresh token reused; grant revoked', 'warn')
    }
    const sealed = openWithToken(this.#o.sealKeys, p.refreshToken, record.answer, `refresh-answer:${record.grantId}`)
    if (sealed === undefined) throw invalidGrant('refresh token wrapped under a secret no longer configured')
    const answer = JSON.parse(sealed) as RepeatableAnswer
    // The new refresh token's record, not the access token's: it lives as long as the grant, whatever
    // --refresh-grace is. A client that refreshes is registered for refresh tokens, so its answer has one.
    const grant = await this.#untilStored(record.grantId, `refresh:${hashSecret(answer.refreshToken as string)}`)
    this.#checkRequest(p, grant)
    this.#emit('refresh_repeated', { clientId: record.clientId, grantId: record.grantId }, p.log)
    return tokenResponse(answer, answer.accessExpiresAt - this.#o.clock.now(), answer.scope)
  }

  /** The grant once the record `key` of the answer is stored: the rotation being repeated has finished. */
  async #untilStored (grantId: string, key: string): Promise<GrantRecord> {
    // Real time, not the service's clock: the wait is for another request's store writes.
    const deadline = Date.now() + REPEAT_WAIT_MS
    for (;;) {
      const grant = await this.#o.store.get<GrantRecord>(`grant:${grantId}`)
      if (grant === undefined) throw invalidGrant('grant revoked or expired')
      if (await this.#o.store.get(key) !== undefined) return grant
      if (Date.now() > deadline) throw temporarilyUnavailable('the refresh being repeated did not finish', 'the refresh is still in progress, try again')
      await sleep(REPEAT_POLL_MS)
    }
  }

  /** A refresh may narrow the scope (OAuth 2.1 §4.3.1) and must name the grant's resource, if any (RFC 8707). */
  #checkRequest (p: { scope?: string, resource?: string | string[] }, grant: GrantRecord): void {
    if (p.scope !== undefined && !isScopeSubset(parseScopeParam(p.scope), parseScopeParam(grant.scope))) throw invalidScope(`asked for ${p.scope.slice(0, 200)}`)
    this.#checkResource(p.resource, grant.resource)
  }

  /**
   * RFC 7009: revoking either token revokes the grant (and so both tokens and the stored upstream
   * token). Unknown tokens and other clients' tokens are ignored, as the RFC asks: 200 either way.
   */
  async revoke (client: ClientRecord, token: string, log?: EventLogger): Promise<void> {
    const hash = hashSecret(token)
    const record = await this.#o.store.get<{ grantId: string, clientId: string }>(`refresh:${hash}`) ??
      await this.#o.store.get<{ grantId: string, clientId: string }>(`access:${hash}`)
    if (record === undefined || record.clientId !== client.clientId) return
    await this.revokeGrant(record.grantId, 'client_revoked', log)
  }

  /** Ends a grant and every token of it; reported (grant_revoked) only when there was one to end. */
  async revokeGrant (grantId: string, reason: GrantRevocationReason, log?: EventLogger): Promise<void> {
    this.#forget(grantId)
    const grant = await this.#o.store.take<GrantRecord>(`grant:${grantId}`)
    if (grant === undefined) return
    await this.#o.store.delete(`access:${grant.accessHash}`)
    if (grant.refreshHash !== undefined) await this.#o.store.delete(`refresh:${grant.refreshHash}`)
    this.#emit('grant_revoked', { clientId: grant.clientId, grantId, reason }, log)
    // The other replicas' caches; if the message is lost they let go within tokenCacheTtlMs anyway.
    await this.#o.store.publish?.(REVOCATIONS_CHANNEL, grantId).catch(() => {})
  }

  /**
   * The grant behind a live access token, unlocked, with its upstream token; undefined when the
   * token is unknown, expired or revoked. Answers from memory for up to `tokenCacheTtlMs`, which is
   * therefore how late a revocation made by another replica can take effect here.
   */
  async authenticate (accessToken: string): Promise<AuthenticatedRequest | undefined> {
    const hash = hashSecret(accessToken)
    const cached = this.#cached(hash)
    if (cached !== undefined) return cached
    const now = this.#o.clock.now()
    const access = await this.#o.store.get<AccessRecord>(`access:${hash}`)
    if (access === undefined || access.expiresAt <= now) return undefined
    const grant = await this.#o.store.get<GrantRecord>(`grant:${access.grantId}`)
    if (grant === undefined) return undefined
    const keyText = openWithToken(this.#o.sealKeys, accessToken, access.wrappedKey, `access:${grant.id}`)
    if (keyText === undefined) return undefined
    const key = Buffer.from(keyText, 'base64url')
    const found: AuthenticatedRequest = { access, grant, key, upstreamToken: openUpstream({ grant, key }).a }
    if (this.#o.tokenCacheTtlMs > 0) {
      this.#tokenCache.set(hash, found, Math.min(now + this.#o.tokenCacheTtlMs, access.expiresAt))
    }
    return found
  }

  /**
   * authenticate() from the token cache alone, without a promise: undefined when the store must be asked.
   * The proxy's path for a client's every request but the first few seconds' worth.
   */
  authenticateFromMemory (accessToken: string): AuthenticatedRequest | undefined {
    return this.#cached(hashSecret(accessToken))
  }

  #cached (hash: string): AuthenticatedRequest | undefined {
    return this.#tokenCache.get(hash)
  }

  /**
   * The upstream access token of an unlocked grant, for the proxy. It never leaves the server. An
   * authenticated request carries it unsealed already (cached with it); every grant this service hands
   * back after a refresh is a new `{ grant, key }`, so a carried token always belongs to its grant.
   */
  upstreamAccessToken (unlocked: UnlockedGrant | AuthenticatedRequest): string {
    return 'upstreamToken' in unlocked ? unlocked.upstreamToken : openUpstream(unlocked).a
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

  /** RFC 8707 at the token endpoint: the policy of lib/resource.ts, the same for both grants. */
  #checkResource (requested: string | readonly string[] | undefined, granted: string): void {
    checkBoundResource(requested, granted)
  }

  #emit<K extends keyof GatewayEventMap> (name: K, payload: GatewayEventMap[K], log: EventLogger | undefined): void {
    this.#o.events?.emit(name, payload, log)
  }

  #forget (grantId: string): void {
    this.#tokenCache.deleteWhere((entry) => entry.grant.id === grantId)
  }
}
