import type { Clock } from '../clock.js'
import type { EventLogger, GatewayEvents, GrantRevocationReason } from '../events.js'
import type { GrantIndex } from '../grant-index.js'
import type { Store } from '../stores/types.js'
import type { UpstreamRefresher, UpstreamRefreshes } from '../upstream-refresh.js'
import type { TokenIssuer } from './issuance.js'

export interface GrantServiceOptions {
  store: Store
  clock: Clock
  upstream: UpstreamRefresher
  /** Keys derived from the operator's secrets; the first wraps, all unwrap (rotation). */
  sealKeys: readonly Buffer[]
  codeTtlMs: number
  accessTtlMs: number
  refreshTtlMs: number
  /**
   * How long a rotated refresh token still gets the answer its rotation gave (0 = never): clients send
   * one refresh twice at once (one per request in flight) or retry one whose answer they lost.
   */
  refreshGraceMs: number
  /** How long a validated access token is trusted without asking the store again (0 = always ask). */
  tokenCacheTtlMs: number
  /** The upstream request timeout, which bounds how long replicas wait for one another's upstream refresh. */
  upstreamTimeoutMs?: number
  /** Where tokens issued, grants revoked, reuse and replay are reported (and so logged and counted). */
  events?: GatewayEvents
  /**
   * Revokes an upstream access token at the upstream (GitHub: DELETE /applications/{client_id}/token): true
   * when it did. Absent when the upstream offers no way to.
   */
  revokeUpstream?: (accessToken: string) => Promise<boolean>
  /** Live grants one person may hold at once (lib/grant-index.ts); DEFAULT_MAX_GRANTS_PER_USER when absent. */
  maxGrantsPerUser?: number
}

/** What both grant types (lib/grants/codes.ts, refresh.ts) are handed by GrantService, which owns them. */
export interface GrantTypeParts {
  issuer: TokenIssuer
  upstreamRefreshes: UpstreamRefreshes
  /** Who holds which grants (lib/grant-index.ts): indexed before it is written, renewed as it is refreshed. */
  grantIndex: GrantIndex
  /** Ends a grant and every token of it: GrantService.revokeGrant, the one way a grant ends. */
  revokeGrant: (grantId: string, reason: GrantRevocationReason, log?: EventLogger) => Promise<void>
}
