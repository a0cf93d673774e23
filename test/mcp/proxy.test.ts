import type { LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { PUBLIC_URL } from '../helpers/gateway.js'
import { challengeParams, mcpStack } from '../helpers/mcp-stack.js'

/*
 * The resource server and proxy (routes/mcp) through app.inject, in front of a real MCP server (the
 * SDK's, test/helpers/fake-mcp.ts) that accepts only the fake GitHub's tokens.
 */

const PRM = `${PUBLIC_URL}/.well-known/oauth-protected-resource/mcp`
const UPSTREAM_TOKEN = /^Bearer gh[ou]_[\w-]+$/
const STACK = /\bat\s+\S+\s+\(|\.[jt]s:\d+:\d+|"stack"/

const stack = mcpStack

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'proxy-test', version: '1.0.0' } }
}

function mcpHeaders (token: string, extra: Record<string, string> = {}): Record<string, string> {
  return { host: 'localhost:8002', authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...extra }
}

/** The JSON-RPC messages of a response, JSON or SSE. */
function messages (res: LightMyRequestResponse): Array<Record<string, unknown>> {
  if (String(res.headers['content-type']).startsWith('application/json')) return [res.json()]
  return res.body.split('\n').filter((line) => line.startsWith('data: ')).map((line) => JSON.parse(line.slice(6)) as Record<string, unknown>)
}

t.test('§1.1 items 3, 4, 7, 41: no token → 401 naming the gateway PRM and scope, without an error attribute', async (t) => {
  const { app, mcp } = await stack(t)
  for (const method of ['POST', 'GET', 'DELETE'] as const) {
    const res = await app.inject({ method, url: '/mcp', headers: { host: 'localhost:8002', 'content-type': 'application/json' }, ...(method === 'POST' ? { payload: INITIALIZE } : {}) })
    t.equal(res.statusCode, 401, method)
    t.equal(res.headers['www-authenticate'], `Bearer resource_metadata="${PRM}", scope="mcp"`, `${method}: the exact challenge`)
    t.notMatch(String(res.headers['www-authenticate']), 'error=', 'RFC 6750 §3.1: no error code when no credentials were sent')
    t.notMatch(res.body, STACK)
  }
  const basic = await app.inject({ method: 'POST', url: '/mcp', headers: { authorization: 'Basic dXNlcjpwYXNz', 'content-type': 'application/json' }, payload: INITIALIZE })
  t.equal(basic.statusCode, 401, 'another scheme is no bearer token')
  t.equal(mcp.requests.length, 0, 'nothing reached the upstream')
})

t.test('§1.1 items 8, 10, 41: bad, expired and revoked tokens → 401 error="invalid_token"', async (t) => {
  const { app, mcp, clock, client, token } = await stack(t)
  const check = async (name: string, bearer: string): Promise<void> => {
    const res = await app.inject({ method: 'POST', url: '/mcp', headers: mcpHeaders(bearer), payload: INITIALIZE })
    t.equal(res.statusCode, 401, `${name}: 401`)
    const params = challengeParams(res.headers['www-authenticate'])
    t.match(String(res.headers['www-authenticate']), /^Bearer /)
    t.equal(params.error, 'invalid_token', `${name}: invalid_token`)
    t.equal(params.resource_metadata, PRM, `${name}: the gateway's PRM`)
    t.equal(params.scope, 'mcp')
    t.match(res.json(), { error: 'invalid_token' })
    t.notMatch(res.body, STACK)
  }
  await check('unknown token', 'gwa_not-a-real-token')

  const good = await token()
  const ok = await app.inject({ method: 'POST', url: '/mcp', headers: mcpHeaders(good), payload: INITIALIZE })
  t.equal(ok.statusCode, 200, 'the same request with a live token goes through')
  const upstreamCalls = mcp.requests.length
  t.equal(upstreamCalls, 1)

  clock.advance(3600 * 1000 + 1)
  await check('expired token (past accessTokenTtl)', good)

  const revoked = await token()
  const revoke = await app.inject({
    method: 'POST',
    url: '/revoke',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ token: revoked, client_id: client.client_id }).toString()
  })
  t.equal(revoke.statusCode, 200)
  await check('revoked token (RFC 7009)', revoked)
  t.equal(mcp.requests.length, upstreamCalls, 'no rejected request reached the upstream')
})

