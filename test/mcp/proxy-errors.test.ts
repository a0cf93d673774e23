import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { GatewayPluginOptions } from '../../app.js'
import type { FakeGithub, FakeGithubOptions } from '../helpers/fake-github.js'
import { failingStore } from '../helpers/failing-store.js'
import { authorizeFully, Browser, buildGateway, exchangeCode, PUBLIC_URL, registerClient, tokenRequest } from '../helpers/gateway.js'
import { callMcp, challengeParams, echo, mcpStack } from '../helpers/mcp-stack.js'
import type { Teardown } from '../helpers/teardown.js'

/*
 * What the proxy does when the upstream says no (401, 403 insufficient_scope), is away or is slow:
 * the client only ever sees the gateway's own challenges and JSON errors, never the upstream's.
 */

const PRM = `${PUBLIC_URL}/.well-known/oauth-protected-resource/mcp`
const STACK = /\bat\s+\S+\s+\(|\.[jt]s:\d+:\d+|"stack"/

/** The stack of test/helpers/mcp-stack.ts with a stateless MCP server. */
const stack = async (t: Teardown, overrides: Partial<GatewayPluginOptions> = {}, github: FakeGithubOptions = {}) =>
  await mcpStack(t, overrides, { mode: 'stateless' }, github)
const call = callMcp

const upstreamRefreshes = (github: FakeGithub): URLSearchParams[] => github.requests
  .filter((r) => r.method === 'POST' && r.path.startsWith('/login/oauth/access_token'))
  .map((r) => new URLSearchParams(r.body))
  .filter((form) => form.get('grant_type') === 'refresh_token')

const bearerOf = (headers: Record<string, unknown>): string => String(headers.authorization).replace(/^Bearer /, '')

t.test('§4.1 item 8, §4.4: upstream 401 with an upstream refresh token → one upstream refresh, one retry, the client sees 200', async (t) => {
  const { app, github, mcp, login } = await stack(t, {}, { mode: 'expiring' })
  const { access } = await login()
  const first = await call(app, access, echo(1, 'one'))
  t.equal(first.statusCode, 200, first.body)
  const oldToken = bearerOf(mcp.requests[0]?.headers ?? {})
  t.match(oldToken, /^ghu_/)
  t.equal(upstreamRefreshes(github).length, 0)

  // The upstream stops taking the token it has seen (GitHub App token expired early, or revoked by rotation elsewhere).
  mcp.rejectSeenTokens()
  const before = mcp.requests.length
  const second = await call(app, access, echo(2, 'two'))
  t.equal(second.statusCode, 200, 'the client never sees the upstream 401')
  t.match(second.body, '"text":"two"')
  const refreshes = upstreamRefreshes(github)
  t.equal(refreshes.length, 1, 'exactly one grant_type=refresh_token at the upstream')
  t.match(refreshes[0]?.get('refresh_token'), /^ghr_/)
  const tried = mcp.requests.slice(before)
  t.equal(tried.length, 2, 'the request went upstream twice: the refused try and one retry')
  t.equal(tried[0]?.status, 401)
  t.equal(bearerOf(tried[0]?.headers ?? {}), oldToken)
  t.equal(tried[1]?.status, 200)
  const newToken = bearerOf(tried[1]?.headers ?? {})
  t.match(newToken, /^ghu_/)
  t.not(newToken, oldToken, 'the retry carries the refreshed token')
  t.ok(tried[1]?.body.equals(tried[0]?.body ?? Buffer.alloc(0)), 'the retry sends the same body bytes')

  const third = await call(app, access, echo(3, 'three'))
  t.equal(third.statusCode, 200)
  t.equal(bearerOf(mcp.requests.at(-1)?.headers ?? {}), newToken, 'the refreshed token is kept')
  t.equal(upstreamRefreshes(github).length, 1, 'no further refresh')
})

t.test('§4.1 item 8: upstream 401 while the upstream token endpoint is down → 503, and the grant survives the outage', async (t) => {
  const { app, github, mcp, login } = await stack(t, {}, { mode: 'expiring' })
  const { access } = await login()
  t.equal((await call(app, access, echo(1, 'one'))).statusCode, 200)
  mcp.rejectSeenTokens()
  github.tokenFailure = 'http500'
  const during = await call(app, access, echo(2, 'two'))
  t.equal(during.statusCode, 503, 'a passing outage, not the end of the login')
  t.match(during.json(), { error: 'temporarily_unavailable' })
  t.equal(during.headers['www-authenticate'], undefined, 'no invalid_token challenge: the client keeps its tokens')
  github.tokenFailure = null
  const after = await call(app, access, echo(3, 'three'))
  t.equal(after.statusCode, 200, 'the same access token works once the upstream is back')
  t.match(after.body, '"text":"three"')
})

t.test('§4.1 item 8 (single flight): concurrent upstream 401s share one upstream refresh', async (t) => {
  const { app, github, mcp, login } = await stack(t, {}, { mode: 'expiring' })
  const { access } = await login()
  t.equal((await call(app, access, echo(1, 'warm'))).statusCode, 200)
  mcp.rejectSeenTokens()
  const results = await Promise.all([2, 3, 4, 5].map(async (id) => await call(app, access, echo(id, `n${id}`))))
  t.same(results.map((r) => r.statusCode), [200, 200, 200, 200], 'every request recovered')
  t.equal(upstreamRefreshes(github).length, 1, 'one refresh: GitHub rotates refresh tokens, a second would burn the first')
})

t.test('§4.4: upstream 401 again after a successful upstream refresh → no second refresh, the grant ends, the gateway\'s 401 invalid_token', async (t) => {
  let upstreamAccepts = true
  const { app, github, mcp, client, login } = await mcpStack(t, {}, { mode: 'stateless', isValidToken: () => upstreamAccepts }, { mode: 'expiring' })
  const { access, refresh } = await login()
  t.equal((await call(app, access, echo(1, 'before'))).statusCode, 200)
  upstreamAccepts = false
  const before = mcp.requests.length
  const res = await call(app, access, echo(2, 'after'))
  t.equal(res.statusCode, 401)
  t.equal(challengeParams(String(res.headers['www-authenticate'])).error, 'invalid_token')
  t.equal(upstreamRefreshes(github).length, 1, 'one upstream refresh, not a loop')
  t.same(mcp.requests.slice(before).map((r) => r.status), [401, 401], 'the request and its one retry')
  const refreshed = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: refresh, client_id: client.client_id })
  t.equal(refreshed.json().error, 'invalid_grant', 'the grant is over')
})

