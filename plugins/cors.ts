import type { FastifyPluginCallback, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import { compileCors } from '../lib/cors.js'
import type { CorsPolicy } from '../lib/cors.js'

export type { CorsPolicy }

/** Characters of a refused Origin that are logged. */
const MAX_LOGGED_ORIGIN = 200

/**
 * Metadata, registration, token and revocation endpoints are called cross-origin by browser clients
 * (MCP Inspector), so they allow any origin. Metadata GETs carry `MCP-Protocol-Version` (the TS SDK
 * sends it). Credentials are never involved, so `*` is safe.
 */
export const PUBLIC_CORS: CorsPolicy = {
  origins: '*',
  methods: ['GET', 'POST'],
  allowHeaders: ['Authorization', 'Content-Type', 'MCP-Protocol-Version'],
  exposeHeaders: ['WWW-Authenticate'],
  maxAgeSeconds: 86_400
}

/**
 * CORS for the routes of the scope that registers it, and for no others: the authorization endpoint and
 * the HTML pages never register it, so they are never readable cross-origin (OAuth 2.1 §3.1), and a host
 * app's routes never see it.
 *
 * Every route of the scope gets an `OPTIONS` twin at its own URL, and preflights are answered from this
 * scope's first onRequest hook, before the scope's own hooks (the bearer check of /mcp) see them. No
 * catch-all `OPTIONS *` route and no decorator, so a host app with @fastify/cors at its root can register
 * the gateway (that root CORS hook then also answers for the gateway's routes: README, Embedding). Written
 * here rather than using @fastify/cors for that reason and for cost: on /mcp a request without Origin
 * (every non-browser client) costs one property read.
 */
const cors: FastifyPluginCallback<CorsPolicy> = (app, policy, done) => {
  const { actual, preflight } = compileCors(policy)
  const allow = [...policy.methods, 'OPTIONS'].join(', ')

  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, next: HookHandlerDoneFunction) => {
    const origin = req.headers.origin
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      const headers = preflight(origin, req.headers['access-control-request-headers'])
      if (headers !== undefined) {
        // An operator whose browser client cannot connect needs to see which origin asked; the value
        // is the client's, so it is bounded.
        if (headers['access-control-allow-origin'] === undefined) {
          req.log.info(
            { origin: String(origin).slice(0, MAX_LOGGED_ORIGIN) },
            'CORS preflight refused: origin not allowed'
          )
        }
        // Safari waits for a body unless a 204 says content-length: 0.
        return reply.code(204).headers(headers).header('content-length', '0').send()
      }
    }
    const headers = actual(origin)
    if (headers !== undefined) reply.headers(headers)
    next()
  })

  // onRoute hooks may add routes; the OPTIONS twin, being OPTIONS, is not twinned again.
  const twinned = new Set<string>()
  app.addHook('onRoute', function (route) {
    if ([route.method].flat().includes('OPTIONS') || twinned.has(route.url)) return
    twinned.add(route.url)
    this.options(route.url.slice(this.prefix.length), { logLevel: route.logLevel }, async (_req, reply) =>
      await reply.code(204).header('allow', allow).send())
  })
  done()
}

export default fp(cors, { name: 'mcp-gateway-cors', fastify: '5.x' })
