import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { OAuthError, invalidRequest, serverError, temporarilyUnavailable } from '../lib/oauth-errors.js'
import { StoreFullError, StoreUnavailableError } from '../lib/stores/index.js'

/** Responses that carry tokens or credentials must not be cached (OAuth 2.1 §3.2.3). */
export async function noStore (_req: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
}

/**
 * The error handler of every JSON OAuth endpoint: OAuthErrors go out as they are; schema failures
 * and other 4xx (a body of the wrong type, too large, a rate limit) become RFC 6749 errors with
 * their status; anything else is a 500 `server_error` whose cause is logged and never sent.
 */
export function oauthJsonErrorHandler (onValidation: (err: FastifyError) => OAuthError = (err) => invalidRequest('malformed request', err.message), clientError = 'invalid_request') {
  return async function handleOAuthError (err: FastifyError | OAuthError, req: FastifyRequest, reply: FastifyReply) {
    const oauth = toOAuthError(err, onValidation, clientError)
    if (oauth.statusCode === 500) req.log.error({ err }, 'oauth endpoint failed')
    else if (oauth.statusCode >= 500) req.log.error({ oauthError: oauth.error, detail: oauth.detail }, 'oauth endpoint unavailable')
    else req.log[oauth.logLevel]({ oauthError: oauth.error, detail: oauth.detail }, 'oauth request rejected')
    return reply.code(oauth.statusCode).headers(oauth.headers).header('cache-control', 'no-store').send({
      error: oauth.error,
      ...(oauth.description === undefined ? {} : { error_description: oauth.description })
    })
  }
}

function toOAuthError (err: FastifyError | OAuthError, onValidation: (err: FastifyError) => OAuthError, clientError: string): OAuthError {
  if (err instanceof OAuthError) return err
  if (err instanceof StoreUnavailableError) return temporarilyUnavailable('the store is unavailable', 'the gateway is temporarily unavailable, try again later')
  if (err instanceof StoreFullError) return temporarilyUnavailable(err.message, 'the gateway is busy, try again later', 60)
  if (err.validation !== undefined) return onValidation(err)
  const status = err.statusCode ?? 500
  if (status === 429) {
    return new OAuthError('temporarily_unavailable', { statusCode: 429, description: 'too many requests, slow down', headers: {} })
  }
  if (status >= 400 && status < 500) return new OAuthError(clientError, { statusCode: status, description: 'malformed request', detail: err.message })
  return serverError(err.message)
}