t.test('§1.1 item 7, O21 §5.1: a token in the query string is ignored', async (t) => {
  const { app, mcp, token } = await stack(t)
  const good = await token()
  for (const name of ['access_token', 'token']) {
    const res = await app.inject({ method: 'POST', url: `/mcp?${name}=${good}`, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, payload: INITIALIZE })
    t.equal(res.statusCode, 401, `?${name}= is not a credential`)
    t.equal(res.headers['www-authenticate'], `Bearer resource_metadata="${PRM}", scope="mcp"`, 'treated as no credentials at all')
  }
  t.equal(mcp.requests.length, 0)
})

t.test('§1.2 items 19–20, §4.3 item 13: a sub-path challenge names the sub-path PRM, which describes that URL', async (t) => {
  const { app } = await stack(t)
  const res = await app.inject({ method: 'POST', url: '/mcp/x/repos/readonly?foo=1', headers: { 'content-type': 'application/json' }, payload: INITIALIZE })
  t.equal(res.statusCode, 401)
  const prm = `${PUBLIC_URL}/.well-known/oauth-protected-resource/mcp/x/repos/readonly`
  t.equal(res.headers['www-authenticate'], `Bearer resource_metadata="${prm}", scope="mcp"`)
  const doc = await app.inject({ method: 'GET', url: new URL(prm).pathname })
  t.equal(doc.statusCode, 200, 'the PRM the challenge names exists')
  t.equal(doc.json().resource, `${PUBLIC_URL}/mcp/x/repos/readonly`, 'RFC 9728 §3.3: its resource is the URL that was challenged')
})

t.test('§1.1 items 12–13, §4.3 items 13, 17: the upstream gets the upstream token and only the allowed headers', async (t) => {
  const { app, mcp, github, token } = await stack(t, {
    upstreamHeaders: { 'x-mcp-toolsets': 'repos' },
    forwardHeaders: ['x-trace-id']
  }, { mode: 'stateless' })
  const gatewayToken = await token()
  const res = await app.inject({
    method: 'POST',
    url: '/mcp/x/repos/readonly?foo=1',
    headers: mcpHeaders(gatewayToken, {
      'mcp-session-id': 'client-session-1',
      'mcp-protocol-version': '2025-06-18',
      'mcp-method': 'tools/call',
      'mcp-name': 'echo',
      'mcp-param-foo': 'bar',
      'last-event-id': 'event-41',
      'x-mcp-toolsets': 'all',
      'x-trace-id': 'trace-123',
      'x-other': 'should-not-pass',
      cookie: 'gateway_flow=secret-cookie',
      'x-forwarded-for': '203.0.113.9'
    }),
    payload: { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } }
  })
  t.equal(res.statusCode, 200, res.body)
  t.match(messages(res)[0], { id: 2, result: { content: [{ type: 'text', text: 'hi' }] } }, 'the upstream answered through the gateway')

  t.equal(mcp.requests.length, 1)
  const seen = mcp.requests[0]
  const headers = seen?.headers ?? {}
  t.equal(seen?.path, '/mcp/x/repos/readonly', '§4.3 item 13: the sub-path reaches the upstream')
  t.equal(seen?.query, '?foo=1', 'with its query')
  t.match(headers.authorization, UPSTREAM_TOKEN, 'item 13: the stored upstream token')
  t.ok(github.isValidAccessToken(String(headers.authorization).slice(7)), 'one the fake GitHub issued')
  t.notMatch(String(headers.authorization), gatewayToken, 'never the gateway token (no token passthrough)')
  t.notMatch(JSON.stringify(headers), gatewayToken, 'the gateway token appears in no header')
  t.equal(headers['mcp-session-id'], 'client-session-1')
  t.equal(headers['mcp-protocol-version'], '2025-06-18')
  t.equal(headers['mcp-method'], 'tools/call')
  t.equal(headers['mcp-name'], 'echo')
  t.equal(headers['mcp-param-foo'], 'bar')
  t.equal(headers['last-event-id'], 'event-41')
  t.equal(headers['x-mcp-toolsets'], 'repos', 'the pinned value wins over the client\'s')
  t.equal(headers['x-trace-id'], 'trace-123', 'an allow-listed client header passes')
  t.equal(headers['content-type'], 'application/json')
  t.equal(headers.accept, 'application/json, text/event-stream')
  t.equal(headers['x-other'], undefined, 'other client headers do not')
  t.equal(headers.cookie, undefined, 'nor cookies')
  t.equal(headers['x-forwarded-for'], undefined)
  t.equal(headers.host, new URL(mcp.url).host, 'Host is the upstream\'s, not the gateway\'s')

  // Accept without text/event-stream: the upstream answers 406 at once instead of opening a stream inject() would
  // wait on.
  const get = await app.inject({ method: 'GET', url: '/mcp', headers: { ...mcpHeaders(gatewayToken), accept: 'application/json', 'last-event-id': 'event-42', authorization: `bearer ${gatewayToken}` } })
  t.equal(get.statusCode, 406, 'the scheme is case-insensitive (RFC 6750 §2.1); the upstream\'s own status passes through')
  t.equal(mcp.requests[1]?.headers['last-event-id'], 'event-42', 'Last-Event-ID on a GET')
  t.match(mcp.requests[1]?.headers.authorization, UPSTREAM_TOKEN)
})

