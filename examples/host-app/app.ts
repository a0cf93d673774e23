/**
 * A host app that embeds mcp-oauth-gateway next to routes of its own. Copy this file into your app and
 * change the import below to `from 'mcp-oauth-gateway'`; here it points at the repository's entry
 * point, so that the example runs, and is tested, against the sources it documents.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import gateway, { type GatewayPluginOptions } from '../../index.js'

export interface HostAppOptions {
  /** The gateway's options; `publicUrl` is this app's public origin (the prefix is added below). */
  gateway: Omit<GatewayPluginOptions, 'prefix'>
  /** Fastify's server options (logger, trustProxy…): the gateway logs through this app's logger. */
  server?: FastifyServerOptions
}

interface Note { id: number, text: string }

/** The app, ready to `listen()` (or to `inject()` in tests). */
export async function build ({ gateway: gatewayOptions, server }: HostAppOptions): Promise<FastifyInstance> {
  const app = Fastify(server)

  // The host's own API: JSON in and out, Fastify's default parsers, errors and 404s. The gateway changes
  // none of that: everything it adds lives in its own scope.
  const notes: Note[] = []
  app.get('/', async () => ({ app: 'host-app', mcp: `${gatewayOptions.publicUrl.replace(/\/+$/, '')}/gw/mcp` }))
  app.get('/api/notes', async () => notes)
  app.post<{ Body: { text: string } }>('/api/notes', {
    schema: {
      body: {
        type: 'object',
        required: ['text'],
        properties: { text: { type: 'string', minLength: 1, maxLength: 1000 } },
        additionalProperties: false
      }
    }
  }, async (req, reply) => {
    const note = { id: notes.length + 1, text: req.body.text }
    notes.push(note)
    return await reply.code(201).send(note)
  })

  // The gateway under /gw: issuer <publicUrl>/gw, MCP endpoint <publicUrl>/gw/mcp, the upstream
  // callback <publicUrl>/gw/upstream/callback (register that one with GitHub). It also answers the
  // discovery documents at this app's root, where clients look for a /gw issuer
  // (/.well-known/oauth-authorization-server/gw, /.well-known/oauth-protected-resource/gw/mcp…).
  await app.register(gateway, { ...gatewayOptions, prefix: '/gw' })
  return app
}
