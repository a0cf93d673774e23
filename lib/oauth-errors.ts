/**
 * The one error the OAuth endpoints throw. `error` and `description` are public (RFC 6749 §5.2);
 * `detail` is the internal reason, logged and never sent. Descriptions stay generic so that an
 * attacker learns nothing about which check failed.
 */
export class OAuthError extends Error {
  readonly error: string
  readonly statusCode: number
  readonly description: string | undefined
  readonly detail: string | undefined
  readonly headers: Record<string, string>
  /** Security events (refresh reuse, code replay, PKCE mismatch) are logged at warn, the rest at info. */
  readonly logLevel: 'info' | 'warn'

  constructor (error: string, options: {
    statusCode?: number,
    description?: string,
    detail?: string,
    headers?: Record<string, string>,
    logLevel?: 'info' | 'warn'
  } = {}) {
    super(options.detail ?? options.description ?? error)
    this.name = 'OAuthError'
    this.error = error
    this.statusCode = options.statusCode ?? 400
    this.description = options.description
    this.detail = options.detail
    this.headers = options.headers ?? {}
    this.logLevel = options.logLevel ?? 'info'
  }
}

export const invalidRequest = (description: string, detail?: string) =>
  new OAuthError('invalid_request', { description, detail })

/** 401 with a Basic challenge when the client tried Basic (RFC 6749 §5.2). */
export const invalidClient = (detail: string, triedBasic = false, description = 'client authentication failed') =>
  new OAuthError('invalid_client', {
    statusCode: 401,
    description,
    detail,
    headers: triedBasic ? { 'www-authenticate': 'Basic realm="mcp-oauth-gateway"' } : {}
  })

export const invalidGrant = (detail: string, logLevel: 'info' | 'warn' = 'info') =>
  new OAuthError('invalid_grant', { description: 'the grant is invalid, expired or revoked', detail, logLevel })

export const invalidScope = (detail: string) =>
  new OAuthError('invalid_scope', { description: 'the requested scope exceeds what was granted', detail })

export const unauthorizedClient = (detail: string) =>
  new OAuthError('unauthorized_client', { description: 'the client may not use this grant type', detail })

export const unsupportedGrantType = () =>
  new OAuthError('unsupported_grant_type', { description: 'grant_type must be authorization_code or refresh_token' })

export const invalidTarget = (detail: string) =>
  new OAuthError('invalid_target', { description: 'the resource is not served by this gateway', detail })

export const temporarilyUnavailable = (
  detail: string,
  description = 'the upstream authorization server is unavailable, try again later',
  retryAfterSeconds = 5
) =>
  new OAuthError('temporarily_unavailable', {
    statusCode: 503,
    description,
    detail,
    headers: { 'retry-after': String(retryAfterSeconds) }
  })

export const serverError = (detail: string) =>
  new OAuthError('server_error', { statusCode: 500, description: 'internal error', detail })