t.test('§1.1 item 10, §4.4: upstream 401 without a refresh token → the gateway\'s own 401 invalid_token', async (t) => {
  const { app, github, mcp, client, login } = await stack(t)
  const { access, refresh } = await login()
  t.equal((await call(app, access, echo(1, 'before'))).statusCode, 200)

  github.revokeAll()
  const res = await call(app, access, echo(2, 'after'))
  t.equal(res.statusCode, 401)
  const header = String(res.headers['www-authenticate'])
  const params = challengeParams(header)
  t.match(header, /^Bearer /)
  t.equal(params.error, 'invalid_token')
  t.equal(params.resource_metadata, PRM, 'the gateway\'s PRM, never the upstream\'s')
  t.notMatch(header, mcp.prmUrl)
  t.notMatch(header, mcp.origin)
  t.equal(params.scope, 'mcp')
  t.match(res.json(), { error: 'invalid_token' })
  t.notMatch(res.body, STACK)
  t.notMatch(res.body, 'fake MCP', 'nothing of the upstream\'s reply leaks')
  t.equal(upstreamRefreshes(github).length, 0, 'nothing to refresh with')
  t.equal(mcp.requests.at(-1)?.status, 401, 'the upstream refused it once')

  // §4.4: an upstream token that is gone ends the grant, so the client re-authorizes instead of
  // refreshing into another token the upstream refuses.
  const refreshed = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: refresh, client_id: client.client_id })
  t.equal(refreshed.statusCode, 400, 'the grant is over: its refresh token is refused')
  t.equal(refreshed.json().error, 'invalid_grant')
})

