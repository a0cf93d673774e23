import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { register as globalRegistry } from 'prom-client'
import t from 'tap'
import type { GatewayPluginOptions } from '../../app.js'
import { createPkcePair } from '../../lib/pkce.js'
import type { FakeGithubOptions } from '../helpers/fake-github.js'
import { authorizeFully, Browser, exchangeCode, pathOf, registerClient, SECRET, startFlow, tokenRequest, visitUpstream } from '../helpers/gateway.js'
import { callMcp, echo, mcpStack } from '../helpers/mcp-stack.js'
import { buildWithMetrics, sample } from '../helpers/metrics.js'
import type { Teardown } from '../helpers/teardown.js'

/*
 * plugins/metrics.ts and the events behind it, through app.inject: what an operator scraping /metrics
 * sees after real flows, that it holds no token or secret, and where it lives (or not).
 */

async function scrape (app: FastifyInstance, path = '/metrics'): Promise<string> {
  const res = await app.inject({ method: 'GET', url: path })
  if (res.statusCode !== 200) throw new Error(`scrape: ${res.statusCode}`)
  return res.body
}

interface LogLine {
  level: number
  msg: string
  event?: string
  clientId?: string
  grantId?: string
  [key: string]: unknown
}

function logCollector (): { lines: LogLine[], stream: Writable } {
  const lines: LogLine[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as LogLine)
      done()
    }
  })
  return { lines, stream }
}

