import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { invalidRequest, unauthorizedClient, unsupportedGrantType } from '../../lib/oauth-errors.js'
import type { GatewayContext } from '../../plugins/context.js'
import cors, { PUBLIC_CORS } from '../../plugins/cors.js'
import { noStore, oauthJsonErrorHandler } from '../oauth-json-errors.js'
import { OAuthErrorBody } from '../schema.js'
import { RevokeRequestBody, RevokeResponse, TokenRequestBody, TokenResponse } from './schema.js'

/** The token endpoint (OAuth 2.1 §3.2) and RFC 7009 revocation: form bodies in, JSON out, never cached. */
const token: FastifyPluginAsyncTypebox = async (app) => {
  const { clients, grants, options } = app.getDecorator<GatewayContext>('mcpGateway')
  await app.register(cors, PUBLIC_CORS)

  // OAuth 2.1 §3.2: form-encoded bodies only; a JSON body is refused (415 → invalid_request).
  app.removeAllContentTypeParsers()
  await app.register(formbody, { bodyLimit: 16 * 1024 })
  app.setErrorHandler(oauthJsonErrorHandler())
  app.addHook('onRequest', noStore)
  // Client authentication happens in the handler, so both routes are limited per address, each on its own.
  const config = { rateLimit: { max: options.rateLimitToken, timeWindow: 60_000 } }

  app.post('/token', {
    config,
    schema: { body: TokenRequestBody, response: { 200: TokenResponse, '4xx': OAuthErrorBody } }
  }, async (req) => {
    const body = req.body
    const client = await clients.authenticate({
      basic: req.headers.authorization,
      clientId: body.client_id,
      clientSecret: body.client_secret
    })
    if (body.grant_type === 'authorization_code') {
      if (body.code === undefined) throw invalidRequest('code is required')
      // Every code is issued with an S256 challenge, so a request without a verifier is a downgrade.
      if (body.code_verifier === undefined) throw invalidRequest('code_verifier is required')
      // The grant service reports tokens_issued (and replays), logged through this request's logger.
      const issued = await grants.exchangeCode(client, {
        code: body.code,
        codeVerifier: body.code_verifier,
        redirectUri: body.redirect_uri,
        resource: body.resource,
        log: req.log
      })
      // The client completed a sign-in: it now lives clientTtl idle. The code is spent, so a store failure
      // here must not cost the client its tokens; it stays unused and expires early, and registers again.
      await clients.markUsed(client).catch((err: unknown) => {
        req.log.error(
          { err: { message: err instanceof Error ? err.message : String(err) }, clientId: client.clientId },
          'client not marked used'
        )
      })
      return issued
    }
    if (body.grant_type === 'refresh_token') {
      if (body.refresh_token === undefined) throw invalidRequest('refresh_token is required')
      if (!client.metadata.grant_types.includes('refresh_token')) {
        throw unauthorizedClient('client did not register refresh_token')
      }
      return await grants.refresh(client, {
        refreshToken: body.refresh_token,
        scope: body.scope,
        resource: body.resource,
        log: req.log
      })
    }
    throw unsupportedGrantType()
  })

  app.post('/revoke', {
    config,
    schema: { body: RevokeRequestBody, response: { 200: RevokeResponse, '4xx': OAuthErrorBody } }
  }, async (req, reply) => {
    const body = req.body
    const client = await clients.authenticate({
      basic: req.headers.authorization,
      clientId: body.client_id,
      clientSecret: body.client_secret
    })
    // The hint only orders the lookups (RFC 7009 §2.1); both kinds are searched whatever it says.
    // A grant that ends is also reported on its own (grant_revoked, with its id).
    await grants.revoke(client, body.token, req.log)
    req.log.info({ clientId: client.clientId }, 'token revoked')
    return reply.code(200).send(null)
  })
}

export default token
