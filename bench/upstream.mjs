// The fake upstream MCP server: plain node:http on 127.0.0.1, one process of its own.
//   POST /mcp            → a ~300 B JSON-RPC result; `?size=100k` → a 100 KB JSON body; session id 'bench-session',
//                          or with UPSTREAM_SESSIONS=per-client a new one for each initialize
//   GET  /mcp?tag=<name> → an SSE stream that stays idle until the driver asks for events (`emit`)
// Every request must carry `Authorization: Bearer <UPSTREAM_TOKEN>`, or it gets a 401.
import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { ready, serve } from './ipc.mjs'

const expected = `Bearer ${process.env.UPSTREAM_TOKEN}`
if (process.env.UPSTREAM_TOKEN === undefined || process.env.UPSTREAM_TOKEN === '') throw new Error('UPSTREAM_TOKEN is required')

function jsonRpc (text) {
  return Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text }], isError: false } }))
}
// ~300 B, the size of a small tools/call answer.
const SMALL = jsonRpc('x'.repeat(300 - jsonRpc('').length))
const LARGE = jsonRpc('y'.repeat(100 * 1024 - jsonRpc('').length))

// The bench shares one session among its clients; the abuse and soak scripts (UPSTREAM_SESSIONS=per-client) sign in
// many users, and the gateway binds a session id to the one grant it was first issued to.
const perClient = process.env.UPSTREAM_SESSIONS === 'per-client'
let sessions = 0
const sessionFor = (req) => perClient ? (req.headers['mcp-session-id'] ?? `session-${++sessions}`) : 'bench-session'

const streams = new Map() // tag → Set<ServerResponse>
const stats = { posts: 0, gets: 0, unauthorized: 0, notFound: 0 }

const server = createServer((req, res) => {
  const q = req.url.indexOf('?')
  const path = q === -1 ? req.url : req.url.slice(0, q)
  const query = new URLSearchParams(q === -1 ? '' : req.url.slice(q + 1))
  if (path !== '/mcp') {
    stats.notFound++
    res.writeHead(404).end()
    return
  }
  if (req.headers.authorization !== expected) {
    stats.unauthorized++
    req.resume()
    res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"', 'content-type': 'text/plain' }).end('unauthorized')
    return
  }
  if (req.method === 'POST') {
    stats.posts++
    // Read the whole body, as an MCP server would before answering.
    req.on('data', () => {})
    req.on('end', () => {
      const body = query.get('size') === '100k' ? LARGE : SMALL
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length, 'mcp-session-id': sessionFor(req) })
      res.end(body)
    })
    return
  }
  if (req.method === 'GET') {
    stats.gets++
    const tag = query.get('tag') ?? 'default'
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    // What the MCP SDK does: announce the stream with headers only, no event.
    res.flushHeaders()
    let set = streams.get(tag)
    if (set === undefined) streams.set(tag, set = new Set())
    set.add(res)
    res.on('close', () => set.delete(res))
    return
  }
  res.writeHead(405).end()
})
// Outlive the proxies' keep-alive so a pooled socket is never closed under a request (pitfall 5).
server.keepAliveTimeout = 120_000
server.headersTimeout = 130_000
server.requestTimeout = 0
server.maxConnections = 10_000
server.listen(0, '127.0.0.1', 4096, () => {
  ready({ port: server.address().port, smallBytes: SMALL.length, largeBytes: LARGE.length })
})

serve({
  stats: () => ({ ...stats, open: Object.fromEntries([...streams].map(([tag, set]) => [tag, set.size])) }),
  /**
   * Writes `n` events `intervalMs` apart on every stream tagged `tag`; each carries its send time (CLOCK_MONOTONIC
   * ns).
   */
  emit: async ({ tag, n, intervalMs }) => {
    const set = streams.get(tag) ?? new Set()
    if (set.size === 0) throw new Error(`no open stream tagged ${tag}`)
    const count = Math.min(Math.max(1, n | 0), 100_000)
    for (let i = 0; i < count; i++) {
      await sleep(intervalMs)
      const line = `data: {"i":${i},"t":"${process.hrtime.bigint()}"}\n\n`
      for (const res of set) res.write(line)
    }
    return { sent: count, streams: set.size }
  },
  closeStreams: ({ tag }) => {
    const set = streams.get(tag) ?? new Set()
    for (const res of set) res.end()
    return set.size
  }
})