t.test('a full OAuth story, then /metrics: every counter with its value and labels, and no secret anywhere', async (t) => {
  const logs = logCollector()
  const { app, clock } = await buildWithMetrics(t, { server: { logger: { level: 'info', stream: logs.stream } } })
  const initial = await scrape(app)
  for (const kind of ['unreachable', 'timeout', 'bad_response', 'oauth_error', 'discovery', 'registration', 'proxy_502', 'proxy_504', 'upstream_401', 'upstream_403_scope']) {
    t.equal(sample(initial, 'upstream_errors_total', { kind }), 0, `upstream_errors_total{kind="${kind}"} starts at 0`)
  }
  t.equal(sample(initial, 'oauth_logins_total', { result: 'failure' }), 0)
  t.equal(sample(initial, 'mcp_open_streams'), 0)

  const client = await registerClient(app)
  const confidential = await registerClient(app, { token_endpoint_auth_method: 'client_secret_basic' })
  t.type(confidential.client_secret, 'string')

  // A wrong password, then a denial on the consent page.
  const browser = new Browser()
  const failed = await startFlow(app, browser, client, { challenge: createPkcePair().challenge })
  t.equal((await browser.post(app, '/login', { ...failed, username: 'gateway_user', password: 'wrong' })).statusCode, 401)
  const denied = await startFlow(app, browser, client, { challenge: createPkcePair().challenge })
  t.equal((await browser.post(app, '/login', { ...denied, username: 'gateway_user', password: 'gateway_pass' })).statusCode, 303)
  t.equal((await browser.post(app, '/consent', { ...denied, decision: 'deny' })).statusCode, 303)

  // Grant 1: issued, then its code replayed (the grant is revoked).
  const one = await authorizeFully(app, client)
  const first = await exchangeCode(app, client, one.code, one.verifier)
  t.equal(first.statusCode, 200)
  t.equal((await exchangeCode(app, client, one.code, one.verifier)).statusCode, 400)

  // Grant 2: refreshed once, the rotated refresh token repeated within the grace period (the same answer),
  // then once more after it (reuse: revoked).
  const two = await authorizeFully(app, client)
  const second = (await exchangeCode(app, client, two.code, two.verifier)).json() as {
    access_token: string
    refresh_token: string
  }
  const refreshed = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: second.refresh_token, client_id: client.client_id })
  t.equal(refreshed.statusCode, 200)
  t.equal((await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: second.refresh_token, client_id: client.client_id })).statusCode, 200)
  clock.advance(30_000)
  t.equal((await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: second.refresh_token, client_id: client.client_id })).statusCode, 400)

  // Grant 3, for the confidential client: revoked by the client.
  const three = await authorizeFully(app, confidential)
  const basic = `Basic ${Buffer.from(`${confidential.client_id}:${confidential.client_secret ?? ''}`).toString('base64')}`
  const third = await tokenRequest(app, { grant_type: 'authorization_code', code: three.code, code_verifier: three.verifier, redirect_uri: confidential.redirect_uris[0] as string }, { authorization: basic })
  t.equal(third.statusCode, 200, third.body)
  const revoke = await app.inject({
    method: 'POST',
    url: '/revoke',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
    payload: new URLSearchParams({ token: (third.json() as { access_token: string }).access_token }).toString()
  })
  t.equal(revoke.statusCode, 200)

  const res = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
  t.equal(res.headers['cache-control'], 'no-store')
  const text = res.body

  t.equal(sample(text, 'oauth_clients_registered_total'), 2)
  t.equal(sample(text, 'oauth_logins_total', { result: 'success' }), 4)
  t.equal(sample(text, 'oauth_logins_total', { result: 'failure' }), 1)
  t.equal(sample(text, 'oauth_consents_total', { decision: 'approved', remembered: 'false' }), 3)
  t.equal(sample(text, 'oauth_consents_total', { decision: 'approved', remembered: 'true' }), 0)
  t.equal(sample(text, 'oauth_consents_total', { decision: 'denied', remembered: 'false' }), 1)
  t.equal(sample(text, 'oauth_codes_issued_total'), 3)
  t.equal(sample(text, 'oauth_tokens_issued_total', { grant_type: 'authorization_code' }), 3)
  t.equal(sample(text, 'oauth_tokens_issued_total', { grant_type: 'refresh_token' }), 1, 'refreshes')
  t.equal(sample(text, 'oauth_refresh_reuse_detected_total'), 1)
  t.equal(sample(text, 'oauth_refresh_repeated_total'), 1, 'the repeat within the grace period')
  t.equal(sample(text, 'oauth_code_replay_detected_total'), 1)
  t.equal(sample(text, 'oauth_grants_revoked_total', { reason: 'code_replay' }), 1)
  t.equal(sample(text, 'oauth_grants_revoked_total', { reason: 'refresh_reuse' }), 1)
  t.equal(sample(text, 'oauth_grants_revoked_total', { reason: 'client_revoked' }), 1)
  t.equal(sample(text, 'oauth_grants_revoked_total', { reason: 'upstream_rejected' }), 0)

  t.equal(sample(text, 'http_requests_total', { route: '/register', method: 'POST', status: '201' }), 2)
  t.equal(sample(text, 'http_requests_total', { route: '/authorize', method: 'GET', status: '302' }), 5)
  t.equal(sample(text, 'http_requests_total', { route: '/login', method: 'POST', status: '401' }), 1)
  t.equal(sample(text, 'http_requests_total', { route: '/login', method: 'POST', status: '303' }), 4)
  t.equal(sample(text, 'http_requests_total', { route: '/consent', method: 'POST', status: '303' }), 4)
  t.equal(sample(text, 'http_requests_total', { route: '/upstream/callback', method: 'GET', status: '302' }), 3)
  t.equal(sample(text, 'http_requests_total', { route: '/token', method: 'POST', status: '200' }), 5)
  t.equal(sample(text, 'http_requests_total', { route: '/token', method: 'POST', status: '400' }), 2)
  t.equal(sample(text, 'http_requests_total', { route: '/revoke', method: 'POST', status: '200' }), 1)
  t.equal(sample(text, 'http_requests_total', { route: '/metrics', method: 'GET', status: '200' }), 1, 'the earlier scrape; this one is counted once it is answered')

  // Route patterns only: never a query string, a code, a state or a client id.
  const routes = new Set([...text.matchAll(/route="([^"]*)"/g)].map((m) => m[1]))
  t.same([...routes].sort(), ['/authorize', '/consent', '/login', '/metrics', '/register', '/revoke', '/token', '/upstream/callback'])

  const secrets = [
    SECRET, 'gateway_pass', confidential.client_secret ?? '', one.code, one.verifier, second.access_token, second.refresh_token,
    (refreshed.json() as { refresh_token: string }).refresh_token, client.client_id, confidential.client_id
  ]
  for (const secret of secrets) t.notOk(text.includes(secret), `no ${secret.slice(0, 4)}… in the metrics`)
  t.notMatch(text, /gh[oura]_|gw[oarg]_/, 'no token of any kind, upstream or gateway')

  // One log line per OAuth event, with its ids, through the request logger (it carries reqId).
  const events = logs.lines.filter((l) => l.event !== undefined)
  const count = (event: string): number => events.filter((l) => l.event === event).length
  t.equal(count('client_registered'), 2)
  t.equal(count('login_failed'), 1)
  t.equal(count('login_succeeded'), 4)
  t.equal(count('consent_given'), 3)
  t.equal(count('consent_denied'), 1)
  t.equal(count('code_issued'), 3)
  t.equal(count('tokens_issued'), 4)
  t.equal(count('refresh_reuse_detected'), 1)
  t.equal(count('code_replay_detected'), 1)
  t.equal(count('grant_revoked'), 3)
  for (const line of events) t.type(line.reqId, 'string', `${line.event} logged with the request's id`)
  const issued = events.filter((l) => l.event === 'tokens_issued')
  t.same(issued.map((l) => [l.msg, l.level, l.clientId, l.grantType]), [
    ['tokens issued', 30, client.client_id, 'authorization_code'],
    ['tokens issued', 30, client.client_id, 'authorization_code'],
    ['tokens refreshed', 30, client.client_id, 'refresh_token'],
    ['tokens issued', 30, confidential.client_id, 'authorization_code']
  ])
  for (const line of issued) t.match(line.grantId, /^gwg_/)
  const reuse = events.find((l) => l.event === 'refresh_reuse_detected')
  t.match(reuse, { level: 40, msg: 'refresh token reuse detected', clientId: client.client_id, grantId: issued[1]?.grantId })
  const replay = events.find((l) => l.event === 'code_replay_detected')
  t.match(replay, { level: 40, msg: 'authorization code replay detected', clientId: client.client_id, grantId: issued[0]?.grantId })
  t.same(events.filter((l) => l.event === 'grant_revoked').map((l) => [l.reason, l.grantId, l.clientId]), [
    ['code_replay', issued[0]?.grantId, client.client_id],
    ['refresh_reuse', issued[1]?.grantId, client.client_id],
    ['client_revoked', issued[3]?.grantId, confidential.client_id]
  ])
  const eventText = JSON.stringify(events)
  for (const secret of secrets.slice(0, 8)) t.notOk(eventText.includes(secret), `no ${secret.slice(0, 4)}… in the event lines`)
  t.notMatch(eventText, /gh[our]_|gw[oar]_/, 'event lines carry grant ids (gwg_) but no token')
})

