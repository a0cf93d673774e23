import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { fetchClientDocument } from '../lib/client-document-fetch.js'
import { ClientDocuments } from '../lib/client-documents.js'
import {
  noAccounts,
  singleAccount,
  usersFileAccounts,
  UsersFileError,
  type Accounts,
  type UsersFileLog
} from '../lib/accounts.js'
import { ClientRegistry } from '../lib/clients.js'
import type { Clock } from '../lib/clock.js'
import { ConfigError, type ResolvedGatewayOptions } from '../lib/config.js'
import { ConsentStore } from '../lib/consents.js'
import { deriveKey } from '../lib/crypto.js'
import { GatewayEvents } from '../lib/events.js'
import { FlowStore } from '../lib/flows.js'
import { GrantService } from '../lib/grants.js'
import { githubTokenRevoker } from '../lib/upstream-identity.js'
import { LoginLimits } from '../lib/login-limits.js'
import { configuredSso, type SsoLogin } from '../lib/login-sso.js'
import { ScopeNeedStore } from '../lib/scope-needs.js'
import { SessionStore } from '../lib/sessions.js'
import { checkedStore } from '../lib/stores/records.js'
import type { Store } from '../lib/stores/types.js'
import { UpstreamAuthorizationServer } from '../lib/upstream-as/authorization-server.js'
import { withoutTrailingSlashes } from '../lib/url.js'

/**
 * Who serves the RFC 8414 / RFC 9728 documents at the host's root for a gateway mounted under a prefix:
 * the gateway itself (`'gateway'`, the default), or the host (`'host'`), which then routes those locations
 * itself. The gateway serves the same documents under its prefix either way.
 */
export type WellKnownMode = 'gateway' | 'host'

/** Every URL the gateway publishes, derived once from `publicUrl` and the mount path so they can never disagree. */
export interface GatewayUrls {
  /** RFC 8414 issuer: publicUrl then the mount path, byte-identical everywhere it appears. */
  issuer: string
  /** RFC 9728 / RFC 8707 resource: the gateway's MCP endpoint. */
  resource: string
  /** The PRM URL 401 challenges name (RFC 9728 §5.1): always a location the gateway itself answers. */
  protectedResourceMetadata: string
  authorize: string
  token: string
  register: string
  revoke: string
  login: string
  /** Single sign-on: where the login page's button posts, and where the provider sends the browser back. */
  loginSso: string
  loginSsoCallback: string
  consent: string
  upstreamCallback: string
  /** The signed-in person's page: the clients they connected, each with a revoke button (routes/account). */
  account: string
  /** Where the sign-on provider returns to the account page (a second redirect URI to register there). */
  accountSsoCallback: string
  /**
   * The Fastify prefix of the gateway's routes in this process, without a trailing slash: `''` standalone,
   * `'/gw'` after `register(gateway, { prefix: '/gw' })`. A path in publicUrl is not part of it: that one
   * belongs to a proxy in front, which strips it.
   */
  mountPath: string
  /**
   * The issuer's path as clients see it (publicUrl's path, then the mount path): what RFC 8414 §3.1 and
   * RFC 9728 §3.1 insert after the well-known segment at the host's root. `''` for an issuer without a path.
   */
  issuerPath: string
}

/**
 * The gateway's shared state. Every kind of state the gateway keeps in its store is made here, with its own
 * bound and lifetime, so one file shows what an attacker could try to grow; what only lives in one process
 * (the proxy's connection pool and stream counts) stays with the route that owns it.
 */
export interface GatewayContext {
  options: ResolvedGatewayOptions
  urls: GatewayUrls
  store: Store
  clock: Clock
  clients: ClientRegistry
  grants: GrantService
  upstream: UpstreamAuthorizationServer
  /** Sign-ins in progress, between /authorize and the upstream callback. */
  flows: FlowStore
  /** Which user approved which client for which scopes, so the consent page is shown once. */
  consents: ConsentStore
  /** Who may pass screen 1 by password: the one configured account, the users file's, or nobody (SSO only). */
  accounts: Accounts
  /** Screen 1 by single sign-on (OpenID Connect); undefined when not configured. */
  sso: SsoLogin | undefined
  /** Failed sign-ins per address and per user name, for the login page's back-off. */
  loginLimits: LoginLimits
  /** Which grant opened which upstream MCP session, so no other token can use it. */
  sessions: SessionStore
  /** Upstream scopes users turned out to need (step-up), asked for at their next authorization. */
  scopeNeeds: ScopeNeedStore
  /** OAuth events (one log line each) and proxy telemetry, for the metrics plugin to count. */
  events: GatewayEvents
}

export interface ContextOptions {
  options: ResolvedGatewayOptions
  /** From app.ts, which knows the mount path; without it, the URLs of a gateway at the root of its app. */
  urls?: GatewayUrls
  store: Store
  clock: Clock
  /** PEM certificates trusted besides the system's when fetching client metadata documents. */
  clientDocumentCa?: string | undefined
}

/**
 * The URLs of a gateway that clients reach at `publicUrl` and that is mounted at `mountPath` in its Fastify
 * app. With `wellKnown: 'host'` and a mount path nothing at the host's root is the gateway's, so challenges
 * name the PRM under the gateway's own prefix rather than the RFC 9728 §3.1 location.
 */
