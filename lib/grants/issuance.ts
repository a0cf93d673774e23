import type { ClientRecord } from '../clients.js'
import { hashSecret, randomToken } from '../crypto.js'
import { invalidGrant } from '../oauth-errors.js'
import type { GrantServiceOptions } from './options.js'
import {
  sealLabel, storeKey, type AccessRecord, type GrantRecord, type NewTokens, type RefreshRecord, type TokenResponse,
  type UnlockedGrant
} from './records.js'
import { sealForToken } from './token-keys.js'

type IssuanceOptions = Pick<GrantServiceOptions, 'store' | 'clock' | 'sealKeys' | 'accessTtlMs'>

/**
 * Writes a grant with a new pair of tokens, for both grant types: what tokens a client gets, how long
 * they last, and the order of the writes that keeps a revocation in between from being undone.
 */
export class TokenIssuer {
  readonly #o: IssuanceOptions

  constructor (options: IssuanceOptions) {
    this.#o = options
  }

  /** New tokens for a grant: the refresh token only for clients registered for it. */
  newTokens (unlocked: UnlockedGrant, client: ClientRecord): NewTokens {
    const now = this.#o.clock.now()
    // The gateway's access TTL. An upstream token that expires but can be refreshed is renewed by the gateway
    // itself, so it does not shorten the client's token (short ones put clients in their early-refresh window
    // on every request); one that cannot be refreshed ends the grant, and the client's token ends with it.
    const { record, tokens } = unlocked.upstream
    const lastsAsLongAsUpstream = record.upstreamExpiresAt !== undefined && tokens.r === undefined
    const upstreamLeft = lastsAsLongAsUpstream ? (record.upstreamExpiresAt as number) - now : Infinity
    const accessTtl = Math.max(1000, Math.min(this.#o.accessTtlMs, upstreamLeft))
    return {
      accessToken: randomToken('gwa_'),
      accessExpiresAt: now + accessTtl,
      ...(client.metadata.grant_types.includes('refresh_token') ? { refreshToken: randomToken('gwr_') } : {})
    }
  }

  /**
   * Writes the grant with the new tokens and returns them; undefined, writing nothing, when `replace`
   * finds the grant changed or gone since it was read. The token records are written only after the
   * grant, and taken back if a revocation ended the grant in between.
   */
  async issue (
    { grant: read, key }: UnlockedGrant,
    write: 'create' | 'replace',
    tokens: NewTokens
  ): Promise<TokenResponse | undefined> {
    const { store, sealKeys } = this.#o
    const now = this.#o.clock.now()
    const { accessToken, refreshToken } = tokens
    const accessTtl = Math.max(1, tokens.accessExpiresAt - now)
    const accessHash = hashSecret(accessToken)
    const keyText = key.toString('base64url')

    const grant: GrantRecord = { ...read, accessHash, version: (read.version ?? 0) + 1 }
    if (refreshToken === undefined) {
      // Without a refresh token the grant ends with its access token.
      delete grant.refreshHash
      grant.expiresAt = tokens.accessExpiresAt
    } else {
      grant.refreshHash = hashSecret(refreshToken)
    }
    const grantKey = storeKey.grant(grant.id)
    const grantTtl = grant.expiresAt - now
    if (write === 'create') await store.set(grantKey, grant, grantTtl)
    else if (!await store.replace(grantKey, read.version ?? 0, grant, grantTtl)) return undefined
    const access: AccessRecord = {
      grantId: grant.id,
      clientId: grant.clientId,
      scope: grant.scope,
      resource: grant.resource,
      expiresAt: tokens.accessExpiresAt,
      wrappedKey: sealForToken(sealKeys, accessToken, keyText, sealLabel.access(grant.id))
    }
    await store.set(storeKey.access(accessHash), access, accessTtl)
    // Both set or neither (above); each named, so the compiler sees it too.
    if (refreshToken !== undefined && grant.refreshHash !== undefined) {
      const record: RefreshRecord = {
        grantId: grant.id,
        clientId: grant.clientId,
        expiresAt: grant.expiresAt,
        wrappedKey: sealForToken(sealKeys, refreshToken, keyText, sealLabel.refresh(grant.id))
      }
      await store.set(storeKey.refresh(grant.refreshHash), record, grantTtl)
    }
    // A revocation that took the grant before these records existed could not delete them: they would
    // open nothing (every use reads the grant), but the client should hear now that its grant is over.
    if (await store.get<GrantRecord>(grantKey) === undefined) {
      await store.delete(storeKey.access(accessHash))
      if (grant.refreshHash !== undefined) await store.delete(storeKey.refresh(grant.refreshHash))
      throw invalidGrant('grant revoked while its tokens were issued')
    }
    return tokenResponse(tokens, accessTtl, grant.scope)
  }
}

/** The token endpoint's answer (OAuth 2.1 §3.2.3) for tokens that last `accessTtlMs` from now. */
export function tokenResponse (
  tokens: { accessToken: string, refreshToken?: string },
  accessTtlMs: number,
  scope: string
): TokenResponse {
  return {
    access_token: tokens.accessToken,
    token_type: 'Bearer',
    expires_in: Math.max(1, Math.floor(accessTtlMs / 1000)),
    ...(tokens.refreshToken === undefined ? {} : { refresh_token: tokens.refreshToken }),
    scope
  }
}
