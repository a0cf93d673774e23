import type { Clock } from '../clock.js'
import type { GatewayEvents } from '../events.js'
import type { Store } from '../stores/types.js'
import type { UpstreamRefresher } from '../upstream-refresh.js'

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
}