/** The stack of test/helpers/mcp-stack.ts, metrics at /metrics (off by default), with a stateless MCP server. */
const proxyStack = async (t: Teardown, gateway: Partial<GatewayPluginOptions> = {}, github: FakeGithubOptions = {}) =>
  await mcpStack(t, { metricsPath: '/metrics', ...gateway }, { mode: 'stateless' }, github)
const call = callMcp

t.test('a proxied call lands in the latency histogram; its SSE answer opens and closes a stream', async (t) => {
  const { app, mcp, login } = await proxyStack(t)
  const { access } = await login()
  mcp.delayMs = 30
  const res = await call(app, access, echo(1, 'timed'))
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/event-stream/, 'the SDK answers with an event stream')
  mcp.delayMs = 0
  t.equal((await call(app, access, echo(2, 'again'))).statusCode, 200)

  const text = await scrape(app)
  t.equal(sample(text, 'mcp_proxy_duration_seconds_count', { method: 'POST' }), 2)
  const sum = sample(text, 'mcp_proxy_duration_seconds_sum', { method: 'POST' }) ?? 0
  t.ok(sum >= 0.03 && sum < 5, `sum ${sum} s covers the upstream's 30 ms delay`)
  t.equal(sample(text, 'mcp_proxy_duration_seconds_bucket', { method: 'POST', le: '+Inf' }), 2)
  t.ok((sample(text, 'mcp_proxy_duration_seconds_bucket', { method: 'POST', le: '0.025' }) ?? 2) <= 1, 'the delayed call is above 25 ms')
  t.equal(sample(text, 'mcp_open_streams'), 0, 'both streams ended with their answers')
  t.equal(sample(text, 'http_requests_total', { route: '/mcp', method: 'POST', status: '200' }), 2)
  t.notOk(text.includes(access), 'no gateway token')
  t.notMatch(text, /gh[our]_/, 'no upstream token')
})

