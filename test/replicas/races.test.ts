import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startFakeGithub } from '../helpers/fake-github.js'
import { startFakeMcp } from '../helpers/fake-mcp.js'
import { SECRET } from '../helpers/gateway.js'
import {
  GatewayProcess, HttpBrowser, atUpstream, beginLogin, callEcho, exchange, finishCallback, freePort, gatewayFlags,
  loginFully, mcpClient, refresh, register, signIn, type Tokens
} from '../helpers/process.js'
import { SHARED_REDIS_URL, deletePrefix, testPrefix } from '../helpers/redis.js'

/*
 * Issue 16 ("Replicas that agree") with two real gateway processes on one Redis, in GitHub-App mode: the
 * upstream token lives 61 s, so with the gateway's one-minute expiry margin it is due for a refresh one
 * second after each login or refresh. Default --token-cache-ttl (5 s): revocations must not wait for it.
 * --refresh-grace 0: a refresh token sent twice is reuse at once (test/replicas/refresh-grace.test.ts has the default).
 */

const UPSTREAM_EXPIRES_IN = 61
const RUNS = 50

const github = await startFakeGithub({ mode: 'expiring', expiresIn: UPSTREAM_EXPIRES_IN })
t.teardown(() => github.close())
const mcp = await startFakeMcp({ isValidToken: (token) => github.isValidAccessToken(token) })
t.teardown(() => mcp.close())
const prefix = testPrefix('replica-races')
t.teardown(async () => { await deletePrefix(SHARED_REDIS_URL, prefix) })

const [portA, portB] = [await freePort(), await freePort()] as [number, number]
const publicUrl = `http://127.0.0.1:${portA}`
const flags = (port: number): string[] => gatewayFlags({ port, publicUrl, store: SHARED_REDIS_URL, storePrefix: prefix, secret: SECRET, github, upstreamRs: mcp.url, extra: ['--rate-limit-token', '100000', '--rate-limit-sign-in', '100000', '--refresh-grace', '0'] })
const upstreamRefreshes = (): number => github.requests.filter((r) => r.method === 'POST' && r.body.includes('grant_type=refresh_token')).length

