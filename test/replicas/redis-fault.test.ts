import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { startFakeGithub } from '../helpers/fake-github.js'
import { startFakeMcp } from '../helpers/fake-mcp.js'
import { SECRET } from '../helpers/gateway.js'
import {
  GatewayProcess, HttpBrowser, beginLogin, callEcho, freePort, gatewayFlags, loginFully, mcpClient, refresh, register,
  textOf, waitFor, type HttpResponse, type PendingLogin, type Tokens
} from '../helpers/process.js'
import { PrivateRedis, testPrefix } from '../helpers/redis.js'

/*
 * Issue: "A fault test: stop Redis during traffic and start it again: 503s while it is down (OAuth
 * JSON endpoints: 503 temporarily_unavailable; /mcp: 503 JSON; /readyz 503), no 500s, no crash, full
 * service after." On a Redis of the test's own (never the shared one), in two ways:
 *   - paused (SIGSTOP/SIGCONT): the data survives, so the same tokens keep working after;
 *   - killed and started again: it comes back empty (--save ""), so service resuming means /readyz
 *     200 and a NEW registration and login working.
 * --token-cache-ttl 0, so every /mcp request asks the store (a cached token would, by design, ride
 * out a short outage on a replica that has seen it).
 */

/** Log messages of the gateway's 500 handlers: none may appear. */
const FIVE_HUNDRED_LOGS = ['oauth endpoint failed', 'mcp proxy failed', 'authorization flow failed']

const github = await startFakeGithub()
t.teardown(() => github.close())
const mcp = await startFakeMcp({ isValidToken: (token) => github.isValidAccessToken(token) })
t.teardown(() => mcp.close())
const redis = await PrivateRedis.start()
let redisPid: number | undefined
t.teardown(async () => {
  if (redisPid !== undefined) { try { process.kill(redisPid, 'SIGCONT') } catch {} }
  await redis.stop()
})

const port = await freePort()
const publicUrl = `http://127.0.0.1:${port}`
const flags = gatewayFlags({
  port,
  publicUrl,
  store: redis.url,
  storePrefix: testPrefix('redis-fault'),
  secret: SECRET,
  github,
  upstreamRs: mcp.url,
  extra: ['--token-cache-ttl', '0']
})

interface Outcome { what: string, status: number, ms: number, res: HttpResponse }

