import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import type { Static } from 'typebox'
import cors, { PUBLIC_CORS } from '../../plugins/cors.js'
import type { GatewayContext, GatewayUrls } from '../../plugins/context.js'
import type { ResolvedGatewayOptions } from '../../lib/config.js'
import { normaliseResource } from '../../lib/resource.js'
import { withoutTrailingSlashes } from '../../lib/url.js'
import { AuthorizationServerMetadata, ProtectedResourceMetadata, ResourcePathParams } from './schema.js'

const CLIENT_AUTH_METHODS = ['none', 'client_secret_post', 'client_secret_basic']
const PRM = '/.well-known/oauth-protected-resource'
const AS_PATHS = ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']
// Metadata changes only with configuration: let clients and proxies cache it.
const CACHE_CONTROL = 'public, max-age=3600'

interface Documents {
  as: Static<typeof AuthorizationServerMetadata>
  /** The PRM of a resource: `urls.resource` (the canonical one) or a URL below it. */
  prm: (resource: string) => Static<typeof ProtectedResourceMetadata>
}

/** What of the configuration the documents publish. */
export type PublishedOptions = Pick<ResolvedGatewayOptions, 'mcpScope' | 'clientRegistration'>

/** The RFC 8414 and RFC 9728 documents: built once, since nothing in them varies by request. */
function documents (urls: GatewayUrls, { mcpScope, clientRegistration }: PublishedOptions): Documents {
  const prm = (resource: string): Static<typeof ProtectedResourceMetadata> => ({
    resource,
    authorization_servers: [urls.issuer],
    scopes_supported: [mcpScope],
    bearer_methods_supported: ['header'],
    resource_name: 'MCP OAuth Gateway'
  })
  const canonical = prm(urls.resource)
  return {
    as: {
      issuer: urls.issuer,
      authorization_endpoint: urls.authorize,
      token_endpoint: urls.token,
      // RFC 7591 registration and CIMD as the operator allows: a client uses what is advertised (checklist 28, 29).
      ...(clientRegistration.includes('dcr') ? { registration_endpoint: urls.register } : {}),
      ...(clientRegistration.includes('cimd') ? { client_id_metadata_document_supported: true } : {}),
      revocation_endpoint: urls.revoke,
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      grant_types_supported: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
      revocation_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
      code_challenge_methods_supported: ['S256'],
      scopes_supported: [mcpScope],
      authorization_response_iss_parameter_supported: true
    },
    prm: (resource) => resource === urls.resource ? canonical : prm(resource)
  }
}

/**
 * Where RFC 8414 §3.1 and RFC 9728 §3.1 put the documents for this issuer and resource: the well-known
 * segment at the host's root, then the issuer's path. Clients probe exactly these.
 */
function insertedPaths (urls: GatewayUrls): { as: string[], prm: string } {
  return { as: AS_PATHS.map((path) => path + urls.issuerPath), prm: `${PRM}${urls.issuerPath}/mcp` }
}

/**
 * Registers the PRM at `paths.prm` and at `paths.prmTree` and below it, and the AS metadata at `paths.as`
 * (all relative to `app`).
 * Sub-paths (GitHub's /mcp/x/{toolset}) are resources of their own to a client; RFC 9728 §3.3 wants
 * `resource` to be exactly the URL the client asked about.
 */
function serve (
  app: FastifyInstance,
  docs: Documents,
  urls: GatewayUrls,
  paths: { prm: string[], prmTree: string, as: string[] }
): void {
  const route = { logLevel: 'warn' as const }
  const prmSchema = { response: { 200: ProtectedResourceMetadata } }
  const canonical = docs.prm(urls.resource)
  for (const path of [...paths.prm, paths.prmTree]) {
    app.get(path, { ...route, schema: prmSchema }, async () => canonical)
  }
  // Matched against the request as it reached this app: prefix included.
  const inProcess = withoutTrailingSlashes(app.prefix) + paths.prmTree
  // The raw path is used, not the decoded parameter: the resource must be the URL as the client spelled it.
  // Only a resource the gateway binds tokens to (lib/resource.ts) has metadata: a client that found a
  // document for `/mcp/%2e%2e/x` would then be refused at /authorize.
  const treeSchema = { ...prmSchema, params: ResourcePathParams }
  app.get(`${paths.prmTree}/*`, { ...route, schema: treeSchema }, async (req, reply) => {
    const rest = (req.url.split('?', 1)[0] ?? '').slice(inProcess.length)
    const resource = normaliseResource(`${urls.resource}${rest}`)
    if (resource === undefined) return await reply.callNotFound()
    return docs.prm(resource)
  })
  const asSchema = { response: { 200: AuthorizationServerMetadata } }
  for (const path of paths.as) app.get(path, { ...route, schema: asSchema }, async () => docs.as)
}

/**
 * Discovery for every client generation, in the gateway's own scope: RFC 9728 protected-resource
 * metadata (path-suffixed first, as 2025-11-25+ clients probe it, and at the root), RFC 8414 AS metadata
 * and the same document at the OpenID path (MCP 2025-11-25 lets clients try either).
 *
 * Standalone (no mount path) the gateway owns the host's root, so the path-inserted locations of an
 * issuer with a path (a proxy in front that strips /gw) are served here too. Mounted under a prefix, the
 * documents sit under the prefix as they would at the root of a gateway of its own: among them
 * `/gw/.well-known/openid-configuration`, the third location MCP clients try for a path issuer. The
 * root locations are then `wellKnownAtRoot`'s.
 */
const discovery: FastifyPluginAsyncTypebox = async (app) => {
  const { urls, options } = app.getDecorator<GatewayContext>('mcpGateway')
  await app.register(cors, PUBLIC_CORS)
  app.addHook('onRequest', async (_req, reply) => { reply.header('cache-control', CACHE_CONTROL) })
  const inserted = insertedPaths(urls)
  const standalone = urls.mountPath === ''
  serve(app, documents(urls, options), urls, {
    prm: [PRM],
    // Standalone with a publicUrl path, `/.well-known/oauth-protected-resource/mcp` would be the PRM of
    // a resource at the host's /mcp, which is not this gateway: only the path-inserted one is served.
    prmTree: standalone ? inserted.prm : `${PRM}/mcp`,
    as: standalone && urls.issuerPath !== '' ? [...AS_PATHS, ...inserted.as] : AS_PATHS
  })
}

export interface WellKnownAtRootOptions {
  urls: GatewayUrls
  options: PublishedOptions
}

/**
 * The RFC 8414 and RFC 9728 documents of a gateway mounted under a prefix, at the host's root where
 * clients look for them (`/.well-known/oauth-authorization-server/gw`, `/.well-known/openid-configuration/gw`,
 * `/.well-known/oauth-protected-resource/gw/mcp` and below): exactly these paths and nothing else of the
 * host's root, in a scope of their own, with the same public CORS as the gateway's other metadata.
 */
export const wellKnownAtRoot: FastifyPluginAsyncTypebox<WellKnownAtRootOptions> = async (app, { urls, options }) => {
  await app.register(cors, PUBLIC_CORS)
  app.addHook('onRequest', async (_req, reply) => { reply.header('cache-control', CACHE_CONTROL) })
  const inserted = insertedPaths(urls)
  serve(app, documents(urls, options), urls, { prm: [], prmTree: inserted.prm, as: inserted.as })
}

export default discovery