t.test('issue 16: two gateway processes on one Redis agree', async (t) => {
  const [a, b] = await Promise.all([
    GatewayProcess.start(t, portA, flags(portA), {}, 40_000),
    GatewayProcess.start(t, portB, flags(portB), {}, 40_000)
  ])
  t.teardown(() => { if (!t.passing()) t.comment(`replica A:\n${a.output}\nreplica B:\n${b.output}`) })
  const client = await register(a.origin)

  await t.test('issue 16 item 1: one refresh token sent to both replicas at once never leaves a grant alive', async (t) => {
    let resurrected = 0
    let served = 0
    for (let run = 0; run < RUNS; run++) {
      const first = await loginFully(a.origin, publicUrl, client)
      const results = await Promise.all([
        refresh(a.origin, client, first.refresh_token),
        refresh(b.origin, client, first.refresh_token)
      ])
      const issued = results.filter((r) => r.status === 200).map((r) => r.json<Tokens>())
      served += issued.length
      let alive = false
      for (const tokens of [first, ...issued]) {
        for (const origin of [a.origin, b.origin]) {
          if ((await callEcho(origin, tokens.access_token, undefined, 'after')).status !== 401) alive = true
        }
        if ((await refresh(b.origin, client, tokens.refresh_token)).status === 200) alive = true
      }
      if (alive) resurrected++
    }
    t.comment(`${RUNS} races across replicas: ${resurrected} resurrected grants, ${served} refreshes answered with tokens (then refused)`)
    t.equal(resurrected, 0, 'after the reuse every token of the grant is refused on both replicas')
  })

  /**
   * True when any of `issued` still works on either replica: an access token that is not refused, or a refresh token.
   */
  async function anyAlive (issued: Tokens[]): Promise<boolean> {
    for (const tokens of issued) {
      for (const origin of [a.origin, b.origin]) {
        if ((await callEcho(origin, tokens.access_token, undefined, 'after')).status !== 401) return true
      }
      if ((await refresh(b.origin, client, tokens.refresh_token)).status === 200) return true
    }
    return false
  }

  await t.test('issue 16 item 1: /revoke on one replica racing a refresh on the other always ends with the grant revoked', async (t) => {
    let resurrected = 0
    let refreshServed = 0
    for (let run = 0; run < RUNS; run++) {
      const first = await loginFully(a.origin, publicUrl, client)
      const [refreshed] = await Promise.all([
        refresh(a.origin, client, first.refresh_token),
        new HttpBrowser().postForm(`${b.origin}/revoke`, { token: first.access_token, client_id: client.client_id })
      ])
      const issued = refreshed.status === 200 ? [first, refreshed.json<Tokens>()] : [first]
      if (refreshed.status === 200) refreshServed++
      if (await anyAlive(issued)) resurrected++
    }
    t.comment(`${RUNS} revoke/refresh races across replicas: ${resurrected} resurrected grants, ${refreshServed} refreshes answered with tokens (refused afterwards)`)
    t.equal(resurrected, 0, 'the revocation wins')
  })

  await t.test('issue 16 item 1: one code exchanged at both replicas at once leaves no grant alive', async (t) => {
    let resurrected = 0
    let served = 0
    for (let run = 0; run < RUNS; run++) {
      const login = await beginLogin(a.origin, publicUrl, client)
      const { code } = await finishCallback(a.origin, login, await atUpstream(await signIn(a.origin, login)))
      const results = await Promise.all([
        exchange(a.origin, client, code, login.verifier),
        exchange(b.origin, client, code, login.verifier)
      ])
      const issued = results.filter((r) => r.status === 200).map((r) => r.json<Tokens>())
      served += issued.length
      if (await anyAlive(issued)) resurrected++
    }
    t.comment(`${RUNS} code replay races across replicas: ${resurrected} resurrected grants, ${served} exchanges answered with tokens (revoked afterwards)`)
    t.equal(resurrected, 0, 'a replayed code revokes whatever it issued (OAuth 2.1 §4.1.3)')
  })

  await t.test('issue 16 item 2: 16 tool calls split across both replicas just after the upstream token expired: one upstream refresh, no logout', async (t) => {
    const tokens = await loginFully(a.origin, publicUrl, client)
    const { transport } = await mcpClient(t, a.origin, tokens.access_token)
    const session = transport.sessionId
    let logouts = 0
    const perExpiry: number[] = []
    // A GitHub that takes its time: every replica's calls arrive while the first refresh is in flight.
    github.tokenDelayMs = 300
    t.teardown(() => { github.tokenDelayMs = 0 })
    for (let expiry = 0; expiry < 2; expiry++) {
    // Past the expiry margin: every replica now sees the upstream token as due.
      await sleep(1100)
      const before = upstreamRefreshes()
      const calls = await Promise.all(Array.from({ length: 16 }, async (_, i) => await callEcho(i % 2 === 0 ? a.origin : b.origin, tokens.access_token, session, `call ${i}`)))
      logouts += calls.filter((c) => c.status === 401).length
      t.same(calls.map((c) => c.status), Array(16).fill(200), `expiry ${expiry + 1}: all 16 calls served`, { bodies: calls.filter((c) => c.status !== 200).map((c) => c.body) })
      perExpiry.push(upstreamRefreshes() - before)
    }
    t.comment(`upstream refreshes per expiry: ${perExpiry.join(', ')}; logouts: ${logouts}`)
    t.same(perExpiry, [1, 1], 'exactly one upstream refresh per expiry, across both replicas')
    t.equal(logouts, 0, 'nobody logged out')
    t.notMatch(a.output + b.output, /upstream_refused/, 'no grant revoked for a refused upstream refresh')
  })

  await t.test('issue 16 item 4: a revoke on replica A reaches replica B\'s token cache at once', async (t) => {
    const tokens = await loginFully(a.origin, publicUrl, client)
    const { transport } = await mcpClient(t, b.origin, tokens.access_token)
    const cached = await callEcho(b.origin, tokens.access_token, transport.sessionId, 'cached on B')
    t.equal(cached.status, 200, 'B validated, and so cached, the access token')
    const revoked = await new HttpBrowser().postForm(`${a.origin}/revoke`, { token: tokens.refresh_token, client_id: client.client_id })
    t.equal(revoked.status, 200, 'revoked on A')
    const revokedAt = Date.now()
    const probes: number[] = []
    for (;;) {
      const res = await callEcho(b.origin, tokens.access_token, transport.sessionId, 'probe')
      probes.push(res.status)
      if (res.status === 401 || Date.now() - revokedAt > 100) break
      await sleep(5)
    }
    const elapsed = Date.now() - revokedAt
    t.comment(`B answered ${probes.join(', ')}; the 401 came ${elapsed} ms after the revoke on A (token cache: 5000 ms)`)
    t.equal(probes.at(-1), 401, 'B refuses the token within 100 ms of the revoke on A')
    t.ok(elapsed <= 100, 'well inside the token cache period')
  })
})
