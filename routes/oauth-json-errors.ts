import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { OAuthError, invalidRequest, serverError, temporarilyUnavailable } from '../lib/oauth-errors.js'
import { classifyRequestError, type RequestErrorClass } from './request-errors.js'

/** Responses that carry tokens or credentials must not be cached (OAuth 2.1 §3.2.3). */
export async function noStore (_req: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
}

/**
 * The error handler of every JSON OAuth endpoint: OAuthErrors go out as they are; the rest is classified
 * once (classifyRequestError, shared with the HTML pages): schema failures and other client mistakes (a
 * body of the wrong type, too large, a rate limit) become RFC 6749 errors with their status, a store that
 * is down or full a 503 with Retry-After, and anything else a 500 `server_error` whose cause is logged
 * with its stack and never sent.
 */
export function oauthJsonErrorHandler (
  onValidation: (err: FastifyError) => OAuthError = (err) => invalidRequest('malformed request', err.message),
  clientError = 'invalid_request'
) {
  return async function handleOAuthError (err: FastifyError | OAuthError, req: FastifyRequest, reply: FastifyReply) {
    const problem = err instanceof OAuthError ? undefined : classifyRequestError(err)
    const oauth = problem === undefined
      ? err as OAuthError
      : toOAuthError(err as FastifyError, problem, onValidation, clientError)
    if (oauth.statusCode === 500) {
      req.log.error({ err }, 'oauth endpoint failed')
    } else if (problem?.kind === 'store_full') {
      // A bound doing its job: not the gateway failing.
      req.log[problem.logLevel](
        { oauthError: oauth.error, detail: oauth.detail },
        'oauth request refused: a bound is reached'
      )
    } else if (oauth.statusCode >= 500) {
      req.log.error({ oauthError: oauth.error, detail: oauth.detail }, 'oauth endpoint unavailable')
    } else {
      req.log[oauth.logLevel](
        { oauthError: oauth.error, statusCode: oauth.statusCode, detail: oauth.detail },
        'oauth request rejected'
      )
    }
    return reply.code(oauth.statusCode).headers(oauth.headers).header('cache-control', 'no-store').send({
      error: oauth.error,
      ...(oauth.description === undefined ? {} : { error_description: oauth.description })
    })
  }
}

function toOAuthError (
  err: FastifyError,
  kind: RequestErrorClass,
  onValidation: (err: FastifyError) => OAuthError,
  clientError: string
): OAuthError {
  switch (kind.kind) {
    case 'store_unavailable':
      return temporarilyUnavailable(
        'the store is unavailable',
        'the gateway is temporarily unavailable, try again later',
        kind.retryAfterSeconds
      )
    case 'store_full':
      return new OAuthError('temporarily_unavailable', {
        statusCode: 503,
        description: 'the gateway is busy, try again later',
        detail: err.message,
        headers: { 'retry-after': String(kind.retryAfterSeconds) }
      })
    case 'rate_limited':
      // The rate limiter has already put Retry-After on the reply.
      return new OAuthError('temporarily_unavailable', { statusCode: 429, description: 'too many requests, slow down' })
    case 'bug':
      return serverError(err.message)
    default:
      if (err.validation !== undefined) return onValidation(err)
      return new OAuthError(clientError, {
        statusCode: kind.status,
        description: 'malformed request',
        detail: err.message
      })
  }
}
