import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { ClientRegistry } from '../lib/clients.js'
import type { Clock } from '../lib/clock.js'
import type { ResolvedGatewayOptions } from '../lib/config.js'
import { deriveKey } from '../lib/crypto.js'
import { GrantService } from '../lib/grants.js'
import { ScopeNeedStore } from '../lib/scope-needs.js'
import type { Store } from '../lib/stores/types.js'
import { Upstream } from '../lib/upstream.js'

/** Every URL the gateway publishes, derived once from `publicUrl` so they can never disagree. */
export interface GatewayUrls {
  /** RFC 8414 issuer: the public URL itself, byte-identical everywhere it appears. */
  issuer: string
  /** RFC 9728 / RFC 8707 resource: the gateway's MCP endpoint. */
  resource: string
  protectedResourceMetadata: string
  authorize: string
  token: string
  register: string
  revoke: string
  login: string
  consent: string
  upstreamCallback: string
}

export interface GatewayContext {
  options: ResolvedGatewayOptions
  urls: GatewayUrls
  store: Store
  clock: Clock
  clients: ClientRegistry
  grants: GrantService
  upstream: Upstream
  /** Upstream scopes users turned out to need (step-up), asked for at their next authorization. */
  scopeNeeds: ScopeNeedStore
}

declare module 'fastify' {
  interface FastifyInstance {
    mcpGateway: GatewayContext
  }
}

export interface ContextOptions {
  options: ResolvedGatewayOptions
  store: Store
  clock: Clock
}

export function gatewayUrls (publicUrl: string): GatewayUrls {
  const base = publicUrl.replace(/\/+$/, '')
  const { origin, pathname } = new URL(base)
  const path = pathname === '/' ? '' : pathname
  return {
    issuer: base,
    resource: `${base}/mcp`,
    // RFC 9728 §3.1: the well-known segment goes between the host and the resource's path.
    protectedResourceMetadata: `${origin}/.well-known/oauth-protected-resource${path}/mcp`,
    authorize: `${base}/authorize`,
    token: `${base}/token`,
    register: `${base}/register`,
    revoke: `${base}/revoke`,
    login: `${base}/login`,
    consent: `${base}/consent`,
    upstreamCallback: `${base}/upstream/callback`
  }
}

/** The gateway's shared state, on one namespaced decorator. The gateway root is not fp, so a host app never sees it. */
const context: FastifyPluginAsync<ContextOptions> = async (app, { options, store, clock }) => {
  const urls = gatewayUrls(options.publicUrl)
  const upstream = new Upstream({
    resourceUrl: options.upstreamRs,
    issuerUrl: options.upstreamAs,
    clientId: options.upstreamClientId,
    clientSecret: options.upstreamClientSecret,
    authorizeEndpoint: options.upstreamAuthorizeEndpoint,
    tokenEndpoint: options.upstreamTokenEndpoint,
    scopes: options.upstreamScopes,
    redirectUri: urls.upstreamCallback,
    clientName: 'MCP OAuth Gateway',
    timeoutMs: options.upstreamTimeout
  }, { store, clock })
  const grants = new GrantService({
    store,
    clock,
    upstream,
    sealKeys: options.secrets.map((secret) => deriveKey(secret, 'upstream-token-seal')),
    codeTtlMs: options.codeTtl * 1000,
    accessTtlMs: options.accessTokenTtl * 1000,
    refreshTtlMs: options.refreshTokenTtl * 1000,
    refreshGraceMs: options.refreshGrace * 1000,
    tokenCacheTtlMs: options.tokenCacheTtl
  })
  const clients = new ClientRegistry({ store, clock, idleTtlMs: options.clientTtl * 1000 })
  const scopeNeeds = new ScopeNeedStore({ store, ttlMs: options.refreshTokenTtl * 1000 })
  app.decorate('mcpGateway', Object.freeze({ options, urls, store, clock, clients, grants, upstream, scopeNeeds }))
}

export default fp(context, { name: 'mcp-gateway-context', fastify: '5.x' })
