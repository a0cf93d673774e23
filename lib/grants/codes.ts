import { randomBytes } from 'node:crypto'
import type { ClientRecord } from '../clients.js'
import { hashSecret, randomToken } from '../crypto.js'
import type { EventLogger } from '../events.js'
import { invalidGrant } from '../oauth-errors.js'
import { verifyS256 } from '../pkce.js'
import { checkBoundResource } from '../resource.js'
import type { GrantServiceOptions, GrantTypeParts } from './options.js'
import {
  sealLabel, storeKey, type CodeGrant, type CodeRecord, type GrantRecord, type SealedUpstream, type TokenResponse
} from './records.js'
import { openWithToken, sealForToken } from './token-keys.js'
import { packUpstream, shareIdFor, type UpstreamTokenShares } from './upstream-tokens.js'

export interface CodeExchange {
  code: string
  codeVerifier: string
  redirectUri?: string
  resource?: string | string[]
  log?: EventLogger
}

type CodeOptions = GrantTypeParts &
  Pick<GrantServiceOptions, 'store' | 'clock' | 'sealKeys' | 'codeTtlMs' | 'refreshTtlMs' | 'events'> &
  { shares: UpstreamTokenShares }

/** Authorization codes: minted at the end of a flow, exchanged once for a new grant's first tokens. */
export class AuthorizationCodes {
  readonly #o: CodeOptions

  constructor (options: CodeOptions) {
    this.#o = options
  }

  /** Mints a single-use authorization code (OAuth 2.1 §4.1.2) for a finished flow. */
  async create (grant: CodeGrant): Promise<string> {
    const code = randomToken('gwo_')
    const codeHash = hashSecret(code)
    const { upstream, ...rest } = grant
    const { expiresAt } = upstream
    const renewAt = (at: number): number => this.#o.upstreamRefreshes.renewAt(at)
    const record: CodeRecord = {
      ...rest,
      expiresAt: this.#o.clock.now() + this.#o.codeTtlMs,
      sealedUpstream: sealForToken(this.#o.sealKeys, code, packUpstream(upstream), sealLabel.code(codeHash)),
      upstreamScopes: upstream.scopes,
      ...(expiresAt === undefined ? {} : { upstreamExpiresAt: expiresAt, upstreamRenewAt: renewAt(expiresAt) })
    }
    await this.#o.store.set(storeKey.code(codeHash), record, this.#o.codeTtlMs)
    return code
  }

  /**
   * The authorization_code grant (OAuth 2.1 §4.1.3). The code is bound to its client, redirect URI,
   * PKCE challenge and resource. A second *valid* use revokes what the first one issued (§4.1.3,
   * RFC 9700 §4.2.4); an invalid replay (wrong verifier) revokes nothing, or anyone could revoke.
   */
  async exchange (client: ClientRecord, p: CodeExchange): Promise<TokenResponse> {
    const { store, clock, events, revokeGrant } = this.#o
    const codeHash = hashSecret(p.code)
    const key = storeKey.code(codeHash)
    const code = await store.get<CodeRecord>(key)
    if (code === undefined || code.expiresAt <= clock.now()) throw invalidGrant('unknown or expired code')
    if (code.clientId !== client.clientId) throw invalidGrant('code issued to another client', 'warn')
    if (p.redirectUri !== undefined && p.redirectUri !== code.redirectUri) {
      throw invalidGrant('redirect_uri differs from the authorization request')
    }
    if (!verifyS256(p.codeVerifier, code.codeChallenge)) throw invalidGrant('PKCE verification failed', 'warn')
    checkBoundResource(p.resource, code.resource)
    if (code.consumedBy !== undefined) {
      events?.emit('code_replay_detected', { clientId: client.clientId, grantId: code.consumedBy }, p.log)
      await revokeGrant(code.consumedBy, 'code_replay', p.log)
      throw invalidGrant('code replayed; the grant it issued is revoked', 'warn')
    }

    const sealed = openWithToken(this.#o.sealKeys, p.code, code.sealedUpstream, sealLabel.code(codeHash))
    // Sealed under a secret that is no longer configured: as good as expired.
    if (sealed === undefined) throw invalidGrant('code sealed under a secret no longer configured')
    const { a, r } = JSON.parse(sealed) as SealedUpstream
    const upstream = await this.#o.upstreamRefreshes.freshTokens({
      accessToken: a,
      ...(r === undefined ? {} : { refreshToken: r }),
      ...(code.upstreamExpiresAt === undefined ? {} : { expiresAt: code.upstreamExpiresAt }),
      scopes: code.upstreamScopes,
      tokenType: 'bearer'
    }, p.log)
    const id = randomToken('gwg_')
    const now = clock.now()
    const grant: GrantRecord & { upstreamTokens: string } = {
      id,
      clientId: code.clientId,
      userId: code.userId,
      ...(code.upstreamUser === undefined ? {} : { upstreamUser: code.upstreamUser }),
      scope: code.scope,
      resource: code.resource,
      upstreamTokens: shareIdFor(code.userId, code.upstreamUser?.id, upstream.scopes),
      accessHash: '',
      expiresAt: now + this.#o.refreshTtlMs,
      createdAt: now,
      ...(client.metadata.client_name === undefined ? {} : { clientName: client.metadata.client_name.slice(0, 300) })
    }
    // Indexed before it exists, so no live grant is missing from its holder's account page (lib/grant-index.ts).
    const indexed = await this.#o.grantIndex.put(code.userId, id, grant.expiresAt)
    if (!indexed) throw invalidGrant('the person holds --max-grants-per-user grants: revoke some at /account', 'warn')
    // The person's other grants move to these tokens too (lib/grants/upstream-tokens.ts).
    const unlocked = await this.#o.shares.hold(grant, randomBytes(32), upstream)
    const tokens = this.#o.issuer.newTokens(unlocked, client)
    const issued = await this.#o.issuer.issue(unlocked, 'create', tokens) as TokenResponse

    // Consume last, so a code is never used up without its tokens being stored. The tombstone keeps
    // no upstream token, only the grant to revoke if the code comes back.
    const tombstone: CodeRecord = { ...code, sealedUpstream: '', consumedBy: id }
    const previous = await store.swap<CodeRecord>(key, tombstone, this.#o.codeTtlMs)
    if (previous === undefined || previous.consumedBy !== undefined) {
      events?.emit('code_replay_detected', { clientId: client.clientId, grantId: id }, p.log)
      await revokeGrant(id, 'code_replay', p.log)
      if (previous?.consumedBy !== undefined) await revokeGrant(previous.consumedBy, 'code_replay', p.log)
      throw invalidGrant('code used twice concurrently; both grants revoked', 'warn')
    }
    events?.emit('tokens_issued', { clientId: client.clientId, grantId: id, grantType: 'authorization_code' }, p.log)
    return issued
  }
}
