import type { Dispatcher } from 'undici'
import type { Clock } from '../clock.js'
import { parseScopes } from '../scopes.js'
import type { Store } from '../stores/types.js'
import { discoverEndpoints } from './discovery.js'
import type { UpstreamEndpoints } from './discovery.js'
import { UpstreamError } from './errors.js'
import { hostOf } from './http.js'
import { upstreamClient } from './registration.js'
import type { UpstreamClientCredentials } from './registration.js'
import { requestTokens } from './token-endpoint.js'
import type { UpstreamTokens } from './token-endpoint.js'

export interface UpstreamSettings {
  /** The upstream MCP server URL (--upstream-rs), e.g. https://api.githubcopilot.com/mcp */
  resourceUrl: string
  /** --upstream-as: an AS issuer or base URL. Absent: found from the resource server (RFC 9728). */
  issuerUrl?: string
  clientId?: string
  clientSecret?: string
  /** Discovery is skipped only when both are given; one alone overrides the discovered value. */
  authorizeEndpoint?: string
  tokenEndpoint?: string
  /** Sent upstream. Undefined: the discovered scopes_supported (if any), else none. */
  scopes?: string[]
  /** The gateway's own /upstream/callback. */
  redirectUri: string
  /** Used when registering dynamically. */
  clientName: string
  /** Bound on every upstream HTTP call, headers and body together. */
  timeoutMs: number
  dispatcher?: Dispatcher
}

export interface UpstreamResolution {
  endpoints: UpstreamEndpoints
  client: UpstreamClientCredentials
  scopes: string[]
}

interface Resolved extends UpstreamResolution {
  /** Store key of dynamically registered credentials, so they can be dropped when the AS forgets them. */
  clientKey?: string
}

// A failed discovery is given to every caller for this long before anything is sent again: an upstream that
// is down or misconfigured must not turn each /readyz probe or sign-in into a burst of outbound requests.
export const DISCOVERY_RETRY_MS = 10_000

/**
 * The gateway as an OAuth client of the upstream authorization server: its endpoints and the gateway's
 * client there, found once and shared, then the authorization URL and the token requests.
 */
export class UpstreamAuthorizationServer {
  readonly #settings: UpstreamSettings
  readonly #store: Store
  readonly #clock: Clock
  /** Seal a registered client's secret at rest; the first seals, any of them opens (secret rotation). */
  readonly #sealKeys: readonly Buffer[]
  #pending: Promise<Resolved> | undefined
  #resolved: Resolved | undefined
  /** The last failed discovery, and the clock time from which the next call tries again. */
  #failed: { error: unknown, retryAt: number } | undefined

  constructor (settings: UpstreamSettings, deps: { store: Store, clock: Clock, sealKeys: readonly Buffer[] }) {
    this.#settings = settings
    this.#store = deps.store
    this.#clock = deps.clock
    this.#sealKeys = deps.sealKeys
  }

  /** The AS host, for the consent page. Before discovery it is the best guess from the settings. */
  get displayName (): string {
    const s = this.#settings
    return hostOf(this.#resolved?.endpoints.issuer ?? this.#resolved?.endpoints.authorizationEndpoint ??
      s.issuerUrl ?? s.authorizeEndpoint ?? s.resourceUrl)
  }

  /**
   * Discovers the endpoints and the client once; concurrent callers share the attempt. A failure is kept
   * for DISCOVERY_RETRY_MS (every call in that time gets it at once), then the next call tries again.
   */
  async resolve (): Promise<UpstreamResolution> {
    const { endpoints, client, scopes } = await this.#resolve()
    // A copy: a caller editing the result must not change what every later flow uses.
    return structuredClone({ endpoints, client, scopes })
  }

  async authorizeUrl (p: { state: string, codeChallenge: string, scopes?: string[] }): Promise<string> {
    const { endpoints, client, scopes } = await this.#resolve()
    const url = new URL(endpoints.authorizationEndpoint)
    const query = url.searchParams
    query.set('response_type', 'code')
    query.set('client_id', client.clientId)
    query.set('redirect_uri', this.#settings.redirectUri)
    query.set('state', p.state)
    query.set('code_challenge', p.codeChallenge)
    query.set('code_challenge_method', 'S256')
    const scope = parseScopes(p.scopes ?? scopes).join(' ')
    if (scope !== '') query.set('scope', scope)
    return url.href
  }

  async exchangeCode (p: { code: string, codeVerifier: string }): Promise<UpstreamTokens> {
    return this.#tokenRequest({
      grant_type: 'authorization_code',
      code: p.code,
      redirect_uri: this.#settings.redirectUri,
      code_verifier: p.codeVerifier
    })
  }

  async refresh (refreshToken: string): Promise<UpstreamTokens> {
    const tokens = await this.#tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken })
    // RFC 6749 §6: when the AS does not rotate, the old refresh token stays valid.
    tokens.refreshToken ??= refreshToken
    return tokens
  }

  #resolve (): Promise<Resolved> {
    if (this.#pending !== undefined) return this.#pending
    const failed = this.#failed
    if (failed !== undefined && this.#clock.now() < failed.retryAt) return Promise.reject(failed.error)
    const pending = this.#discoverAndRegister()
    this.#pending = pending
    pending.then((resolved) => {
      this.#resolved = resolved
      this.#failed = undefined
    }, (error: unknown) => {
      if (this.#pending !== pending) return
      this.#pending = undefined
      this.#failed = { error, retryAt: this.#clock.now() + DISCOVERY_RETRY_MS }
    })
    return pending
  }

  async #discoverAndRegister (): Promise<Resolved> {
    const s = this.#settings
    const { endpoints, resourceScopes } = await discoverEndpoints(s)
    const { client, clientKey } = await upstreamClient(endpoints, s,
      { store: this.#store, clock: this.#clock, sealKeys: this.#sealKeys })
    const scopes = s.scopes !== undefined
      ? parseScopes(s.scopes)
      // The MCP scope-selection rule: what the resource says it needs, else what the AS offers.
      : resourceScopes ?? endpoints.scopesSupported ?? []
    return clientKey === undefined ? { endpoints, client, scopes } : { endpoints, client, scopes, clientKey }
  }

  async #tokenRequest (params: Record<string, string>): Promise<UpstreamTokens> {
    const resolved = await this.#resolve()
    const { endpoints, client } = resolved
    try {
      return await requestTokens(endpoints.tokenEndpoint, client, params,
        { limits: this.#settings, clock: this.#clock })
    } catch (err) {
      if (err instanceof UpstreamError && err.oauthError === 'invalid_client' && resolved.clientKey !== undefined) {
        // The AS forgot our registration (its storage was reset): register again on the next flow.
        await this.#store.delete(resolved.clientKey)
        if (this.#resolved === resolved) {
          this.#pending = undefined
          this.#resolved = undefined
        }
      }
      throw err
    }
  }
}
