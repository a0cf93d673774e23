import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyError } from 'fastify'
import { Type } from 'typebox'
import { OAuthFailure, SCOPES, type Authority } from './authority.js'

/*
 * The authorization server's machine-facing endpoints: RFC 8414 metadata, RFC 7591 dynamic registration
 * and the RFC 6749 token endpoint. JSON errors, never cached.
 */

const Uri = Type.String({ minLength: 1, maxLength: 2048 })
const RegisterBody = Type.Object({
  redirect_uris: Type.Array(Uri, { minItems: 1, maxItems: 5 }),
  client_name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  token_endpoint_auth_method: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('client_secret_post')])),
  grant_types: Type.Optional(Type.Array(Type.Union([Type.Literal('authorization_code'), Type.Literal('refresh_token')]),
    { maxItems: 2 })),
  response_types: Type.Optional(Type.Array(Type.Literal('code')))
})
const Secret = Type.Optional(Type.String({ minLength: 1, maxLength: 512 }))
const TokenBody = Type.Union([
  Type.Object({
    grant_type: Type.Literal('authorization_code'),
    code: Type.String({ minLength: 1, maxLength: 512 }),
    code_verifier: Type.String({ minLength: 43, maxLength: 128, pattern: '^[A-Za-z0-9._~-]+$' }),
    redirect_uri: Type.Optional(Uri),
    client_id: Type.String({ minLength: 1, maxLength: 512 }),
    client_secret: Secret
  }, { additionalProperties: false }),
  Type.Object({
    grant_type: Type.Literal('refresh_token'),
    refresh_token: Type.String({ minLength: 1, maxLength: 512 }),
    client_id: Type.String({ minLength: 1, maxLength: 512 }),
    client_secret: Secret
  }, { additionalProperties: false })
])

export const oauthRoutes: FastifyPluginAsyncTypebox<{ authority: Authority, origin: string }> = async (
  app,
  { authority, origin }
) => {
  await app.register(formbody, { bodyLimit: 8192 })
  app.addHook('onSend', async (_req, reply) => { reply.header('cache-control', 'no-store') })
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode ?? 500
    const failure = err instanceof OAuthFailure
      ? err
      : err.validation !== undefined
        ? new OAuthFailure(req.url === '/register' ? 'invalid_client_metadata' : 'invalid_request', 'malformed request')
        // Fastify's own refusals: a wrong content-type, a body too large.
        : status < 500 ? new OAuthFailure('invalid_request', 'malformed request', status) : undefined
    if (failure === undefined) {
      req.log.error({ err }, 'demo authorization server failed')
      return reply.code(500).send({ error: 'server_error' })
    }
    return reply.code(failure.status).send({ error: failure.error, error_description: failure.message })
  })

  app.get('/.well-known/oauth-authorization-server', async () => ({
    issuer: origin,
    authorization_endpoint: `${origin}/authorize`,
    token_endpoint: `${origin}/token`,
    registration_endpoint: `${origin}/register`,
    scopes_supported: SCOPES,
    response_types_supported: ['code'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'none']
  }))

  app.post('/register', { schema: { body: RegisterBody } }, async (req, reply) => {
    const body = req.body
    const { client, secret } = authority.register({
      clientName: body.client_name,
      redirectUris: body.redirect_uris,
      authMethod: body.token_endpoint_auth_method
    })
    req.log.info({ clientName: client.clientName }, 'client registered')
    return await reply.code(201).send({
      client_id: client.clientId,
      ...(secret === undefined ? {} : { client_secret: secret, client_secret_expires_at: 0 }),
      client_name: client.clientName,
      redirect_uris: client.redirectUris,
      token_endpoint_auth_method: client.authMethod,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code']
    })
  })

  app.post('/token', { schema: { body: TokenBody } }, async (req) => {
    const body = req.body
    const client = authority.authenticate(body.client_id, body.client_secret)
    return body.grant_type === 'authorization_code'
      ? authority.exchangeCode(client,
        { code: body.code, redirectUri: body.redirect_uri, verifier: body.code_verifier })
      : authority.refresh(client, body.refresh_token)
  })
}
