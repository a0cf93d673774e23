import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Static } from 'typebox'
import { PUBLIC_CORS } from '../../plugins/cors.js'
import type { GatewayContext } from '../../plugins/context.js'
import { AuthorizationServerMetadata, ProtectedResourceMetadata, ResourcePathParams } from './schema.js'

const CLIENT_AUTH_METHODS = ['none', 'client_secret_post', 'client_secret_basic']

/**
 * Discovery for every client generation: RFC 9728 protected-resource metadata (path-suffixed first,
 * as 2025-11-25+ clients probe it, and at the root), RFC 8414 AS metadata and the same document at
 * the OpenID path (MCP 2025-11-25 lets clients try either). Built once: nothing here varies by request.
 */
const discovery: FastifyPluginAsyncTypebox = async (app) => {
  const { urls, options } = app.getDecorator<GatewayContext>('mcpGateway')
  const config = { gatewayCors: PUBLIC_CORS }

  const resourceMetadata = (resource: string): Static<typeof ProtectedResourceMetadata> => ({
    resource,
    authorization_servers: [urls.issuer],
    scopes_supported: [options.mcpScope],
    bearer_methods_supported: ['header'],
    resource_name: 'MCP OAuth Gateway'
  })
  const canonical = resourceMetadata(urls.resource)
  const asMetadata: Static<typeof AuthorizationServerMetadata> = {
    issuer: urls.issuer,
    authorization_endpoint: urls.authorize,
    token_endpoint: urls.token,
    registration_endpoint: urls.register,
    revocation_endpoint: urls.revoke,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
    revocation_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
    code_challenge_methods_supported: ['S256'],
    scopes_supported: [options.mcpScope],
    authorization_response_iss_parameter_supported: true
  }

  // Metadata changes only with configuration: let clients and proxies cache it.
  app.addHook('onRequest', async (_req, reply) => { reply.header('cache-control', 'public, max-age=3600') })

  const prmPath = new URL(urls.protectedResourceMetadata).pathname
  const prmSchema = { response: { 200: ProtectedResourceMetadata } }
  app.get('/.well-known/oauth-protected-resource', { schema: prmSchema, config, logLevel: 'warn' }, async () => canonical)
  app.get(prmPath, { schema: prmSchema, config, logLevel: 'warn' }, async () => canonical)
  // Sub-paths (GitHub's /mcp/x/{toolset}) are resources of their own to a client; RFC 9728 §3.3
  // wants `resource` to be exactly the URL the client asked about.
  // The raw path is used, not the decoded parameter: the resource must be the URL as the client spelled it.
  app.get(`${prmPath}/*`, { schema: { ...prmSchema, params: ResourcePathParams }, config, logLevel: 'warn' }, async (req) => {
    const rest = (req.url.split('?', 1)[0] ?? '').slice(prmPath.length).replace(/\/+$/, '')
    return rest === '' ? canonical : resourceMetadata(`${urls.resource}${rest}`)
  })

  const asSchema = { response: { 200: AuthorizationServerMetadata } }
  // An issuer with a path (behind a proxy at /gw) is looked up with the path inserted after the
  // well-known segment (RFC 8414 §3.1); the root documents stay for clients that ignore that.
  const issuerPath = new URL(urls.issuer).pathname.replace(/\/$/, '')
  const asPaths = ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']
  for (const path of issuerPath === '' ? asPaths : [...asPaths, ...asPaths.map((p) => p + issuerPath)]) {
    app.get(path, { schema: asSchema, config, logLevel: 'warn' }, async () => asMetadata)
  }
}

export default discovery
