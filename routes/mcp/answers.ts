import type { FastifyReply, FastifyRequest } from 'fastify'
import { errors as undiciErrors } from 'undici'
import type { GatewayEvents } from '../../lib/events.js'
import { pathOf } from '../../lib/log.js'
import type { AuthenticatedRequest, GrantService, UnlockedGrant } from '../../lib/grants.js'
import { OAuthError } from '../../lib/oauth-errors.js'
import { withoutTrailingSlashes } from '../../lib/url.js'
import type { StreamLimits, StreamRefusal } from './stream-limits.js'
import { quotablePath } from './target.js'

export interface ProxyAnswerDeps {
  grants: GrantService
  events: GatewayEvents
  limits: StreamLimits
  /** The PRM URL a challenge names, to which the sub-path is appended. */
  prmBase: string
  /** The scope every gateway token carries, named in challenges. */
  mcpScope: string
}

/**
 * Every answer of /mcp that is the gateway's own rather than the upstream's: the bearer challenges, the
 * refusals of a grant or of the whole gateway, and the upstream's failures. JSON bodies in RFC 6750 /
 * RFC 6749 form, so an MCP client can read each one.
 */
export function createProxyAnswers ({ grants, events, limits, prmBase, mcpScope }: ProxyAnswerDeps) {
  /** RFC 6750 §3 / MCP authorization: a challenge that names the gateway's own metadata, never the upstream's. */
  async function challenge (
    req: FastifyRequest,
    reply: FastifyReply,
    error?: string,
    description?: string,
    status = 401
  ): Promise<FastifyReply> {
    // The sub-path as the client spelled it names its own PRM, encoded so that it cannot end the quoted value.
    // A target outside the mount (which no route should hand over) is challenged for the mount itself.
    const rest = withoutTrailingSlashes(req.mcpTarget?.path ?? '')
    let value = `Bearer resource_metadata="${prmBase}${quotablePath(rest)}", scope="${mcpScope}"`
    if (error !== undefined) value += `, error="${error}", error_description="${description ?? ''}"`
    const body = error === undefined
      ? { error: 'unauthorized', error_description: 'a bearer token is required' }
      : { error, error_description: description }
    return await reply.code(status).header('www-authenticate', value).send(body)
  }

  /**
   * The upstream refuses the grant's token and it cannot be refreshed: the login is over. The grant
   * is revoked, so the client's refresh token fails too and it authorizes again, instead of being
   * handed fresh gateway tokens over the same dead upstream token.
   */
  async function upstreamRejected (
    req: FastifyRequest,
    reply: FastifyReply,
    { grant }: UnlockedGrant
  ): Promise<FastifyReply> {
    events.emit('upstream_error', { kind: 'upstream_401' })
    // Logged as 'grant revoked', reason upstream_rejected.
    await grants.revokeGrant(grant.id, 'upstream_rejected', req.log)
    return await challenge(req, reply, 'invalid_token', 'the upstream no longer accepts this authorization')
  }

  async function upstreamTokenLost (req: FastifyRequest, reply: FastifyReply, err: unknown): Promise<FastifyReply> {
    if (err instanceof OAuthError && err.error === 'invalid_grant') {
      return await challenge(req, reply, 'invalid_token', 'the upstream authorization ended; authorize again')
    }
    const message = err instanceof Error ? err.message : String(err)
    req.log.error({ err: { message } }, 'upstream token refresh failed')
    return await unavailable(reply, 'the upstream authorization server is unavailable')
  }

  async function outsideMount (reply: FastifyReply): Promise<FastifyReply> {
    return await reply.code(400).send({ error: 'invalid_request', error_description: 'the path may not leave /mcp' })
  }

  /** A grant over its share answers 429 (that client slows down); a full gateway 503 (anyone may retry). */
  async function overLimit (
    req: FastifyRequest,
    reply: FastifyReply,
    refusal: StreamRefusal,
    grantId: string
  ): Promise<FastifyReply> {
    if (refusal === 'total') {
      req.log.info({ open: limits.total }, 'mcp request refused: the gateway has maxStreams open')
      return await unavailable(reply, 'the gateway has too many requests and streams open')
    }
    req.log.info(
      { grantId, open: limits.openFor(grantId) },
      'mcp request refused: the grant has maxStreamsPerGrant open'
    )
    return await reply.code(429).header('retry-after', '5').send({
      error: 'too_many_requests',
      error_description: 'too many requests and streams open for this authorization'
    })
  }

  /** Nothing about the client's authorization changed: it should try again shortly. */
  async function unavailable (reply: FastifyReply, description: string): Promise<FastifyReply> {
    return await reply.code(503).header('retry-after', '5').send({
      error: 'temporarily_unavailable',
      error_description: description
    })
  }

  async function upstreamTimeout (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    events.emit('upstream_error', { kind: 'proxy_504' })
    req.log.error('upstream MCP server too slow')
    return await reply.code(504).send({
      error: 'gateway_timeout',
      error_description: 'the upstream MCP server did not answer in time'
    })
  }

  async function upstreamFailure (
    req: FastifyRequest,
    reply: FastifyReply,
    err: unknown,
    clientLeft: boolean
  ): Promise<FastifyReply | undefined> {
    if (clientLeft) {
      // No access line comes for an answer never finished (lib/log.ts): this one says the client left.
      // Only forward() gets here, after the bearer check set mcpAuth.
      const { grant } = req.mcpAuth as AuthenticatedRequest
      req.log.info({ method: req.method, url: pathOf(req.url), clientId: grant.clientId, grantId: grant.id },
        'request aborted')
      return undefined
    }
    if (err instanceof undiciErrors.HeadersTimeoutError) return await upstreamTimeout(req, reply)
    events.emit('upstream_error', { kind: 'proxy_502' })
    const message = err instanceof Error ? err.message : String(err)
    req.log.error({ err: { message, code: (err as { code?: string }).code } }, 'upstream MCP server unreachable')
    return await reply.code(502).send({
      error: 'bad_gateway',
      error_description: 'the upstream MCP server is unreachable'
    })
  }

  return {
    challenge,
    upstreamRejected,
    upstreamTokenLost,
    outsideMount,
    overLimit,
    unavailable,
    upstreamTimeout,
    upstreamFailure
  }
}
