import t from 'tap'
import { mcpStack } from '../helpers/mcp-stack.js'

/*
 * Methods MCP's transport does not use, on /mcp and below (issue 15, finding 5): 405 with Allow, never
 * proxied. Fastify's automatic HEAD twin of GET used to proxy HEAD as a GET stream, past disableGetStream.
 */

const LIST = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'

function mcpHeaders (token: string): Record<string, string> {
  return { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' }
}

t.test('issue 15 finding 5: HEAD, PUT, PATCH, TRACE and QUERY on /mcp and below → 405 with Allow, never proxied', async (t) => {
  const { app, mcp, token } = await mcpStack(t, {}, { mode: 'stateless' })
  const access = await token()
  for (const url of ['/mcp', '/mcp/x/repos']) {
    for (const method of ['HEAD', 'PUT', 'PATCH', 'TRACE', 'QUERY'] as const) {
      const res = await app.inject({ method, url, headers: mcpHeaders(access) })
      t.equal(res.statusCode, 405, `${method} ${url}`)
      t.equal(res.headers.allow, 'GET, POST, DELETE', `${method} ${url}: Allow`)
    }
  }
  const noToken = await app.inject({ method: 'HEAD', url: '/mcp' })
  t.equal(noToken.statusCode, 401, 'authenticated first, like every other method')
  t.same(mcp.requests.map((r) => r.method), [], 'nothing reached the upstream')
})

t.test('issue 15 finding 5: with disableGetStream, HEAD is refused like GET, and Allow says POST, DELETE', async (t) => {
  const { app, mcp, token } = await mcpStack(t, { disableGetStream: true }, { mode: 'stateless' })
  const access = await token()
  for (const method of ['HEAD', 'GET', 'PUT'] as const) {
    const res = await app.inject({ method, url: '/mcp', headers: { ...mcpHeaders(access), accept: 'text/event-stream' } })
    t.equal(res.statusCode, 405, method)
    t.equal(res.headers.allow, 'POST, DELETE', `${method}: Allow`)
    if (method !== 'HEAD') t.match(res.json(), { error: 'method_not_allowed' })
  }
  t.equal(mcp.requests.length, 0, 'no GET stream opened upstream, not even by HEAD')
  const post = await app.inject({ method: 'POST', url: '/mcp', headers: mcpHeaders(access), payload: LIST })
  t.equal(post.statusCode, 200, 'POST is still proxied')
})