/** One request of each kind the gateway serves, all at once, each timed. */
async function everyEndpoint (
  tokens: Tokens,
  clientId: string,
  sessionId: string | undefined,
  login: PendingLogin
): Promise<Record<string, Outcome>> {
  const browser = new HttpBrowser()
  const timed = async (what: string, send: () => Promise<HttpResponse>): Promise<Outcome> => {
    const started = Date.now()
    const res = await send()
    return { what, status: res.status, ms: Date.now() - started, res }
  }
  const mcpHeaders = { authorization: `Bearer ${tokens.access_token}`, accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', ...(sessionId === undefined ? {} : { 'mcp-session-id': sessionId }) }
  const outcomes = await Promise.all([
    timed('readyz', async () => await browser.get(`${publicUrl}/readyz`)),
    timed('healthz', async () => await browser.get(`${publicUrl}/healthz`)),
    timed('metadata', async () => await browser.get(`${publicUrl}/.well-known/oauth-authorization-server`)),
    timed('mcp', async () => await browser.postJson(`${publicUrl}/mcp`, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'down' } } }, mcpHeaders)),
    timed('token', async () => await browser.postForm(`${publicUrl}/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: clientId })),
    timed('register', async () => await browser.postJson(`${publicUrl}/register`, { redirect_uris: ['http://127.0.0.1:33418/callback'], token_endpoint_auth_method: 'none' })),
    timed('revoke', async () => await browser.postForm(`${publicUrl}/revoke`, { token: 'gwa_unknown', client_id: clientId })),
    timed('login', async () => await login.browser.postForm(`${publicUrl}/login`, { flow: login.flow, csrf: login.csrf, username: 'gateway_user', password: 'gateway_pass' })),
    timed('authorize', async () => await browser.get(`${publicUrl}/authorize?response_type=code&client_id=${encodeURIComponent(clientId)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`))
  ])
  return Object.fromEntries(outcomes.map((o) => [o.what, o]))
}

/** Requests every 50 ms until stopped: what clients see across the fault. A failed connection counts as status 0. */
function traffic (tokens: Tokens, sessionId: string | undefined): { stop: () => Promise<number[]> } {
  const statuses: number[] = []
  const state = { running: true }
  const loop = (async () => {
    while (state.running) {
      const res = await callEcho(publicUrl, tokens.access_token, sessionId, 'traffic').catch(() => ({ status: 0 }))
      statuses.push(res.status)
      await sleep(50)
    }
  })()
  return { stop: async () => { state.running = false; await loop; return statuses } }
}

function checkOutage (t: Test, outcomes: Record<string, Outcome>, slowestMs: number): void {
  const get = (what: string): Outcome => outcomes[what] as Outcome
  const body = (what: string): Record<string, unknown> => {
    try {
      return get(what).res.json()
    } catch {
      return { unparsed: get(what).res.body }
    }
  }
  t.equal(get('readyz').status, 503, '/readyz 503 while Redis is down')
  t.same(body('readyz'), { status: 'not ready', store: 'unavailable', upstream: 'ok' }, '/readyz names the store')
  t.equal(get('healthz').status, 200, '/healthz (liveness) still 200: no restart loop')
  t.equal(get('metadata').status, 200, 'discovery needs no store and still answers')
  t.equal(get('mcp').status, 503, '/mcp: 503', { body: get('mcp').res.body })
  t.match(get('mcp').res.headers['content-type'], /^application\/json/, '/mcp: a JSON body')
  t.equal(body('mcp').error, 'temporarily_unavailable', '/mcp: temporarily_unavailable')
  for (const what of ['token', 'register', 'revoke']) {
    t.equal(get(what).status, 503, `OAuth JSON endpoint /${what}: 503`, { body: get(what).res.body })
    t.equal(body(what).error, 'temporarily_unavailable', `OAuth JSON endpoint /${what}: temporarily_unavailable`)
    t.ok(get(what).res.headers['retry-after'] !== undefined, `/${what}: Retry-After`)
  }
  t.equal(get('authorize').status, 503, '/authorize (an HTML page): 503', { body: get('authorize').res.body })
  t.equal(get('login').status, 503, 'POST /login (an HTML page): 503', { body: get('login').res.body })
  t.match(get('login').res.body, /Temporarily unavailable/, 'POST /login: the "temporarily unavailable" page')
  const statuses = Object.values(outcomes).map((o) => `${o.what}:${o.status}`)
  t.notOk(Object.values(outcomes).some((o) => o.status >= 500 && o.status !== 503), `no 500s (${statuses.join(' ')})`)
  const slowest = Math.max(...Object.values(outcomes).map((o) => o.ms))
  t.ok(slowest < slowestMs, `every request answered, none hung (slowest ${slowest} ms)`)
}

function checkLogs (t: Test, gateway: GatewayProcess): void {
  const lines = gateway.output.split('\n').filter((line) => line.startsWith('{'))
  const parsed = lines.map((line) => JSON.parse(line) as { level: number, msg: string })
  t.same(parsed.filter((l) => FIVE_HUNDRED_LOGS.includes(l.msg)).map((l) => l.msg), [], 'no 500 was logged')
  t.same(parsed.filter((l) => l.level >= 60).map((l) => l.msg), [], 'nothing fatal was logged')
}

t.test('fault test: Redis stopped during traffic and started again', async (t) => {
  const gateway = await GatewayProcess.start(t, port, flags)
  t.teardown(() => { if (!t.passing()) t.comment(gateway.output) })

  const client = await register(publicUrl)
  const tokens = await loginFully(publicUrl, publicUrl, client)
  const { client: sdk, transport } = await mcpClient(t, publicUrl, tokens.access_token)
  t.equal(textOf(await sdk.callTool({ name: 'echo', arguments: { text: 'up' } })), 'up', 'a tool call before the fault')
  const sessionId = transport.sessionId

  await t.test('fault test, paused (SIGSTOP): 503s while Redis does not answer, the same tokens work after SIGCONT', async (t) => {
    const probe = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 })
    await probe.connect()
    redisPid = Number(/process_id:(\d+)/.exec(await probe.info('server'))?.[1])
    probe.disconnect()
    t.ok(redisPid > 0, `redis-server pid ${redisPid}`)

    const login = await beginLogin(publicUrl, publicUrl, client)
    const load = traffic(tokens, sessionId)
    await sleep(150)
    process.kill(redisPid, 'SIGSTOP')
    // Each command waits out the store's command timeout (2 s): slow 503s, but answers.
    checkOutage(t, await everyEndpoint(tokens, client.client_id, sessionId, login), 5000)
    t.ok(gateway.alive, 'no crash while Redis is paused')

    process.kill(redisPid, 'SIGCONT')
    const resumedAt = Date.now()
    await waitFor('/readyz 200 after SIGCONT', async () => (await new HttpBrowser().get(`${publicUrl}/readyz`)).status === 200, 8000, 50)
    t.comment(`ready again ${Date.now() - resumedAt} ms after SIGCONT`)
    await sleep(150)
    const statuses = await load.stop()
    t.ok(statuses.includes(503), 'the traffic saw 503s')
    t.equal(statuses.at(-1), 200, 'the traffic is served again')
    t.same(statuses.filter((s) => s !== 200 && s !== 503), [], `traffic saw only 200 and 503 (${statuses.join(',')})`)

    t.equal(textOf(await sdk.callTool({ name: 'echo', arguments: { text: 'back' } })), 'back', 'full service after: the same SDK client, session and access token')
    const refreshed = await refresh(publicUrl, client, tokens.refresh_token)
    t.equal(refreshed.status, 200, 'full service after: the same refresh token works (nothing was spent during the outage)', { body: refreshed.body })
    const next = refreshed.json<Tokens>()
    const call = await callEcho(publicUrl, next.access_token, sessionId, 'refreshed')
    t.equal(call.status, 200, 'and its new access token calls tools', { body: call.body })
    Object.assign(tokens, next)
    t.ok(gateway.alive, 'the gateway process never exited')
  })

  await t.test('fault test, killed and started again (data lost): 503s while it is down, then a new registration and login work', async (t) => {
    const login = await beginLogin(publicUrl, publicUrl, client)
    const load = traffic(tokens, sessionId)
    await sleep(150)
    await redis.stop()
    redisPid = undefined
    const downAt = Date.now()
    // No connection: commands fail at once (no offline queue), so the 503s are quick.
    checkOutage(t, await everyEndpoint(tokens, client.client_id, sessionId, login), 2500)
    await sleep(300)
    t.ok(gateway.alive, 'no crash while Redis is down')

    await redis.resume()
    await waitFor('/readyz 200 after Redis started again', async () => (await new HttpBrowser().get(`${publicUrl}/readyz`)).status === 200, 8000, 50)
    t.comment(`ready again ${Date.now() - downAt} ms after Redis was killed`)
    await sleep(200)
    const statuses = await load.stop()
    t.ok(statuses.includes(503), 'the traffic saw 503s')
    t.equal(statuses.at(-1), 401, 'the traffic is answered again: 401, its token went with the data')
    t.same(statuses.filter((s) => s !== 200 && s !== 503 && s !== 401), [], `traffic saw only 200, 503, then 401 once the data was gone (${statuses.join(',')})`)

    const lost = await callEcho(publicUrl, tokens.access_token, sessionId, 'lost')
    t.equal(lost.status, 401, 'the old access token is unknown to the empty Redis (401, not 500)')
    const again = await register(publicUrl)
    const fresh = await loginFully(publicUrl, publicUrl, again)
    t.match(fresh.access_token, /^gwa_/, 'full service after: a NEW registration and login work')
    const { client: sdk2 } = await mcpClient(t, publicUrl, fresh.access_token)
    t.equal(textOf(await sdk2.callTool({ name: 'echo', arguments: { text: 'new' } })), 'new', 'full service after: its token calls tools')
    const refreshed = await refresh(publicUrl, again, fresh.refresh_token)
    t.equal(refreshed.status, 200, 'full service after: refresh works', { body: refreshed.body })
    t.ok(gateway.alive, 'the gateway process never exited')
  })

  checkLogs(t, gateway)
})
