import type { FastifyPluginAsync } from 'fastify'
import type { GatewayContext } from '../../plugins/context.js'

/** How long /readyz waits for the upstream's metadata when it is not known yet. */
const UPSTREAM_CHECK_MS = 1000

/**
 * Liveness and readiness for orchestrators: unauthenticated, cheap, and quiet in the logs.
 * /readyz is not ready while the store does not answer (Redis down) or the upstream's metadata cannot
 * be had (nobody could sign in): a load balancer then sends traffic to replicas that can serve it, and
 * this one comes back by itself. Once the upstream is resolved, that part costs nothing; a failed discovery
 * is remembered for a few seconds (lib/upstream-as/authorization-server.ts), so probes read that answer
 * instead of asking again.
 */
const health: FastifyPluginAsync = async (app) => {
  const { store, upstream } = app.getDecorator<GatewayContext>('mcpGateway')

  async function upstreamKnown (): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), UPSTREAM_CHECK_MS)
    })
    try {
      await Promise.race([upstream.resolve(), late])
      return true
    } catch {
      return false
    } finally {
      clearTimeout(timer)
    }
  }

  app.get('/healthz', { logLevel: 'warn' }, async () => ({ status: 'ok' }))
  app.get('/readyz', { logLevel: 'warn' }, async (_req, reply) => {
    const [storeOk, upstreamOk] = await Promise.all([store.ping(), upstreamKnown()])
    const ready = storeOk && upstreamOk
    return await reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'not ready',
      store: storeOk ? 'ok' : 'unavailable',
      upstream: upstreamOk ? 'ok' : 'unknown'
    })
  })
}

export default health