t.test('§1.1 item 14, §4.3 item 16: upstream 403 insufficient_scope → the gateway\'s 403, and the next authorization asks upstream for the union', async (t) => {
  const { app, github, mcp, login } = await stack(t)
  const { access } = await login()
  const upstreamAuthorizeScopes = (): Array<string | null> => github.requests
    .filter((r) => r.method === 'GET' && r.path.startsWith('/login/oauth/authorize'))
    .map((r) => new URL(r.path, github.origin).searchParams.get('scope'))
  t.same(upstreamAuthorizeScopes(), ['repo read:org'], 'the first authorization asked for the configured scopes')

  const res = await call(app, access, { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'needs-scope', arguments: {} } })
  t.equal(res.statusCode, 403)
  const header = String(res.headers['www-authenticate'])
  const params = challengeParams(header)
  t.match(header, /^Bearer /)
  t.equal(params.error, 'insufficient_scope')
  t.equal(params.scope, 'mcp', 'the gateway\'s scope names, not GitHub\'s')
  t.equal(params.resource_metadata, PRM, 'the gateway\'s PRM')
  t.notMatch(header, mcp.prmUrl, 'never the upstream\'s resource_metadata')
  t.match(res.json(), { error: 'insufficient_scope' })
  t.notMatch(res.body, STACK)
  t.equal(mcp.requests.at(-1)?.status, 403)

  const again = await call(app, access, echo(10, 'still works'))
  t.equal(again.statusCode, 200, 'the grant itself stays usable for what it can do')

  await login(new Browser())
  t.same(upstreamAuthorizeScopes(), ['repo read:org', 'repo read:org admin:org'], 'step-up: the second upstream authorize asks for the union of configured and needed scopes')
})

t.test('upstream unreachable (closed port) → 502 JSON', async (t) => {
  const closed = createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as AddressInfo).port
  await new Promise<void>((resolve) => closed.close(() => resolve()))

  const built = await buildGateway(t, { upstreamRs: `http://127.0.0.1:${port}/mcp` })
  const client = await registerClient(built.app)
  const flow = await authorizeFully(built.app, client)
  const access = (await exchangeCode(built.app, client, flow.code, flow.verifier)).json().access_token as string
  const res = await call(built.app, access, echo(1, 'anyone?'))
  t.equal(res.statusCode, 502)
  t.match(res.headers['content-type'], /^application\/json/)
  t.match(res.json(), { error: 'bad_gateway', error_description: String })
  t.notMatch(res.body, STACK)
  t.notMatch(res.body, String(port), 'no upstream address in the body')
  t.notMatch(res.body, 'ECONNREFUSED')
})