t.test('upstream errors by kind: 403 step-up, 401 without refresh, 502, 504, a failing upstream token endpoint', async (t) => {
  await t.test('upstream_403_scope and upstream_401 (the grant is revoked: upstream_rejected)', async (t) => {
    const { app, github, login } = await proxyStack(t)
    const { access } = await login()
    t.equal((await call(app, access, { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'needs-scope', arguments: {} } })).statusCode, 403)
    github.revokeAll()
    t.equal((await call(app, access, echo(2, 'after'))).statusCode, 401)
    const text = await scrape(app)
    t.equal(sample(text, 'upstream_errors_total', { kind: 'upstream_403_scope' }), 1)
    t.equal(sample(text, 'upstream_errors_total', { kind: 'upstream_401' }), 1)
    t.equal(sample(text, 'oauth_grants_revoked_total', { reason: 'upstream_rejected' }), 1)
    t.equal(sample(text, 'http_requests_total', { route: '/mcp', method: 'POST', status: '401' }), 1)
    t.equal(sample(text, 'http_requests_total', { route: '/mcp', method: 'POST', status: '403' }), 1)
  })

  await t.test('an upstream that refuses to refresh: oauth_error, and the grant is revoked (upstream_refused)', async (t) => {
    const { app, github, mcp, login } = await proxyStack(t, {}, { mode: 'expiring' })
    const { access } = await login()
    github.revokeAll()
    mcp.rejectSeenTokens()
    t.equal((await call(app, access, echo(1, 'x'))).statusCode, 401)
    const text = await scrape(app)
    t.equal(sample(text, 'upstream_errors_total', { kind: 'oauth_error' }), 1)
    t.equal(sample(text, 'oauth_grants_revoked_total', { reason: 'upstream_refused' }), 1)
  })

  await t.test('proxy_502: the upstream MCP server is unreachable', async (t) => {
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    const { app } = await buildWithMetrics(t, { gateway: { upstreamRs: `http://127.0.0.1:${port}/mcp` } })
    const client = await registerClient(app)
    const flow = await authorizeFully(app, client)
    const access = (await exchangeCode(app, client, flow.code, flow.verifier)).json().access_token as string
    t.equal((await call(app, access, echo(1, 'anyone?'))).statusCode, 502)
    const text = await scrape(app)
    t.equal(sample(text, 'upstream_errors_total', { kind: 'proxy_502' }), 1)
    t.equal(sample(text, 'mcp_proxy_duration_seconds_count', { method: 'POST' }), undefined, 'no response headers, no latency sample')
  })

  await t.test('proxy_504: the upstream MCP server is too slow', async (t) => {
    const { app, mcp, login } = await proxyStack(t, { proxyTimeout: 300 })
    const { access } = await login()
    mcp.delayMs = 3000
    t.teardown(() => { mcp.delayMs = 0 })
    t.equal((await call(app, access, echo(1, 'slow'))).statusCode, 504)
    t.equal(sample(await scrape(app), 'upstream_errors_total', { kind: 'proxy_504' }), 1)
  })

  await t.test('the upstream token endpoint fails at the callback: bad_response', async (t) => {
    const { app, github } = await buildWithMetrics(t)
    const client = await registerClient(app)
    github.tokenFailure = 'http500'
    const browser = new Browser()
    const flow = await startFlow(app, browser, client, { challenge: createPkcePair().challenge })
    const login = await browser.post(app, '/login', { ...flow, username: 'gateway_user', password: 'gateway_pass' })
    const consent = await browser.post(app, '/consent', { ...flow, decision: 'approve' })
    t.equal(login.statusCode, 303)
    const callback = await browser.get(app, pathOf(await visitUpstream(consent.headers.location as string)))
    t.match(callback.headers.location, /error=server_error/)
    t.equal(sample(await scrape(app), 'upstream_errors_total', { kind: 'bad_response' }), 1)
  })

  await t.test('the upstream authorization server is unreachable after sign-in: unreachable', async (t) => {
    const { app } = await buildWithMetrics(t, { gateway: { upstreamTokenEndpoint: undefined, upstreamAuthorizeEndpoint: undefined, upstreamAs: 'http://127.0.0.1:9/nowhere' } })
    const client = await registerClient(app)
    const browser = new Browser()
    const flow = await startFlow(app, browser, client, { challenge: createPkcePair().challenge })
    const login = await browser.post(app, '/login', { ...flow, username: 'gateway_user', password: 'gateway_pass' })
    t.equal(login.statusCode, 502)
    const text = await scrape(app)
    t.equal(sample(text, 'upstream_errors_total', { kind: 'unreachable' }), 1, 'its metadata could not be fetched')
    t.equal(sample(text, 'upstream_errors_total', { kind: 'discovery' }), 0)
  })
})

