import { createHash } from 'node:crypto'
import { ExpiringMap, randomToken, sameSecret, sha256 } from './memory.js'

/*
 * The demo authorization server's rules, without HTTP: registering clients (RFC 7591), checking an
 * authorization request, turning the person's approval into a code, and the token grants (authorization
 * code with PKCE S256, rotating refresh tokens). Everything lives in bounded, expiring memory.
 */

export const SCOPES = ['tools'] as const
const ACCESS_TTL_S = 3600
const LIMITS = {
  clients: { max: 1000, ttlMs: 24 * 3600_000 },
  pending: { max: 1000, ttlMs: 10 * 60_000 },
  codes: { max: 1000, ttlMs: 60_000 },
  access: { max: 10_000, ttlMs: ACCESS_TTL_S * 1000 },
  refresh: { max: 10_000, ttlMs: 7 * 24 * 3600_000 }
}

export type AuthMethod = 'none' | 'client_secret_post'

export interface Client {
  clientId: string
  clientName: string
  redirectUris: string[]
  authMethod: AuthMethod
  secretHash?: string
}

/** What the person approves, and what the code and the tokens then carry. */
export interface Authorization {
  clientId: string
  redirectUri: string
  scopes: string[]
  state?: string | undefined
  codeChallenge: string
}

export interface Pending extends Authorization {
  /** Echoed by the consent form: a cross-site page cannot know it. */
  csrf: string
  /** The hash of the cookie the page was shown with: only that browser can answer. */
  browser: string
}

/** An OAuth error (RFC 6749 §5.2), with the status it is sent with. */
export class OAuthFailure extends Error {
  readonly error: string
  readonly status: number

  constructor (error: string, description: string, status = 400) {
    super(description)
    this.error = error
    this.status = status
  }
}

/** A redirect URI a loopback demo accepts: https anywhere, http only to this machine; no fragment. */
export function acceptableRedirectUri (value: string): boolean {
  if (!URL.canParse(value)) return false
  const url = new URL(value)
  const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname)
  return url.hash === '' && (url.protocol === 'https:' || (url.protocol === 'http:' && loopback))
}

export class Authority {
  readonly clients = new ExpiringMap<Client>(LIMITS.clients.max, LIMITS.clients.ttlMs)
  readonly #pending = new ExpiringMap<Pending>(LIMITS.pending.max, LIMITS.pending.ttlMs)
  readonly #codes = new ExpiringMap<Authorization>(LIMITS.codes.max, LIMITS.codes.ttlMs)
  readonly #access = new ExpiringMap<{ clientId: string, scopes: string[] }>(LIMITS.access.max, LIMITS.access.ttlMs)
  readonly #refresh = new ExpiringMap<{ clientId: string, scopes: string[] }>(LIMITS.refresh.max, LIMITS.refresh.ttlMs)

  register (p: { clientName?: string | undefined, redirectUris: string[], authMethod?: AuthMethod | undefined }):
  { client: Client, secret?: string } {
    const bad = p.redirectUris.find((uri) => !acceptableRedirectUri(uri))
    if (bad !== undefined) {
      throw new OAuthFailure('invalid_redirect_uri', 'redirect URIs must be https, or http to a loopback address')
    }
    const client: Client = {
      clientId: randomToken(),
      clientName: p.clientName ?? 'An unnamed client',
      redirectUris: p.redirectUris,
      authMethod: p.authMethod ?? 'client_secret_post'
    }
    if (client.authMethod === 'none') {
      this.clients.set(client.clientId, client)
      return { client }
    }
    const secret = randomToken()
    client.secretHash = sha256(secret)
    this.clients.set(client.clientId, client)
    return { client, secret }
  }

  /**
   * Checks an authorization request. Throws a page error (status and text, never a redirect) until the
   * client and its redirect URI are known; after that, an OAuthFailure that goes back to the redirect URI.
   */
  check (q: Record<string, string | undefined>): { client: Client, authorization: Authorization } {
    const client = q.client_id === undefined ? undefined : this.clients.get(q.client_id)
    if (client === undefined) throw new PageError('Unknown client', 'This client is not registered here.')
    const redirectUri = q.redirect_uri ?? (client.redirectUris.length === 1 ? client.redirectUris[0] : undefined)
    if (redirectUri === undefined || !client.redirectUris.includes(redirectUri)) {
      throw new PageError('Wrong redirect URI', 'The redirect URI is not one this client registered.')
    }
    const scopes = q.scope === undefined || q.scope === '' ? [...SCOPES] : [...new Set(q.scope.split(' '))]
    // Past this point errors go back to the client, which then knows which request failed.
    const authorization = { clientId: client.clientId, redirectUri, scopes, state: q.state, codeChallenge: '' }
    if (q.response_type !== 'code') {
      throw new RedirectError(authorization, new OAuthFailure('unsupported_response_type', 'only code is supported'))
    }
    if (q.code_challenge_method !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(q.code_challenge ?? '')) {
      throw new RedirectError(authorization, new OAuthFailure('invalid_request', 'PKCE with S256 is required'))
    }
    if (!scopes.every((scope) => (SCOPES as readonly string[]).includes(scope))) {
      throw new RedirectError(authorization, new OAuthFailure('invalid_scope', 'unknown scope'))
    }
    return { client, authorization: { ...authorization, codeChallenge: q.code_challenge as string } }
  }