t.test('request bodies reach the upstream byte for byte (no re-serialisation)', async (t) => {
  const { app, mcp, token } = await stack(t, {}, { mode: 'stateless' })
  const gatewayToken = await token()
  const raw = '{ "params" :{"arguments":{ "text":"h\\u00e9llo – ✓" }, "name":"echo"},\n\t"method":"tools/call",  "id":7 ,"jsonrpc":"2.0"}\r\n'
  const sent = Buffer.from(raw, 'utf8')
  const res = await app.inject({ method: 'POST', url: '/mcp', headers: mcpHeaders(gatewayToken, { 'content-type': 'application/json; charset=utf-8' }), payload: sent })
  t.equal(res.statusCode, 200, res.body)
  t.match(messages(res)[0], { id: 7, result: { content: [{ text: 'héllo – ✓' }] } })
  t.ok(mcp.requests[0]?.body.equals(sent), 'identical bytes: whitespace, key order, escapes and the trailing CRLF')
  t.equal(mcp.requests[0]?.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(mcp.requests[0]?.headers['content-length'], String(sent.length))
})

t.test('response headers: Mcp-Session-Id passes, the upstream\'s WWW-Authenticate and Set-Cookie do not', async (t) => {
  const { app, token } = await stack(t, {}, {
    responseHeaders: { 'set-cookie': 'upstream_session=abc; Path=/', 'www-authenticate': 'Bearer realm="upstream"', 'x-upstream-internal': 'yes' }
  })
  const res = await app.inject({ method: 'POST', url: '/mcp', headers: mcpHeaders(await token()), payload: INITIALIZE })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.headers['mcp-session-id'], /^[\x21-\x7e]+$/, '§1.8 item 48: the upstream\'s session id reaches the client')
  t.equal(res.headers['set-cookie'], undefined, 'no upstream cookie')
  t.equal(res.headers['www-authenticate'], undefined, 'no upstream challenge')
  t.equal(res.headers['x-upstream-internal'], undefined)
  t.match(res.headers['content-type'], /^text\/event-stream/)
  t.equal(res.headers['x-accel-buffering'], 'no', '§1.8 item 50: SSE responses carry X-Accel-Buffering: no')
  t.match(res.headers['cache-control'], /no-cache/)
  t.match(messages(res)[0], { id: 1, result: { serverInfo: { name: 'fake-mcp' } } })
})

t.test('issue 15 finding 8: only Mcp-Session-Id and Mcp-Protocol-Version of the upstream\'s Mcp-* headers reach the client', async (t) => {
  const { app, token } = await mcpStack(t, {}, {
    mode: 'stateless',
    responseHeaders: { 'mcp-debug-authorization': 'Bearer gho_upstream-secret', 'mcp-internal': 'x', 'mcp-protocol-version': '2025-06-18' }
  })
  const res = await app.inject({ method: 'POST', url: '/mcp', headers: mcpHeaders(await token()), payload: { jsonrpc: '2.0', id: 1, method: 'tools/list' } })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.headers['mcp-debug-authorization'], undefined, 'the upstream\'s echo of its token stays at the gateway')
  t.equal(res.headers['mcp-internal'], undefined)
  t.notMatch(JSON.stringify(res.headers), 'gho_upstream-secret')
  t.equal(res.headers['mcp-protocol-version'], '2025-06-18', 'the negotiated version passes')
  t.match(res.headers['content-type'], /^(text\/event-stream|application\/json)/)
})

