// The reference proxy: the plainest Fastify 5 + undici 7 Pool proxy doing the gateway's token swap
// (proxy-pitfalls.md, "plainest Fastify 5 + undici 7 Pool proxy"). The client's bearer is looked up
// in a Map, the upstream token put in its place, the body bytes forwarded, the response streamed;
// SSE responses are hijacked and their headers flushed at once.
import Fastify from 'fastify'
import { pipeline } from 'node:stream'
import { Pool } from 'undici'
import { ready, serve } from './ipc.mjs'

const upstreamOrigin = process.env.UPSTREAM_ORIGIN
const tokens = new Map([[process.env.CLIENT_TOKEN, process.env.UPSTREAM_TOKEN]])
const pool = new Pool(upstreamOrigin, { connections: null, bodyTimeout: 0, headersTimeout: 300_000 })

const app = Fastify({ logger: false })
app.removeAllContentTypeParsers()
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => { done(null, body) })

const FORWARDED = ['content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id']

app.route({
  method: ['GET', 'POST', 'DELETE'],
  url: '/mcp',
  handler: async (req, reply) => {
    const auth = req.headers.authorization ?? ''
    const upstreamToken = auth.startsWith('Bearer ') ? tokens.get(auth.slice(7)) : undefined
    if (upstreamToken === undefined) return await reply.code(401).send({ error: 'invalid_token' })
    const headers = { authorization: `Bearer ${upstreamToken}` }
    for (const name of FORWARDED) if (req.headers[name] !== undefined) headers[name] = req.headers[name]

    const upstream = await pool.request({ method: req.method, path: req.url, headers, body: req.method === 'POST' ? req.body : null })
    const out = {}
    for (const name of ['content-type', 'content-length', 'mcp-session-id']) if (upstream.headers[name] !== undefined) out[name] = upstream.headers[name]
    if (String(upstream.headers['content-type']).startsWith('text/event-stream')) {
      reply.hijack()
      reply.raw.writeHead(upstream.statusCode, out)
      reply.raw.flushHeaders()
      pipeline(upstream.body, reply.raw, () => {})
      return reply
    }
    return await reply.code(upstream.statusCode).headers(out).send(upstream.body)
  }
})
app.addHook('onClose', async () => { await pool.destroy() })

await app.listen({ port: 0, host: '127.0.0.1', backlog: 4096 })
ready({ port: app.server.address().port })
serve({})