export function gatewayUrls (publicUrl: string, mountPath = '', wellKnown: WellKnownMode = 'gateway'): GatewayUrls {
  const base = withoutTrailingSlashes(publicUrl) + mountPath
  const { origin, pathname } = new URL(base)
  const issuerPath = pathname === '/' ? '' : pathname
  return {
    issuer: base,
    resource: `${base}/mcp`,
    // RFC 9728 §3.1: the well-known segment goes between the host and the resource's path.
    protectedResourceMetadata: mountPath !== '' && wellKnown === 'host'
      ? `${base}/.well-known/oauth-protected-resource/mcp`
      : `${origin}/.well-known/oauth-protected-resource${issuerPath}/mcp`,
    authorize: `${base}/authorize`,
    token: `${base}/token`,
    register: `${base}/register`,
    revoke: `${base}/revoke`,
    login: `${base}/login`,
    loginSso: `${base}/login/sso`,
    loginSsoCallback: `${base}/login/sso/callback`,
    consent: `${base}/consent`,
    upstreamCallback: `${base}/upstream/callback`,
    account: `${base}/account`,
    accountSsoCallback: `${base}/account/sso/callback`,
    mountPath,
    issuerPath
  }
}

/**
 * The gateway's shared state, on one namespaced decorator of the gateway's own scope: a host app never sees
 * it. Routes read it with `getDecorator<GatewayContext>('mcpGateway')`; there is deliberately no
 * `declare module 'fastify'` augmentation, which would type `mcpGateway` onto the host's instances as well.
 */
const context: FastifyPluginAsync<ContextOptions> = async (
  app,
  { options, urls = gatewayUrls(options.publicUrl), store: given, clock, clientDocumentCa }
) => {
  // Every reader of the store, the host's own store included, sees malformed records as missing
  // (lib/stores/records.ts).
  const store = checkedStore(given, app.log)
  const upstream = new UpstreamAuthorizationServer({
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
  }, { store, clock, sealKeys: options.secrets.map((secret) => deriveKey(secret, 'upstream-client-seal')) })
  const events = new GatewayEvents({ log: app.log })
  const grants = new GrantService({
    store,
    clock,
    upstream,
    sealKeys: options.secrets.map((secret) => deriveKey(secret, 'upstream-token-seal')),
    codeTtlMs: options.codeTtl * 1000,
    accessTtlMs: options.accessTokenTtl * 1000,
    refreshTtlMs: options.refreshTokenTtl * 1000,
    refreshGraceMs: options.refreshGrace * 1000,
    tokenCacheTtlMs: options.tokenCacheTtl,
    upstreamTimeoutMs: options.upstreamTimeout,
    events,
    // A person's upstream tokens are revoked at GitHub when the last client holding them revokes its token.
    revokeUpstream: githubTokenRevoker(options.upstreamUserEndpoint, upstream, options.upstreamTimeout),
    maxGrantsPerUser: options.maxGrantsPerUser
  })
  // Revocations on other replicas empty this one's token cache at once (Redis pub/sub), not after tokenCacheTtl.
  const stopFollowing = await grants.followRevocations()
  app.addHook('onClose', async () => { await stopFollowing() })
  const documents = options.clientRegistration.includes('cimd')
    ? new ClientDocuments({
      store,
      clock,
      fetch: async (url) =>
        await fetchClientDocument(url, { allowPrivate: options.cimdAllowPrivate, ca: clientDocumentCa }),
      allowedHosts: options.cimdAllowedHosts,
      redirectUriAllow: options.redirectUriAllow,
      maxCached: options.maxClientDocuments,
      maxFetches: options.maxClientDocumentFetches
    })
    : undefined
  const clients = new ClientRegistry({
    store,
    clock,
    idleTtlMs: options.clientTtl * 1000,
    unusedTtlMs: options.unusedClientTtl * 1000,
    maxUnused: options.maxUnusedClients,
    documents
  })
  const flows = new FlowStore({ store, clock, ttlMs: options.flowTtl * 1000, maxPending: options.maxPendingSignIns })
  const consents = new ConsentStore({ store, ttlMs: options.clientTtl * 1000 })
  const accounts = openAccounts(options, app.log)
  const sso = configuredSso(options, urls.loginSsoCallback)
  app.addHook('onClose', async () => { accounts.close() })
  const loginLimits = new LoginLimits({
    store,
    clock,
    failuresPerAddress: options.loginFailuresPerAddress,
    failuresPerUser: options.loginFailuresPerUser,
    knows: (username) => accounts.knows(username)
  })
  const sessions = new SessionStore({
    store,
    clock,
    ttlMs: options.refreshTokenTtl * 1000,
    cacheTtlMs: options.tokenCacheTtl
  })
  const scopeNeeds = new ScopeNeedStore({ store, ttlMs: options.refreshTokenTtl * 1000 })
  const shared: GatewayContext = {
    options,
    urls,
    store,
    clock,
    clients,
    grants,
    upstream,
    flows,
    consents,
    accounts,
    sso,
    loginLimits,
    sessions,
    scopeNeeds,
    events
  }
  app.decorate('mcpGateway', Object.freeze(shared))
}

/** The accounts screen 1 checks; a users file that cannot be used stops the start, naming the file and line. */
function openAccounts (options: ResolvedGatewayOptions, log: UsersFileLog): Accounts {
  if (options.usersFile === undefined) {
    // With single sign-on and no users file, nobody signs in by password.
    return options.loginOidcIssuer === undefined ? singleAccount(options.username, options.password) : noAccounts()
  }
  try {
    return usersFileAccounts(options.usersFile, log)
  } catch (err) {
    if (err instanceof UsersFileError) throw new ConfigError([`usersFile: ${err.message}`])
    throw err
  }
}

export default fp(context, { name: 'mcp-gateway-context', fastify: '5.x' })
