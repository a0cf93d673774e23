export type UpstreamErrorKind =
  'unreachable' | 'timeout' | 'bad_response' | 'oauth_error' | 'discovery' | 'registration'

/**
 * Every failure talking to the upstream. Messages are meant for operators' logs: they name URLs
 * (without userinfo or query) and OAuth error codes, never tokens, codes or secrets.
 */
export class UpstreamError extends Error {
  readonly kind: UpstreamErrorKind
  readonly oauthError?: string
  readonly status?: number

  constructor (
    kind: UpstreamErrorKind,
    message: string,
    options: { oauthError?: string, status?: number, cause?: unknown } = {}
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'UpstreamError'
    this.kind = kind
    this.oauthError = options.oauthError
    this.status = options.status
  }
}
