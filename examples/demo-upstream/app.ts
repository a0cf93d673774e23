import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { Authority } from './authority.js'
import { consentRoutes } from './consent-routes.js'
import { mcpRoutes } from './mcp-server.js'
import { oauthRoutes } from './oauth-routes.js'

/*
 * The demo upstream: an MCP server behind an OAuth 2.1 authorization server of its own, on one origin.
 * The issuer is the origin; /mcp is the protected resource.
 */

export interface DemoUpstream {
  app: FastifyInstance
  /** http://127.0.0.1:<port> */
  origin: string
  /** The MCP server's URL: what the gateway is given. */
  mcpUrl: string
  close: () => Promise<void>
}

/** The app for an origin known in advance (tests use inject()). */
export async function buildDemoUpstream (origin: string, opts: { server?: Server, logger?: FastifyBaseLogger } = {}):
Promise<FastifyInstance> {
  const { server = createServer(), logger } = opts
  const app = Fastify({
    ...(logger === undefined ? {} : { loggerInstance: logger }),
    serverFactory: (handler) => server.on('request', handler)
  })
  const authority = new Authority()
  await app.register(oauthRoutes, { authority, origin })
  await app.register(consentRoutes, { authority, origin })
  await app.register(mcpRoutes, { authority, origin })
  await app.ready()
  return app
}

/**
 * Listens on 127.0.0.1 only (it is a demo: nothing here is meant to be reached from another machine), and
 * first (port 0 picks a free one), so that the origin, which the metadata publishes, is known before the
 * app is built.
 */
export async function startDemoUpstream (
  opts: { port?: number, logger?: FastifyBaseLogger } = {}
): Promise<DemoUpstream> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, '127.0.0.1', () => { server.off('error', reject); resolve() })
  })
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const app = await buildDemoUpstream(origin, { server, ...(opts.logger === undefined ? {} : { logger: opts.logger }) })
  return {
    app,
    origin,
    mcpUrl: `${origin}/mcp`,
    close: async () => {
      // Fastify does not close a server it did not start listening itself.
      server.closeAllConnections()
      await app.close()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
