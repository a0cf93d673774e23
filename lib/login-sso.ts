import * as oidc from 'openid-client'
import { isLoopbackHost } from './config/parsers.js'

/*
 * Screen 1 by single sign-on: the gateway as an OpenID Connect relying party of the team's identity provider.
 * Discovery, PKCE, state, nonce and the ID token's validation (signature, issuer, audience, expiry, nonce) are
 * openid-client's, a certified and well-kept implementation, not ours. What is ours: who may come in, by a
 * verified email address or its domain.
 */

export interface SsoSettings {
  issuer: string
  clientId: string
  /** Absent: a public client (PKCE alone). */
  clientSecret: string | undefined
  /** The gateway's callback, as the provider must have it registered. */
  redirectUri: string
  /** Lowercase addresses allowed; with `allowedDomains`, either is enough. */
  allowedEmails: readonly string[]
  /** Lowercase domains whose addresses are allowed. */
  allowedDomains: readonly string[]
  timeoutMs: number
}

/** The operator's single sign-on (--login-oidc-*), returning to `redirectUri`; undefined when none is configured. */
export function configuredSso (
  options: {
    loginOidcIssuer?: string | undefined
    loginOidcClientId?: string | undefined
    loginOidcClientSecret?: string | undefined
    loginAllowedEmails: readonly string[]
    loginAllowedDomains: readonly string[]
    upstreamTimeout: number
  },
  redirectUri: string
): SsoLogin | undefined {
  if (options.loginOidcIssuer === undefined) return undefined
  return new SsoLogin({
    issuer: options.loginOidcIssuer,
    // The configuration requires the client id with an issuer.
    clientId: options.loginOidcClientId as string,
    clientSecret: options.loginOidcClientSecret,
    redirectUri,
    allowedEmails: options.loginAllowedEmails,
    allowedDomains: options.loginAllowedDomains,
    timeoutMs: options.upstreamTimeout
  })
}

/** Why single sign-on gave nobody: `status` is the page's (403 refused, 502 provider failure). */
export class SsoError extends Error {
  readonly status: 403 | 502

  constructor (message: string, status: 403 | 502, options?: { cause: unknown }) {
    super(message, options)
    this.name = 'SsoError'
    this.status = status
  }
}

/** What a flow keeps while the browser is at the provider. */
export interface SsoSecrets {
  verifier: string
  nonce: string
}

/** Whether a verified address may sign in: listed itself, or at a listed domain (exactly, not below it). */
export function emailAllowed (email: string, allowed: Pick<SsoSettings, 'allowedEmails' | 'allowedDomains'>): boolean {
  const address = email.toLowerCase()
  const at = address.lastIndexOf('@')
  return at > 0 && (allowed.allowedEmails.includes(address) || allowed.allowedDomains.includes(address.slice(at + 1)))
}

export class SsoLogin {
  readonly #settings: SsoSettings
  #config: Promise<oidc.Configuration> | undefined

  constructor (settings: SsoSettings) {
    this.#settings = settings
  }

  /** The provider's host, for the button on the login page. */
  get displayName (): string {
    return new URL(this.#settings.issuer).host
  }

  /** Fresh PKCE verifier and nonce for one sign-in. */
  secrets (): SsoSecrets {
    return { verifier: oidc.randomPKCECodeVerifier(), nonce: oidc.randomNonce() }
  }

  /** Where to send the browser: the provider's authorization endpoint, with PKCE S256, state and nonce. */
  async authorizationUrl (state: string, secrets: SsoSecrets): Promise<string> {
    const config = await this.#discover()
    return oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.#settings.redirectUri,
      scope: 'openid email',
      state,
      nonce: secrets.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(secrets.verifier),
      code_challenge_method: 'S256'
    }).href
  }

  /**
   * The verified email address the provider's answer at `callbackUrl` signs in, or an SsoError: the code
   * exchange, the ID token and its nonce are checked by openid-client, the address and the allow-lists here.
   */
  async finish (callbackUrl: URL, state: string, secrets: SsoSecrets): Promise<string> {
    const config = await this.#discover()
    let claims: oidc.IDToken | undefined
    try {
      const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: secrets.verifier,
        expectedState: state,
        expectedNonce: secrets.nonce,
        idTokenExpected: true
      })
      claims = tokens.claims()
    } catch (err) {
      throw new SsoError(`the sign-in at ${this.displayName} could not be completed (${describeError(err)})`, 502,
        { cause: err })
    }
    const email = claims?.email
    if (typeof email !== 'string' || claims?.email_verified !== true) {
      throw new SsoError(`${this.displayName} did not give a verified email address`, 403)
    }
    if (!emailAllowed(email, this.#settings)) {
      throw new SsoError(`${email} may not use this gateway`, 403)
    }
    return email.toLowerCase()
  }

  /** The provider's metadata, fetched once; a failure is forgotten so the next sign-in asks again. */
  async #discover (): Promise<oidc.Configuration> {
    const { issuer, clientId, clientSecret, timeoutMs } = this.#settings
    this.#config ??= oidc.discovery(
      new URL(issuer),
      clientId,
      clientSecret,
      clientSecret === undefined ? oidc.None() : oidc.ClientSecretPost(clientSecret),
      {
        timeout: Math.ceil(timeoutMs / 1000),
        execute: [
          // The ID token's signature is checked against the provider's keys, not only trusted for coming over TLS.
          oidc.enableNonRepudiationChecks,
          // Plain http only to a provider on this machine (tests, a local IdP); anywhere else https is required.
          ...(isLoopbackHost(new URL(issuer).hostname) ? [oidc.allowInsecureRequests] : [])
        ]
      }
    )
    try {
      return await this.#config
    } catch (err) {
      this.#config = undefined
      throw new SsoError(`the sign-on provider ${this.displayName} cannot be reached (${describeError(err)})`, 502,
        { cause: err })
    }
  }
}

/** An openid-client error in a few safe words: its code and message, never a token. */
function describeError (err: unknown): string {
  const { code, message } = Object(err) as { code?: unknown, message?: unknown }
  const text = typeof message === 'string' ? message.slice(0, 120).replace(/[^\x20-\x7e]/g, '?') : 'error'
  return typeof code === 'string' ? `${code}: ${text}` : text
}