t.test('§1.8 item 49: Origin is validated (403 for a foreign one), allowed origins get CORS', async (t) => {
  const inspector = 'http://localhost:6274'
  const { app, mcp, token } = await stack(t, { allowedOrigins: [inspector] })
  const gatewayToken = await token()

  for (const origin of ['https://evil.example', 'http://localhost:6275', 'null']) {
    const res = await app.inject({ method: 'POST', url: '/mcp', headers: mcpHeaders(gatewayToken, { origin }), payload: INITIALIZE })
    t.equal(res.statusCode, 403, `Origin: ${origin} → 403`)
    t.match(res.json(), { error: 'forbidden' })
    t.equal(res.headers['access-control-allow-origin'], undefined)
  }
  const noToken = await app.inject({ method: 'POST', url: '/mcp', headers: { origin: 'https://evil.example', 'content-type': 'application/json' }, payload: INITIALIZE })
  t.equal(noToken.statusCode, 403, 'the origin is checked before anything else')
  t.equal(mcp.requests.length, 0, 'nothing from a foreign origin reached the upstream')

  for (const origin of [inspector, PUBLIC_URL]) {
    const res = await app.inject({ method: 'POST', url: '/mcp', headers: mcpHeaders(gatewayToken, { origin }), payload: INITIALIZE })
    t.equal(res.statusCode, 200, `Origin: ${origin} passes`)
    t.equal(res.headers['access-control-allow-origin'], origin)
    const exposed = String(res.headers['access-control-expose-headers']).toLowerCase()
    t.match(exposed, 'mcp-session-id', 'the session id is readable by the page')
    t.match(exposed, 'www-authenticate')
  }

  const challenge = await app.inject({ method: 'POST', url: '/mcp', headers: { origin: inspector, 'content-type': 'application/json' }, payload: INITIALIZE })
  t.equal(challenge.statusCode, 401)
  t.equal(challenge.headers['access-control-allow-origin'], inspector, 'a browser client can read the 401…')
  t.match(String(challenge.headers['access-control-expose-headers']).toLowerCase(), 'www-authenticate', '…and its challenge')

  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/mcp',
    headers: { origin: inspector, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, mcp-session-id, mcp-protocol-version' }
  })
  t.ok(preflight.statusCode >= 200 && preflight.statusCode < 300, `preflight ${preflight.statusCode}`)
  t.equal(preflight.headers['access-control-allow-origin'], inspector)
  const allowed = String(preflight.headers['access-control-allow-headers']).toLowerCase()
  for (const name of ['authorization', 'mcp-session-id', 'mcp-protocol-version']) t.match(allowed, name, `allows ${name}`)
  t.match(String(preflight.headers['access-control-allow-methods']), 'POST')
  t.match(String(preflight.headers['access-control-allow-methods']), 'DELETE')
  t.match(preflight.headers.vary, /Origin/, 'the answer depends on the Origin (and the requested headers)')
  const toolsetPreflight = await app.inject({ method: 'OPTIONS', url: '/mcp', headers: { origin: inspector, 'access-control-request-method': 'POST', 'access-control-request-headers': 'mcp-param-owner, x-bad\u00e9, mcp-name' } })
  t.equal(toolsetPreflight.headers['access-control-allow-headers'], 'mcp-param-owner, mcp-name', 'Mcp-Param-* names the gateway cannot list are allowed as asked; non-token names are not echoed')

  const subPath = await app.inject({ method: 'OPTIONS', url: '/mcp/x/repos', headers: { origin: inspector, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' } })
  t.equal(subPath.headers['access-control-allow-origin'], inspector, 'sub-paths too')

  const evilPreflight = await app.inject({ method: 'OPTIONS', url: '/mcp', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })
  t.equal(evilPreflight.headers['access-control-allow-origin'], undefined, 'no CORS for a foreign origin')
})

t.test('§4.3 item 18: disableGetStream answers GET /mcp with 405 and Allow, POST still proxied', async (t) => {
  const { app, mcp, token } = await stack(t, { disableGetStream: true })
  const gatewayToken = await token()
  const get = await app.inject({ method: 'GET', url: '/mcp', headers: { ...mcpHeaders(gatewayToken), accept: 'text/event-stream' } })
  t.equal(get.statusCode, 405)
  t.match(String(get.headers.allow), 'POST')
  t.notMatch(String(get.headers.allow), 'GET')
  t.match(get.json(), { error: 'method_not_allowed' })
  t.equal(mcp.requests.length, 0, 'answered locally')
  const noToken = await app.inject({ method: 'GET', url: '/mcp', headers: { accept: 'text/event-stream' } })
  t.equal(noToken.statusCode, 401, 'still authenticated first')
  const post = await app.inject({ method: 'POST', url: '/mcp', headers: mcpHeaders(gatewayToken), payload: INITIALIZE })
  t.equal(post.statusCode, 200)
})

t.test('a body over maxBodySize → 413 JSON, never forwarded', async (t) => {
  const { app, mcp, token } = await stack(t, { maxBodySize: 4096 })
  const gatewayToken = await token()
  const payload = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x'.repeat(8192) } } })
  const res = await app.inject({ method: 'POST', url: '/mcp', headers: mcpHeaders(gatewayToken), payload })
  t.equal(res.statusCode, 413)
  t.match(res.headers['content-type'], /^application\/json/)
  t.match(res.json(), { error: 'request_too_large' })
  t.notMatch(res.body, STACK)
  t.equal(mcp.requests.length, 0)
  const small = await app.inject({ method: 'POST', url: '/mcp', headers: mcpHeaders(gatewayToken), payload: INITIALIZE })
  t.equal(small.statusCode, 200, 'a body under the limit passes')
})

t.test('§1.8 items 46–47: a session id is bound to the grant that first used it; another grant gets 404', async (t) => {
  const { app, mcp, token } = await stack(t)
  const alice = await token()
  const other = await token()
  t.not(alice, other, 'two authorizations, two grants')

  const init = await app.inject({ method: 'POST', url: '/mcp', headers: mcpHeaders(alice), payload: INITIALIZE })
  t.equal(init.statusCode, 200)
  const sessionId = String(init.headers['mcp-session-id'])
  const initialized = { jsonrpc: '2.0', method: 'notifications/initialized' }
  const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' }
  const withSession = (bearer: string) => mcpHeaders(bearer, { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' })

  t.equal((await app.inject({ method: 'POST', url: '/mcp', headers: withSession(alice), payload: initialized })).statusCode, 202)
  const before = mcp.requests.length

  for (const method of ['POST', 'GET', 'DELETE'] as const) {
    const res = await app.inject({ method, url: '/mcp', headers: withSession(other), ...(method === 'POST' ? { payload: list } : {}) })
    t.equal(res.statusCode, 404, `${method} with another grant's session id → 404`)
    t.match(res.json(), { jsonrpc: '2.0', error: { code: Number } })
  }
  t.equal(mcp.requests.length, before, 'none of them reached the upstream')

  const mine = await app.inject({ method: 'POST', url: '/mcp', headers: withSession(alice), payload: list })
  t.equal(mine.statusCode, 200, 'the owner still uses it')
  t.match(messages(mine)[0], { result: { tools: Array } })
  t.equal(mcp.sessionCount, 1)
})

t.test('methods MCP does not use get 405 with Allow, not a 404', async (t) => {
  const { app, token } = await stack(t)
  const access = await token()
  for (const method of ['PUT', 'PATCH'] as const) {
    const res = await app.inject({ method, url: '/mcp/x', headers: mcpHeaders(access) })
    t.equal(res.statusCode, 405, method)
    t.equal(res.headers.allow, 'GET, POST, DELETE', method)
  }
})

t.test('an expiring upstream token is refreshed before forwarding; if the upstream refuses, the client must authorize again', async (t) => {
  const { app, clock, github, token } = await stack(t, {}, {}, { mode: 'expiring', expiresIn: 600 })
  const upstreamRefreshes = () => github.requests.filter((r) => r.body.includes('grant_type=refresh_token')).length
  const access = await token()
  clock.advance(590_000)
  const fresh = await app.inject({ method: 'POST', url: '/mcp', headers: mcpHeaders(access), payload: INITIALIZE })
  t.equal(fresh.statusCode, 200, `refreshed upstream before forwarding: ${fresh.body}`)
  t.equal(upstreamRefreshes(), 1)

  const access2 = await token()
  clock.advance(590_000)
  github.tokenFailure = 'http500'
  const down = await app.inject({ method: 'POST', url: '/mcp', headers: mcpHeaders(access2), payload: INITIALIZE })
  t.equal(down.statusCode, 503, 'upstream AS down during the refresh: retry later')
  t.equal(down.headers['retry-after'], '5')
  github.tokenFailure = null
  github.revokeAll()
  const gone = await app.inject({ method: 'POST', url: '/mcp', headers: mcpHeaders(access2), payload: INITIALIZE })
  t.equal(gone.statusCode, 401, 'the upstream refused the refresh: authorize again')
  t.match(gone.headers['www-authenticate'], /error="invalid_token"/)
})
