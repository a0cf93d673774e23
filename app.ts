import rateLimit from '@fastify/rate-limit'
import type { FastifyPluginAsync, RegisterOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { Clock } from './lib/clock.js'
import { systemClock } from './lib/clock.js'
import { ConfigError, parseGatewayOptions, type GatewayOptions, type ResolvedGatewayOptions } from './lib/config.js'
import { openStore, redisClientOf } from './lib/stores/index.js'
import type { Store } from './lib/stores/types.js'
import { withoutTrailingSlashes } from './lib/url.js'
import context, { gatewayUrls, type GatewayUrls, type WellKnownMode } from './plugins/context.js'
import metrics, { type GatewayMetrics } from './plugins/metrics.js'
import account from './routes/account/index.js'
import authorize from './routes/authorize/index.js'
import discovery, { wellKnownAtRoot } from './routes/discovery/index.js'
import health from './routes/health/index.js'
import mcp from './routes/mcp/index.js'
import register from './routes/register/index.js'
import token from './routes/token/index.js'

export type { WellKnownMode } from './plugins/context.js'

/**
 * The gateway's options: the same TypeBox-validated set as the command line's flags (camelCase), plus
 * what only an embedding app can give (a Store object, a clock) and Fastify's own register options.
 */
export interface GatewayPluginOptions extends Omit<GatewayOptions, 'store'>, RegisterOptions {
  /**
   * Where the gateway sits in the host app, e.g. `'/gw'`. Its routes go under it, and the prefix is part
   * of the issuer and of every URL it publishes: publicUrl `https://host.example` with prefix `/gw` is the
   * issuer `https://host.example/gw` and the resource `https://host.example/gw/mcp`. Leave it out when a
   * proxy in front strips a path instead; that path then goes in publicUrl.
   */
  prefix?: string
  /**
   * With a prefix, who serves the discovery documents at the host's root, where RFC 8414 §3.1 and
   * RFC 9728 §3.1 put them for a path issuer (`/.well-known/oauth-authorization-server/gw`,
   * `/.well-known/openid-configuration/gw`, `/.well-known/oauth-protected-resource/gw/mcp`):
   * `'gateway'` (the default) adds exactly those routes to the host's root; `'host'` adds nothing outside
   * the prefix, and the host routes those locations itself (to the same documents, which the gateway
   * serves under its prefix: `/gw/.well-known/oauth-authorization-server`, `/gw/.well-known/openid-configuration`,
   * `/gw/.well-known/oauth-protected-resource/mcp`). The gateway's 401 challenges then name the latter.
   */
  wellKnown?: WellKnownMode
  /**
   * Where state lives: 'memory' (the default: lost on restart, bounded in size), a Redis URL, or a
   * Store of the host's own.
   */
  store?: string | Store
  /** Time source, for tests. */
  clock?: Clock
  /**
   * PEM certificates to trust, besides Node's bundled roots, when fetching client metadata documents (CIMD): an
   * intranet's own CA, with `cimdAllowPrivate`. Given, it replaces `NODE_EXTRA_CA_CERTS` for these fetches (which
   * is the way to add a CA to a gateway started from the command line).
   */
  clientDocumentCa?: string
}

interface GatewayCoreOptions {
  options: ResolvedGatewayOptions
  urls: GatewayUrls
  /** A Store of the host's own; undefined: the gateway opens `options.store` and closes it. */
  hostStore: Store | undefined
  clock: Clock
  clientDocumentCa?: string | undefined
  /** The standalone server's way to the metrics, to serve them on a listener of its own. */
  onMetrics?: ((metrics: GatewayMetrics) => void) | undefined
}

/**
 * The gateway itself, in one encapsulated scope under the host's prefix: a host app sees none of its
 * decorators, hooks, parsers or error handlers. Read top to bottom, the registrations below are the gateway.
 */
const gatewayCore: FastifyPluginAsync<GatewayCoreOptions> = async (
  app,
  { options, urls, hostStore, clock, clientDocumentCa, onMetrics }
) => {
  const store = hostStore ?? await openStore(options.store, { keyPrefix: options.storePrefix, clock })
  // A store the gateway opened is the gateway's to close; one handed in belongs to the host.
  if (hostStore === undefined) app.addHook('onClose', async () => { await store.close() })

  // Shared state: options, URLs, store, clients, grants, the upstream client.
  await app.register(context, { options, urls, store, clock, clientDocumentCa })
  // Prometheus metrics in a registry of the gateway's own; before the routes, so its hook sees them all.
  await app.register(metrics, { path: options.metricsPath, onMetrics })
  // Per-route limits on every route that answers without a token, counted per client address: across
  // replicas when the store is Redis; in memory each route remembers its 5,000 latest addresses.
  const redis = redisClientOf(store)
  await app.register(rateLimit, {
    global: false,
    // With Redis down the limiter steps aside: every limited route needs the store anyway and answers
    // 503 from there (a limiter error would be a 500).
    ...(redis !== undefined ? { redis, nameSpace: 'rate-limit:', skipOnError: true } : {})
  })

  // /healthz and /readyz (the store answers).
  await app.register(health)
  // RFC 9728 + RFC 8414 discovery.
  await app.register(discovery)
  // RFC 7591 dynamic client registration, unless the operator allows only metadata documents (CIMD).
  if (options.clientRegistration.includes('dcr')) await app.register(register)
  // The two-screen chain: /authorize → /login → /consent → upstream → /upstream/callback.
  await app.register(authorize)
  // /account: the signed-in person's connected clients, each revocable, behind screen 1's password check.
  await app.register(account)
  // /token (authorization_code, refresh_token) and /revoke.
  await app.register(token)
  // The resource server: /mcp and below, proxied upstream with the upstream's token.
  await app.register(mcp)
}

// Path segments of RFC 3986 unreserved characters: a prefix is part of the issuer, so nothing that
// would need escaping, no Fastify parameters (`:id`) and no wildcards.
const PREFIX = /^(?:\/[A-Za-z0-9._~-]+)*$/

/**
 * `'gw'`, `'/gw'` and `'/gw/'` are all `'/gw'`; `'/'` is no prefix. Undefined for a prefix that cannot be an
 * issuer path.
 */
function normalizePrefix (prefix: unknown): string | undefined {
  if (prefix === undefined) return ''
  if (typeof prefix !== 'string') return undefined
  const path = withoutTrailingSlashes(prefix.replace(/^\/*/, '/'))
  if (!PREFIX.test(path) || path.split('/').some((segment) => segment === '.' || segment === '..')) return undefined
  return path
}

/**
 * What `register(gateway, opts)` runs: validates the options once (throwing one ConfigError that names
 * every bad option), works out the URLs from publicUrl and the prefix, then registers two encapsulated
 * scopes: the gateway under the prefix and, for a prefixed gateway, its discovery documents at the host's
 * root (see `wellKnown`).
 *
 * It is fastify-plugin wrapped for one reason: a plugin registered with a prefix cannot add routes outside
 * it, and the root documents must be outside it. Wrapped, Fastify hands the `prefix` to this function
 * instead of applying it, and this function applies it to the gateway's scope itself. It adds nothing to
 * the host's own instance: no decorator, hook, parser, error handler or route outside those two scopes.
 */
const gateway: FastifyPluginAsync<GatewayPluginOptions> = async (host, opts) => {
  const { prefix, logLevel, logSerializers, wellKnown = 'gateway', store, clock = systemClock, ...others } = opts
  const { clientDocumentCa, ...rest } = others
  const problems: string[] = []
  const mount = normalizePrefix(prefix)
  if (mount === undefined) {
    problems.push('prefix must be a path such as /gw (segments of letters, digits, ".", "_", "~" or "-")')
  }
  if (wellKnown !== 'gateway' && wellKnown !== 'host') problems.push('wellKnown must be \'gateway\' or \'host\'')
  const hostStore = typeof store === 'object' && store !== null ? store : undefined
  let parsed: ReturnType<typeof parseGatewayOptions> | undefined
  try {
    parsed = parseGatewayOptions(hostStore === undefined && store !== undefined ? { ...rest, store } : rest)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    problems.push(...err.problems)
  }
  // Host-relative: registered inside a host plugin with its own prefix, the gateway sits below that one.
  const mountPath = withoutTrailingSlashes(host.prefix) + (mount ?? '')
  if (wellKnown === 'gateway' && mountPath !== '' && host.prefix !== '') {
    problems.push(
      `wellKnown: the discovery documents of a gateway at ${mountPath} belong at the server's root, which a plugin under the prefix ${host.prefix} cannot reach: register the gateway at the root with prefix '${mountPath}', or set wellKnown: 'host' and serve them from the root yourself`
    )
  }
  if (parsed === undefined || problems.length > 0) throw new ConfigError(problems)

  const { options, warnings } = parsed
  // The host's logger. A register-time logLevel applies to the gateway's routes (Fastify does that) and,
  // through this child, to what the gateway says at boot.
  const bootLog = logLevel === undefined ? host.log : host.log.child({}, { level: logLevel })
  for (const warning of warnings) bootLog.warn(warning)
  const urls = gatewayUrls(options.publicUrl, mountPath, wellKnown)
  await host.register(gatewayCore, {
    prefix: mount, logLevel, logSerializers, options, urls, hostStore, clock, clientDocumentCa
  })
  if (mountPath !== '' && wellKnown === 'gateway') {
    await host.register(wellKnownAtRoot, { logLevel, logSerializers, urls, options })
  }
}

export default fp(gateway, { name: 'mcp-oauth-gateway', fastify: '5.x' })

/**
 * The gateway at the root of a server of its own, for options the CLI has already resolved and reported
 * (`loadConfig`, with flag and variable names in its warnings): the same scope `register(gateway, opts)`
 * builds without a prefix, without validating and warning a second time. `onMetrics` receives the
 * gateway's metrics (and turns counting on) for a metrics listener of the server's own.
 */
export const standaloneGateway: FastifyPluginAsync<{
  options: ResolvedGatewayOptions,
  onMetrics?: (metrics: GatewayMetrics) => void
}> = async (host, { options, onMetrics }) => {
  await host.register(gatewayCore, {
    options,
    urls: gatewayUrls(options.publicUrl, '', 'gateway'),
    hostStore: undefined,
    clock: systemClock,
    onMetrics
  })
}
