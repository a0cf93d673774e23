import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startFakeGithub } from '../helpers/fake-github.js'
import { startFakeMcp } from '../helpers/fake-mcp.js'
import { SECRET } from '../helpers/gateway.js'
import { GatewayProcess, callEcho, freePort, gatewayFlags, loginFully, mcpClient, register } from '../helpers/process.js'
import { SHARED_REDIS_URL, deletePrefix, testPrefix } from '../helpers/redis.js'

/*
 * Issue 19 part 3 with two real gateway processes on one Redis, in GitHub-App mode: two clients of one person, each
 * signed in through its own replica, hold one upstream token, and when it is due both replicas' calls from both
 * clients at once make one upstream refresh. The upstream token lives 61 s, so with the gateway's one-minute expiry
 * margin it is due one second after each sign-in or refresh.
 */

const github = await startFakeGithub({ mode: 'expiring', expiresIn: 61 })
t.teardown(() => github.close())
const mcp = await startFakeMcp({ isValidToken: (token) => github.isValidAccessToken(token) })
t.teardown(() => mcp.close())
const prefix = testPrefix('replica-shared-upstream')
t.teardown(async () => { await deletePrefix(SHARED_REDIS_URL, prefix) })

const [portA, portB] = [await freePort(), await freePort()] as [number, number]
const publicUrl = `http://127.0.0.1:${portA}`
const flags = (port: number): string[] => gatewayFlags({
  port,
  publicUrl,
  store: SHARED_REDIS_URL,
  storePrefix: prefix,
  secret: SECRET,
  github,
  upstreamRs: mcp.url,
  extra: ['--upstream-user-endpoint', `${github.origin}/user`, '--rate-limit-token', '100000', '--rate-limit-sign-in', '100000']
})
const upstreamRefreshes = (): number =>
  github.requests.filter((r) => r.method === 'POST' && r.body.includes('grant_type=refresh_token')).length

t.test('issue 19 part 3: two clients of one person on two replicas share one upstream token, refreshed once for both', async (t) => {
  const [a, b] = await Promise.all([
    GatewayProcess.start(t, portA, flags(portA), {}, 40_000),
    GatewayProcess.start(t, portB, flags(portB), {}, 40_000)
  ])
  t.teardown(() => { if (!t.passing()) t.comment(`replica A:\n${a.output}\nreplica B:\n${b.output}`) })
  const first = await loginFully(a.origin, publicUrl, await register(a.origin))
  const second = await loginFully(b.origin, publicUrl, await register(b.origin))
  const sessions = [
    (await mcpClient(t, a.origin, first.access_token)).transport.sessionId,
    (await mcpClient(t, b.origin, second.access_token)).transport.sessionId
  ]
  github.tokenDelayMs = 300
  t.teardown(() => { github.tokenDelayMs = 0 })
  const perExpiry: number[] = []
  for (let expiry = 0; expiry < 2; expiry++) {
    await sleep(1100)
    const before = upstreamRefreshes()
    const calls = await Promise.all(Array.from({ length: 16 }, async (_, i) => {
      const [token, session] = i % 4 < 2 ? [first.access_token, sessions[0]] : [second.access_token, sessions[1]]
      return await callEcho(i % 2 === 0 ? a.origin : b.origin, token, session, `call ${i}`)
    }))
    t.same(calls.map((c) => c.status), Array(16).fill(200), `expiry ${expiry + 1}: all 16 calls of both clients served`,
      { bodies: calls.filter((c) => c.status !== 200).map((c) => c.body) })
    perExpiry.push(upstreamRefreshes() - before)
  }
  t.comment(`upstream refreshes per expiry, two clients on two replicas: ${perExpiry.join(', ')}`)
  t.same(perExpiry, [1, 1], 'one upstream refresh per expiry for both clients, across both replicas')
  t.equal(github.tokensIssued, 2, 'two sign-ins')
})
