import type { UpstreamTokens } from '../upstream-as/token-endpoint.js'

/*
 * The shapes the grant modules store and hand back. A stored shape outlives the code that wrote it
 * (records written by an older gateway are read by a newer one), so its fields change only here.
 */

/** Who the person is upstream (lib/upstream-identity.ts), kept with the grant when the upstream told. */
export interface UpstreamUser {
  login: string
  id: string
}

/** Everything the gateway knows when it mints a code: the flow, the user and the upstream's tokens. */
export interface CodeGrant {
  clientId: string
  redirectUri: string
  codeChallenge: string
  resource: string
  scope: string
  userId: string
  upstreamUser?: UpstreamUser
  upstream: UpstreamTokens
}

export interface CodeRecord extends Omit<CodeGrant, 'upstream'> {
  /** Validity is the record's own; the store's TTL only collects garbage (and rounds). */
  expiresAt: number
  /** The upstream tokens, sealed under a key derived from the code itself. */
  sealedUpstream: string
  upstreamExpiresAt?: number
  upstreamRenewAt?: number
  upstreamScopes: string[]
  /** Set once the code is exchanged: the grant it produced, revoked if the code is replayed. */
  consumedBy?: string
}

/** One user's authorization of one client: the family every token of that login belongs to. */
export interface GrantRecord {
  id: string
  clientId: string
  userId: string
  upstreamUser?: UpstreamUser
  scope: string
  resource: string
  /** The id of the upstream tokens the grant holds, shared with its person's other grants (upstream-tokens.ts). */
  upstreamTokens?: string
  /**
   * Grants written before upstream tokens were shared hold them here instead, sealed (AES-256-GCM) under the
   * grant key with the grant id as associated data; they move to a share on first use.
   */
  sealedUpstream?: string
  upstreamExpiresAt?: number
  upstreamRenewAt?: number
  upstreamScopes?: string[]
  accessHash: string
  refreshHash?: string
  /** When the current refresh token (and so the grant) lapses, epoch ms. */
  expiresAt: number
  /** When the code was exchanged for it, epoch ms; absent on grants written before it was recorded. */
  createdAt?: number
  /** The client's name when it was granted (what the person approved), for the account page and the operator. */
  clientName?: string
  /**
   * Counts the grant's writes (absent, read as 0, on grants written before it existed). Every write
   * after the first replaces only the version it read, so nothing in flight writes back a revoked grant.
   */
  version?: number
}

/**
 * A person's upstream tokens, held by every grant of one gateway user, upstream user and upstream scope set
 * (lib/grants/upstream-tokens.ts).
 */
export interface UpstreamTokenRecord {
  id: string
  /** New whenever the tokens are: a reader holding tokens of another generation holds old ones. */
  generation: string
  /**
   * Each holding grant's copy of the tokens (a SealedUpstream), sealed to the grant's public key, which `mac`
   * (HMAC under the operator's secret) vouches for.
   */
  holders: Record<string, { publicKey: string, sealed: string, since: number, mac: string }>
  upstreamExpiresAt?: number
  /** When the upstream token is renewed, well before it expires (lib/upstream-refresh.ts). */
  upstreamRenewAt?: number
  upstreamScopes: string[]
  /** As long as the longest-lived holder lasts. */
  expiresAt: number
  version: number
}

/** The upstream tokens as sealed: short names, as they are sealed once per holder. */
export interface SealedUpstream { a: string, r?: string }

/** A grant's upstream tokens, opened: the shared record and the grant's copy of the tokens in it. */
export interface HeldUpstream {
  record: UpstreamTokenRecord
  tokens: SealedUpstream
}

export interface AccessRecord {
  grantId: string
  clientId: string
  scope: string
  resource: string
  expiresAt: number
  /** The grant key, sealed under a key derived from this access token: only its holder can open it. */
  wrappedKey: string
}

export interface RefreshRecord {
  grantId: string
  clientId: string
  expiresAt: number
  /** The grant key, sealed under a key derived from this refresh token ('' once rotated). */
  wrappedKey: string
  /** Set when the token was exchanged for a new one; presenting it again is reuse. */
  rotatedAt?: number
  /**
   * The answer its rotation gave (a RepeatableAnswer), sealed under a key derived from this refresh
   * token: within the grace period the same refresh again gets the same tokens, so a client that sent
   * it twice at once keeps a live pair whichever answer it stores.
   */
  answer?: string
  /** 1 once rotated: the rotation is a conditional write, so exactly one concurrent refresh makes it. */
  version?: number
}

/** What a refresh answered, kept for the grace period's repeats. */
export interface RepeatableAnswer {
  accessToken: string
  refreshToken?: string
  accessExpiresAt: number
  scope: string
}

/** The tokens one issuance writes: chosen before the write, so a rotation can record them first. */
export interface NewTokens {
  accessToken: string
  refreshToken?: string
  accessExpiresAt: number
}

/** A grant with its key: what a token holder can do, and nobody with only a copy of the store. */
export interface UnlockedGrant {
  grant: GrantRecord
  key: Buffer
  upstream: HeldUpstream
}

export interface AuthenticatedRequest extends UnlockedGrant {
  access: AccessRecord
}

export interface TokenResponse {
  access_token: string
  token_type: 'Bearer'
  expires_in: number
  refresh_token?: string
  scope: string
}

/** Where each record lives in the store: tokens and codes by their hash, never by themselves. */
export const storeKey = {
  grant: (grantId: string): string => `grant:${grantId}`,
  access: (tokenHash: string): string => `access:${tokenHash}`,
  refresh: (tokenHash: string): string => `refresh:${tokenHash}`,
  code: (codeHash: string): string => `code:${codeHash}`,
  upstreamTokens: (shareId: string): string => `upstream-tokens:${shareId}`
}

/**
 * The associated data a token seals its secret under (token-keys.ts): the grant key wrapped by an access or a
 * refresh token, the upstream tokens sealed by a code. Written and opened through these, so both sides agree.
 */
export const sealLabel = {
  access: (grantId: string): string => `access:${grantId}`,
  refresh: (grantId: string): string => `refresh:${grantId}`,
  code: (codeHash: string): string => `code:${codeHash}`,
  upstreamTokens: (shareId: string): string => `upstream-tokens:${shareId}`
}
