import rateLimit from '@fastify/rate-limit'
import type { FastifyPluginAsync } from 'fastify'
import type { Clock } from './lib/clock.js'
import { systemClock } from './lib/clock.js'
import { parseGatewayOptions, type GatewayOptions } from './lib/config.js'
import { MemoryStore } from './lib/stores/memory.js'
import type { Store } from './lib/stores/types.js'
import context from './plugins/context.js'
import cors from './plugins/cors.js'
import authorize from './routes/authorize/index.js'
import discovery from './routes/discovery/index.js'
import mcp from './routes/mcp/index.js'
import register from './routes/register/index.js'
import token from './routes/token/index.js'

export interface GatewayPluginOptions extends GatewayOptions {
  /** Where state lives; the default keeps it in memory (lost on restart, bounded in size). */
  store?: Store
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
  const { options, warnings } = parseGatewayOptions(rest)
  for (const warning of warnings) app.log.warn(warning)
  const store = givenStore ?? new MemoryStore({ clock })
  // A store the gateway made is the gateway's to close; one handed in belongs to the host.
  if (givenStore === undefined) app.addHook('onClose', async () => { await store.close() })

  // Shared state: options, URLs, store, clients, grants, the upstream client.
  await app.register(context, { options, store, clock })
  // Per-route limits (login, token, registration), counted per client address.
  await app.register(rateLimit, { global: false })
  // CORS only where a route asks for it: never on /authorize or the HTML pages.
  await app.register(cors)

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
