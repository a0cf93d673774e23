import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { ClientMetadata } from '../../lib/clients.js'
import { OAuthError } from '../../lib/oauth-errors.js'
import { checkRedirectUri } from '../../lib/redirect-uri.js'
import type { GatewayContext } from '../../plugins/context.js'
import cors, { PUBLIC_CORS } from '../../plugins/cors.js'
import { noStore, oauthJsonErrorHandler } from '../oauth-json-errors.js'
import { OAuthErrorBody } from '../schema.js'
import { RegisterRequestBody, RegisterResponse } from './schema.js'

const ARRAY_MEMBERS = ['redirect_uris', 'grant_types', 'response_types', 'contacts'] as const

const invalidMetadata = (description: string, detail?: string) =>
  new OAuthError('invalid_client_metadata', { description, detail })
const invalidRedirectUri = (description: string) =>
  new OAuthError('invalid_redirect_uri', { description })

/**
 * RFC 7591 dynamic client registration, open as MCP clients expect, but bounded: small bodies, a
 * rate limit per address, validated redirect URIs, and clients that expire when left unused.
 */
const register: FastifyPluginAsyncTypebox = async (app) => {
  const { clients, events, options } = app.getDecorator<GatewayContext>('mcpGateway')
  await app.register(cors, PUBLIC_CORS)

  // RFC 7591 §3.2.2 knows only metadata errors: a body that is not JSON at all is one too.
  app.setErrorHandler(oauthJsonErrorHandler((err) => {
    const path = err.validation?.[0]?.instancePath ?? ''
    return path.startsWith('/redirect_uris')
      ? invalidRedirectUri('redirect_uris must be a list of absolute URIs')
      : invalidMetadata('the client metadata is invalid', err.message)
  }, 'invalid_client_metadata'))
  app.addHook('onRequest', noStore)
  // Fastify's validator wraps a lone string into an array (coerceTypes: 'array'); a client that sends
  // a string where RFC 7591 says array has malformed metadata, and should hear so.
  app.addHook('preValidation', async (req) => {
    const body = req.body as Record<string, unknown> | null
    for (const member of ARRAY_MEMBERS) {
      if (body?.[member] !== undefined && !Array.isArray(body[member])) {
        throw invalidMetadata(`${member} must be an array`)
      }
    }
  })

  app.post('/register', {
    bodyLimit: 16 * 1024,
    config: { rateLimit: { max: options.rateLimitRegister, timeWindow: 60_000 } },
    schema: { body: RegisterRequestBody, response: { 201: RegisterResponse, '4xx': OAuthErrorBody } }
  }, async (req, reply) => {
    const body = req.body
    for (const uri of body.redirect_uris) {
      const verdict = checkRedirectUri(uri, options.redirectUriAllow)
      if (!verdict.ok) throw invalidRedirectUri(verdict.reason)
    }
    const grantTypes = body.grant_types ?? ['authorization_code']
    // Only the code flow exists here; a client that cannot use it cannot use anything.
    if (!grantTypes.includes('authorization_code')) throw invalidMetadata('grant_types must include authorization_code')

    const metadata: ClientMetadata = {
      ...body,
      // RFC 7591 §2: the default is client_secret_basic.
      token_endpoint_auth_method: body.token_endpoint_auth_method ?? 'client_secret_basic',
      grant_types: grantTypes,
      response_types: ['code']
    }
    const { client, secret } = await clients.register(metadata)
    events.emit(
      'client_registered',
      { clientId: client.clientId, authMethod: metadata.token_endpoint_auth_method },
      req.log
    )
    return reply.code(201).send({
      client_id: client.clientId,
      client_id_issued_at: Math.floor(client.issuedAt / 1000),
      ...(secret === undefined ? {} : { client_secret: secret, client_secret_expires_at: 0 }),
      ...metadata
    })
  })
}

export default register