  /** Keeps a checked request until the person answers; returns its id. */
  hold (authorization: Authorization, browserCookie: string): { id: string, csrf: string } {
    const id = randomToken()
    const csrf = randomToken()
    this.#pending.set(id, { ...authorization, csrf, browser: sha256(browserCookie) })
    return { id, csrf }
  }

  /** The person's answer: the request it answers (now gone), if the form and the browser are the ones shown it. */
  answer (id: string, csrf: string, browserCookie: string): Authorization | undefined {
    const pending = this.#pending.get(id)
    if (pending === undefined) return undefined
    if (!sameSecret(pending.csrf, csrf) || !sameSecret(pending.browser, sha256(browserCookie))) return undefined
    this.#pending.delete(id)
    const { csrf: _csrf, browser: _browser, ...authorization } = pending
    return authorization
  }

  issueCode (authorization: Authorization): string {
    const code = randomToken()
    this.#codes.set(sha256(code), authorization)
    return code
  }

  /** RFC 6749 §2.3.1 with the secret in the form (or none for a public client); the client, or invalid_client. */
  authenticate (clientId: string | undefined, secret: string | undefined): Client {
    const client = clientId === undefined ? undefined : this.clients.get(clientId)
    const ok = client !== undefined && (client.secretHash === undefined
      ? secret === undefined
      : secret !== undefined && sameSecret(client.secretHash, sha256(secret)))
    if (!ok) throw new OAuthFailure('invalid_client', 'client authentication failed', 401)
    return client
  }

  exchangeCode (client: Client, p: { code: string, redirectUri: string | undefined, verifier: string }): TokenResponse {
    const granted = this.#codes.take(sha256(p.code))
    const challenge = createHash('sha256').update(p.verifier).digest('base64url')
    if (granted === undefined || granted.clientId !== client.clientId || granted.redirectUri !== p.redirectUri ||
      !sameSecret(granted.codeChallenge, challenge)) {
      throw new OAuthFailure('invalid_grant', 'the code is invalid, expired, or not for this request')
    }
    return this.#tokens(client.clientId, granted.scopes)
  }

  refresh (client: Client, refreshToken: string): TokenResponse {
    const grant = this.#refresh.take(sha256(refreshToken))
    if (grant === undefined || grant.clientId !== client.clientId) {
      throw new OAuthFailure('invalid_grant', 'the refresh token is invalid or expired')
    }
    return this.#tokens(client.clientId, grant.scopes)
  }

  /** The grant behind a bearer token, if it is one of ours and still valid. */
  verify (accessToken: string): { clientId: string, scopes: string[] } | undefined {
    return this.#access.get(sha256(accessToken))
  }

  #tokens (clientId: string, scopes: string[]): TokenResponse {
    const accessToken = randomToken()
    const refreshToken = randomToken()
    this.#access.set(sha256(accessToken), { clientId, scopes })
    this.#refresh.set(sha256(refreshToken), { clientId, scopes })
    return {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: ACCESS_TTL_S,
      refresh_token: refreshToken,
      scope: scopes.join(' ')
    }
  }
}

export interface TokenResponse {
  access_token: string
  token_type: 'Bearer'
  expires_in: number
  refresh_token: string
  scope: string
}

/** A request that cannot go back to the client: shown to the person as a page. */
export class PageError extends Error {
  readonly title: string

  constructor (title: string, message: string) {
    super(message)
    this.title = title
  }
}

/** A request that goes back to the client's redirect URI with an error. */
export class RedirectError extends Error {
  readonly authorization: Authorization
  readonly failure: OAuthFailure

  constructor (authorization: Authorization, failure: OAuthFailure) {
    super(failure.message)
    this.authorization = authorization
    this.failure = failure
  }
}
