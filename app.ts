import rateLimit from '@fastify/rate-limit'
import type { FastifyPluginAsync } from 'fastify'
import type { Clock } from './lib/clock.js'
import { systemClock } from './lib/clock.js'
import { parseGatewayOptions, type GatewayOptions } from './lib/config.js'
import { openStore } from './lib/stores/index.js'
import { RedisStore } from './lib/stores/redis.js'
import type { Store } from './lib/stores/types.js'
import context from './plugins/context.js'
import cors from './plugins/cors.js'
import authorize from './routes/authorize/index.js'
import discovery from './routes/discovery/index.js'
import health from './routes/health/index.js'
import mcp from './routes/mcp/index.js'
import register from './routes/register/index.js'
import token from './routes/token/index.js'

export interface GatewayPluginOptions extends Omit<GatewayOptions, 'store'> {
  /**
   * Where state lives: 'memory' (the default: lost on restart, bounded in size), a Redis URL, or a
   * Store of the host's own.
   */
  store?: string | Store
  /** Time source, for tests. */
  clock?: Clock
}

/**
 * mcp-oauth-gateway as one encapsulated Fastify plugin (deliberately not fastify-plugin wrapped: a
 * host app sees none of its decorators, hooks, parsers or error handlers). Read top to bottom, the
 * registrations below are the gateway.
 */
const gateway: FastifyPluginAsync<GatewayPluginOptions> = async (app, opts) => {
  const { store: givenStore, clock = systemClock, ...rest } = opts
  const hostStore = typeof givenStore === 'object' ? givenStore : undefined
  const { options, warnings } = parseGatewayOptions(hostStore === undefined ? opts : rest)
  for (const warning of warnings) app.log.warn(warning)
  const store = hostStore ?? await openStore(options.store, { keyPrefix: options.storePrefix, clock })
  // A store the gateway opened is the gateway's to close; one handed in belongs to the host.
  if (hostStore === undefined) app.addHook('onClose', async () => { await store.close() })

  // Shared state: options, URLs, store, clients, grants, the upstream client.
  await app.register(context, { options, store, clock })
  // Per-route limits (login, token, registration), counted per client address, across replicas
  // when the store is Redis.
  await app.register(rateLimit, {
    global: false,
    // With Redis down the limiter steps aside: every limited route needs the store anyway and answers
    // 503 from there (a limiter error would be a 500).
    ...(store instanceof RedisStore ? { redis: store.client, nameSpace: 'rate-limit:', skipOnError: true } : {})
  })
  // CORS only where a route asks for it: never on /authorize or the HTML pages.
  await app.register(cors)

  // /healthz and /readyz (the store answers).
  await app.register(health)
  // RFC 9728 + RFC 8414 discovery.
  await app.register(discovery)
  // RFC 7591 dynamic client registration.
  await app.register(register)
  // The two-screen chain: /authorize → /login → /consent → upstream → /upstream/callback.
  await app.register(authorize)
  // /token (authorization_code, refresh_token) and /revoke.
  await app.register(token)
  // The resource server: /mcp and below, proxied upstream with the upstream's token.
  await app.register(mcp)
}

export default gateway
