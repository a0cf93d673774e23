import { setTimeout as sleep } from 'node:timers/promises'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { z } from 'zod'
import { SCOPES, type Authority } from './authority.js'

/*
 * The MCP server: three tools, served over Streamable HTTP by the MCP TypeScript SDK, for bearer tokens of
 * this server's own authorization server only. Without one it answers 401 with an RFC 9728 pointer to its
 * protected resource metadata, which is how a client (here: the gateway) finds where to sign in.
 */

const COUNT_STEP_MS = 200

/** A fresh server per request (stateless mode): no session to keep, nothing to bound. */
function demoTools (): McpServer {
  const server = new McpServer({ name: 'mcp-oauth-gateway demo upstream', version: '1.0.0' })
  server.registerTool('echo', {
    description: 'Returns the text it is given',
    inputSchema: { text: z.string().max(10_000) }
  }, async ({ text }) => ({ content: [{ type: 'text', text }] }))
  server.registerTool('time', {
    description: 'The current time on the demo server, ISO 8601 in UTC'
  }, async () => ({ content: [{ type: 'text', text: new Date().toISOString() }] }))
  server.registerTool('count', {
    description: 'Counts from 1 to `to`, one step every 200 ms, reporting each step as progress',
    inputSchema: { to: z.number().int().min(1).max(50) }
  }, async ({ to }, extra) => {
    const progressToken = extra._meta?.progressToken
    for (let step = 1; step <= to; step++) {
      await sleep(COUNT_STEP_MS, undefined, { signal: extra.signal })
      if (progressToken !== undefined) {
        await extra.sendNotification({
          method: 'notifications/progress',
          params: { progressToken, progress: step, total: to, message: `${step} of ${to}` }
        })
      }
    }
    return { content: [{ type: 'text', text: `Counted to ${to}` }] }
  })
  return server
}

export const mcpRoutes: FastifyPluginAsync<{ authority: Authority, origin: string }> = async (
  app,
  { authority, origin }
) => {
  const resource = `${origin}/mcp`
  const metadataUrl = `${origin}/.well-known/oauth-protected-resource/mcp`
  const challenge = (reply: FastifyReply, error?: string) => reply.code(401)
    .header('www-authenticate',
      `Bearer resource_metadata="${metadataUrl}"${error === undefined ? '' : `, error="${error}"`}`)
    .send({ error: error ?? 'unauthorized' })

  // RFC 9728 §3.1: the metadata of the resource /mcp, at the path-inserted well-known URL.
  app.get('/.well-known/oauth-protected-resource/mcp', async () => ({
    resource,
    authorization_servers: [origin],
    scopes_supported: SCOPES,
    bearer_methods_supported: ['header'],
    resource_name: 'mcp-oauth-gateway demo upstream'
  }))

  app.register(async (mcp) => {
    mcp.addHook('onRequest', async (req, reply) => {
      const header = req.headers.authorization ?? ''
      const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header)
      if (match === null) return await challenge(reply)
      const grant = authority.verify(match[1] as string)
      // Every grant carries the one scope there is (`tools`); a server with more would check them here.
      if (grant === undefined) return await challenge(reply, 'invalid_token')
    })
    mcp.post('/mcp', async (req, reply) => {
      const server = demoTools()
      // Requests must name this server as their Host: a page elsewhere cannot use a DNS name that resolves here.
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableDnsRebindingProtection: true,
        allowedHosts: [new URL(origin).host]
      })
      reply.hijack()
      reply.raw.on('close', () => {
        transport.close().catch(() => {})
        server.close().catch(() => {})
      })
      await server.connect(transport)
      await transport.handleRequest(req.raw, reply.raw, req.body)
    })
    // Stateless: no stream to resume and no session to end.
    mcp.route({
      method: ['GET', 'DELETE'],
      url: '/mcp',
      handler: async (_req, reply) =>
        await reply.code(405).header('allow', 'POST').send({ error: 'method not allowed' })
    })
  })
}
