import cors from '@fastify/cors'
import type { FastifyCorsOptions } from '@fastify/cors'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The CORS policy of this route; routes without one answer no CORS at all. */
    gatewayCors?: FastifyCorsOptions
  }
}

/**
 * Metadata, registration, token and revocation endpoints are called cross-origin by browser clients
 * (MCP Inspector), so they allow any origin. Metadata GETs carry `MCP-Protocol-Version` (the TS SDK
 * sends it). Credentials are never involved, so `*` is safe.
 */
export const PUBLIC_CORS: FastifyCorsOptions = {
  origin: '*',
  methods: ['GET', 'POST'],
  allowedHeaders: ['Authorization', 'Content-Type', 'MCP-Protocol-Version'],
  exposedHeaders: ['WWW-Authenticate'],
  maxAge: 86_400
}

/**
 * CORS is opt-in per route (`config.gatewayCors`). @fastify/cors answers every preflight from one
 * catch-all OPTIONS route, which knows nothing of the route being asked about; so the preflight's
 * target is looked up here, and the authorization endpoint and the HTML pages (which must never
 * be readable cross-origin, OAuth 2.1 §3.1) get no CORS headers, preflight included.
 */
const gatewayCors: FastifyPluginAsync = async (app) => {
  // findRoute() hands back Fastify's shared handler, not the route, so preflights are matched here
  // against the URL patterns of the routes that declared a policy (exact, or a trailing wildcard).
  const policies: Array<{ method: string, url: string, policy: FastifyCorsOptions }> = []
  app.addHook('onRoute', (route) => {
    const policy = route.config?.gatewayCors
    if (policy === undefined) return
    for (const method of [route.method].flat()) policies.push({ method, url: route.url, policy })
  })

  function policyFor (req: FastifyRequest): FastifyCorsOptions | undefined {
    // No Origin, no browser: nothing to add (MCP clients other than Inspector never send one).
    if (req.headers.origin === undefined) return undefined
    const requestedMethod = req.headers['access-control-request-method']
    if (req.method !== 'OPTIONS' || typeof requestedMethod !== 'string') return req.routeOptions.config.gatewayCors
    const path = req.url.split('?', 1)[0] ?? '/'
    const match = policies.find(({ method, url }) => method === requestedMethod &&
      (url === path || (url.endsWith('/*') && path.startsWith(url.slice(0, -1)))))
    return match?.policy
  }

  const none: FastifyCorsOptions = { origin: false }
  await app.register(cors, {
    hideOptionsRoute: true,
    delegator: (req, callback) => callback(null, policyFor(req) ?? none)
  })
}

export default fp(gatewayCors, { name: 'mcp-gateway-cors', fastify: '5.x' })
