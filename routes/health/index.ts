import type { FastifyPluginAsync } from 'fastify'
import type { GatewayContext } from '../../plugins/context.js'

/**
 * Liveness and readiness for orchestrators: unauthenticated, cheap, and quiet in the logs.
 * /readyz is not ready while the store does not answer (Redis down): a load balancer then sends
 * traffic to replicas that can serve it, and this one comes back by itself.
 */
const health: FastifyPluginAsync = async (app) => {
  const { store } = app.getDecorator<GatewayContext>('mcpGateway')
  app.get('/healthz', { logLevel: 'warn' }, async () => ({ status: 'ok' }))
  app.get('/readyz', { logLevel: 'warn' }, async (_req, reply) => {
    const storeOk = await store.ping()
    return await reply.code(storeOk ? 200 : 503).send({ status: storeOk ? 'ready' : 'not ready', store: storeOk ? 'ok' : 'unavailable' })
  })
}

export default health