t.test('a small upstream answer cut short of its Content-Length → 502, stalled → 504 (never a truncated 200 or a hang); Vary kept; answers of unknown length still stream', async (t) => {
  const upstream = createServer((req, res) => {
    req.resume()
    if (req.url === '/mcp/stall') {
      // Announces 1,000 bytes, sends 10, and then nothing: the connection stays open.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' })
      res.write('{"jsonrpc"')
      return
    }
    if (req.url === '/mcp/vary') {
      res.writeHead(200, { 'content-type': 'application/json', vary: 'Accept-Encoding' })
      res.end('{"jsonrpc":"2.0","id":1,"result":{}}')
      return
    }
    if (req.url === '/mcp/cut') {
      // Announces 1,000 bytes, sends 10, and drops the connection.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' })
      res.write('{"jsonrpc"')
      setTimeout(() => res.socket?.destroy(), 20)
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"jsonrpc":"2.0",')
    res.end('"id":1,"result":{}}')
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { upstream.close() })
  t.teardown(() => { upstream.closeAllConnections() })
  const built = await buildGateway(t, { upstreamRs: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`, proxyTimeout: 300, allowedOrigins: ['https://inspector.example'] })
  const client = await registerClient(built.app)
  const flow = await authorizeFully(built.app, client)
  const access = (await exchangeCode(built.app, client, flow.code, flow.verifier)).json().access_token as string
  const headers = { authorization: `Bearer ${access}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

  const cut = await built.app.inject({ method: 'POST', url: '/mcp/cut', headers, payload: echo(1, 'x') })
  t.equal(cut.statusCode, 502, 'the client hears the upstream failed, not a 200 with half a body')
  t.match(cut.json(), { error: 'bad_gateway' })
  t.notMatch(cut.body, STACK)

  // undici checks timeouts about once a second; the gateway's own bound on a stalled answer is proxyTimeout too.
  const started = Date.now()
  const stalled = await built.app.inject({ method: 'POST', url: '/mcp/stall', headers, payload: echo(1, 'x') })
  t.equal(stalled.statusCode, 504, 'an answer that stalls before the client has anything is a 504, not a hang')
  t.match(stalled.json(), { error: 'gateway_timeout' })
  t.ok(Date.now() - started < 2500, `within about proxyTimeout (${Date.now() - started} ms)`)

  const varied = await built.app.inject({ method: 'POST', url: '/mcp/vary', headers: { ...headers, origin: 'https://inspector.example' }, payload: echo(1, 'x') })
  t.equal(varied.headers['access-control-allow-origin'], 'https://inspector.example')
  t.equal(varied.headers.vary, 'Origin, Accept-Encoding', 'the upstream\'s Vary joins the CORS Vary: Origin instead of replacing it')

  const chunked = await built.app.inject({ method: 'POST', url: '/mcp', headers, payload: echo(2, 'y') })
  t.equal(chunked.statusCode, 200)
  t.same(chunked.json(), { jsonrpc: '2.0', id: 1, result: {} }, 'a body without Content-Length arrives whole')
})

t.test('upstream slow to send headers, proxyTimeout 300 ms → 504 JSON', async (t) => {
  const { app, mcp, login } = await stack(t, { proxyTimeout: 300 })
  const { access } = await login()
  // undici checks headersTimeout on a timer with a 1 s resolution: a 300 ms timeout fires within about 1 s.
  mcp.delayMs = 3000
  const started = Date.now()
  const res = await call(app, access, echo(1, 'slow'))
  const elapsed = Date.now() - started
  t.equal(res.statusCode, 504)
  t.match(res.headers['content-type'], /^application\/json/)
  t.match(res.json(), { error: 'gateway_timeout', error_description: String })
  t.notMatch(res.body, STACK)
  t.ok(elapsed >= 250 && elapsed < 2500, `answered after ${elapsed} ms, long before the upstream's 3 s`)

  mcp.delayMs = 0
  const fine = await call(app, access, echo(2, 'fast'))
  t.equal(fine.statusCode, 200, 'the next request is fine (the pool is not stuck)')
})

t.test('upstream errors other than 401/403 pass through as the upstream sent them', async (t) => {
  const { app, login } = await stack(t)
  const { access } = await login()
  const res = await app.inject({
    method: 'POST',
    url: '/mcp',
    headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    payload: '{"jsonrpc":"2.0","id":1,"method":'
  })
  t.equal(res.statusCode, 400, 'the upstream\'s 400 for a JSON-RPC parse error')
  t.match(res.json(), { jsonrpc: '2.0', error: { code: -32700 } })
})

t.test('the store away while a bearer token or a session is checked → 503 temporarily_unavailable JSON with Retry-After, never a 500', async (t) => {
  // A store that fails for one kind of record, as if Redis went away between two calls; no token cache,
  // so every request asks the store.
  const { store, failing } = failingStore(t)
  const { app, mcp, login } = await stack(t, { store, tokenCacheTtl: 0 })
  const { access } = await login()
  t.equal((await call(app, access, echo(1, 'up'))).statusCode, 200)
  for (const [kind, headers] of [['access:', {}], ['mcp-session:', { 'mcp-session-id': 'some-session' }]] as const) {
    failing.prefix = kind
    const before = mcp.requests.length
    const res = await app.inject({ method: 'POST', url: '/mcp', headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json', ...headers }, payload: JSON.stringify(echo(2, 'down')) })
    t.equal(res.statusCode, 503, kind)
    t.equal(res.headers['retry-after'], '5')
    t.same(res.json(), { error: 'temporarily_unavailable', error_description: 'the gateway cannot reach its storage' })
    t.equal(mcp.requests.length, before, 'nothing went upstream')
  }
  failing.prefix = undefined
  t.equal((await call(app, access, echo(3, 'back'))).statusCode, 200, 'and it works again once the store is back')
})