t.test('metrics: false → no /metrics, and the gateway works as before', async (t) => {
  const { app } = await buildWithMetrics(t, { gateway: { metricsPath: false } })
  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 404)
  const client = await registerClient(app)
  const flow = await authorizeFully(app, client)
  t.equal((await exchangeCode(app, client, flow.code, flow.verifier)).statusCode, 200)
})

t.test('a moved path: served there, and /metrics is 404', async (t) => {
  const { app } = await buildWithMetrics(t, { gateway: { metricsPath: '/internal/prometheus' } })
  await registerClient(app)
  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 404)
  const text = await scrape(app, '/internal/prometheus')
  t.equal(sample(text, 'oauth_clients_registered_total'), 1)
})

t.test('under a host\'s prefix: the path follows it, and routes are labelled with it', async (t) => {
  const { app } = await buildWithMetrics(t, { prefix: '/gw' })
  t.equal((await app.inject({ method: 'GET', url: '/gw/healthz' })).statusCode, 200)
  const text = await scrape(app, '/gw/metrics')
  t.equal(sample(text, 'http_requests_total', { route: '/gw/healthz', method: 'GET', status: '200' }), 1)
})

t.test('a metrics path that is not one is refused at boot, naming the option', async (t) => {
  for (const path of ['metrics', '/metrics?x=1', '/met rics', '', '/metrics/:id', '/metrics*', '/m%2f']) {
    await t.rejects(buildWithMetrics(t, { gateway: { metricsPath: path } }), { name: 'ConfigError', message: /metricsPath/ }, JSON.stringify(path))
  }
})

t.test('each gateway counts in a registry of its own; prom-client\'s global one is left alone', async (t) => {
  const one = await buildWithMetrics(t)
  const two = await buildWithMetrics(t)
  await registerClient(one.app)
  t.equal(sample(await scrape(one.app), 'oauth_clients_registered_total'), 1)
  t.equal(sample(await scrape(two.app), 'oauth_clients_registered_total'), 0, 'each gateway counts its own')
  t.notMatch(await globalRegistry.metrics(), /oauth_|http_requests_total/, 'nothing in the global registry')
})
