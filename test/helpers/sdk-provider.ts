import { randomBytes } from 'node:crypto'
import type { OAuthClientProvider, OAuthDiscoveryState } from '@modelcontextprotocol/sdk/client/auth.js'
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js'

/** An OAuthClientProvider of the MCP SDK that keeps everything in memory, exactly as the SDK hands it over. */
export class MemoryProvider implements OAuthClientProvider {
  client: OAuthClientInformationMixed | undefined
  saved: OAuthTokens | undefined
  verifier: string | undefined
  discovery: OAuthDiscoveryState | undefined
  readonly authorizationUrls: URL[] = []
  readonly states: string[] = []
  readonly invalidated: string[] = []

  readonly redirectUrl: string
  readonly clientName: string

  constructor (redirectUrl: string, clientName: string) {
    this.redirectUrl = redirectUrl
    this.clientName = clientName
  }

  get clientMetadata (): OAuthClientMetadata {
    return { client_name: this.clientName, redirect_uris: [this.redirectUrl], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' }
  }

  state (): string {
    const state = randomBytes(16).toString('base64url')
    this.states.push(state)
    return state
  }

  clientInformation (): OAuthClientInformationMixed | undefined { return this.client }
  saveClientInformation (info: OAuthClientInformationMixed): void { this.client = info }
  tokens (): OAuthTokens | undefined { return this.saved }
  saveTokens (tokens: OAuthTokens): void { this.saved = tokens }
  redirectToAuthorization (url: URL): void { this.authorizationUrls.push(url) }
  saveCodeVerifier (verifier: string): void { this.verifier = verifier }
  codeVerifier (): string {
    if (this.verifier === undefined) throw new Error('no code verifier saved')
    return this.verifier
  }

  saveDiscoveryState (state: OAuthDiscoveryState): void { this.discovery = state }
  discoveryState (): OAuthDiscoveryState | undefined { return this.discovery }

  invalidateCredentials (scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery'): void {
    this.invalidated.push(scope)
    if (scope === 'all' || scope === 'tokens') this.saved = undefined
    if (scope === 'all' || scope === 'client') this.client = undefined
    if (scope === 'all' || scope === 'verifier') this.verifier = undefined
    if (scope === 'all' || scope === 'discovery') this.discovery = undefined
  }
}
