import t from 'tap'
import { startFakeGithub } from '../helpers/fake-github.js'
import { startFakeMcp } from '../helpers/fake-mcp.js'
import { SECRET } from '../helpers/gateway.js'
import {
  GatewayProcess, atUpstream, beginLogin, callEcho, exchange, finishCallback, freePort, gatewayFlags, mcpClient,
  refresh, register, signIn, textOf, waitFor, type Tokens
} from '../helpers/process.js'
import { SHARED_REDIS_URL, deletePrefix, testPrefix } from '../helpers/redis.js'

/*
 * Issue: "A two-replica test: two gateway processes on different ports sharing Redis; register on A,
 * authorize on B, finish the upstream callback on A, exchange the code on B, call tools through both,
 * refresh on A then reuse the old refresh token on B (the grant is revoked on both — on B immediately
 * for the refresh; an access token cached on the other replica stops working within --token-cache-ttl),
 * rate limit counted across both."
 *
 * Both replicas get the same --public-url (A's origin), as two replicas behind one load balancer
 * would: the issuer and resource are the same strings on both, so codes and tokens of one are
 * accepted by the other. The test talks to each by its own port. --trust-proxy 127.0.0.1 as behind a
 * load balancer, so the rate-limit check can use an address of its own (X-Forwarded-For).
 */

const TOKEN_CACHE_TTL = 200

const github = await startFakeGithub()
t.teardown(() => github.close())
const mcp = await startFakeMcp({ isValidToken: (token) => github.isValidAccessToken(token) })
t.teardown(() => mcp.close())
const prefix = testPrefix('two-replicas')
t.teardown(async () => { await deletePrefix(SHARED_REDIS_URL, prefix) })

const [portA, portB] = [await freePort(), await freePort()] as [number, number]
const publicUrl = `http://127.0.0.1:${portA}`
const replicaFlags = (port: number) => gatewayFlags({
  port,
  publicUrl,
  store: SHARED_REDIS_URL,
  storePrefix: prefix,
  secret: SECRET,
  github,
  upstreamRs: mcp.url,
  // --refresh-grace 0: the old refresh token on B is reuse at once (the default grace would answer it again).
  extra: ['--token-cache-ttl', String(TOKEN_CACHE_TTL), '--trust-proxy', '127.0.0.1', '--refresh-grace', '0']
})

t.test('two-replica test: two gateway processes on different ports sharing one Redis', async (t) => {
  const [a, b] = await Promise.all([
    GatewayProcess.start(t, portA, replicaFlags(portA)),
    GatewayProcess.start(t, portB, replicaFlags(portB))
  ])
  t.teardown(() => { if (!t.passing()) t.comment(`replica A:\n${a.output}\nreplica B:\n${b.output}`) })
  t.not(a.child.pid, b.child.pid, 'two processes')

  const client = await register(a.origin)
  t.match(client.client_id, /\S/, 'two-replica test: registered on A')

  // Authorize on B (the /authorize redirect, the login page, sign-in and consent)…
  const login = await beginLogin(b.origin, publicUrl, client)
  const githubUrl = await signIn(b.origin, login)
  const callback = await atUpstream(githubUrl)
  t.ok(githubUrl.startsWith(github.authorizeEndpoint), 'two-replica test: authorized on B, sent to GitHub')
  // …the upstream callback on A (with the cookie B set)…
  const { code, redirect } = await finishCallback(a.origin, login, callback)
  t.equal(redirect.searchParams.get('iss'), publicUrl, 'two-replica test: upstream callback finished on A, code issued')
  // …the code exchanged on B.
  const exchanged = await exchange(b.origin, client, code, login.verifier)
  t.equal(exchanged.status, 200, 'two-replica test: code (from A) exchanged on B', { body: exchanged.body })
  const first = exchanged.json<Tokens>()

  const viaA = await mcpClient(t, a.origin, first.access_token)
  const viaB = await mcpClient(t, b.origin, first.access_token)
  const sessionA = viaA.transport.sessionId as string

  await t.test('two-replica test: call tools through both', async (t) => {
    t.equal(textOf(await viaA.client.callTool({ name: 'echo', arguments: { text: 'via A' } })), 'via A', 'SDK client through A')
    t.equal(textOf(await viaB.client.callTool({ name: 'echo', arguments: { text: 'via B' } })), 'via B', 'SDK client through B')
    const crossed = await callEcho(b.origin, first.access_token, sessionA, 'session of A via B')
    t.equal(crossed.status, 200, 'an MCP session opened through A continues through B', { body: crossed.body })
    t.equal(crossed.text, 'session of A via B', 'echoed')
  })

  await t.test('two-replica test: refresh on A, reuse the old refresh token on B: the grant is revoked on both', async (t) => {
    const refreshed = await refresh(a.origin, client, first.refresh_token)
    t.equal(refreshed.status, 200, 'refresh on A', { body: refreshed.body })
    const second = refreshed.json<Tokens>()
    // The new access token is validated (and cached) on both replicas, A last, right before the reuse.
    const onB = await callEcho(b.origin, second.access_token, sessionA, 'new token via B')
    t.equal(onB.status, 200, 'the refreshed access token works on B', { body: onB.body })
    const cachedOnB = Date.now()
    const onA = await callEcho(a.origin, second.access_token, sessionA, 'new token via A')
    t.equal(onA.status, 200, 'the refreshed access token works on A', { body: onA.body })
    const cachedOnA = Date.now()

    const reuse = await refresh(b.origin, client, first.refresh_token)
    const revokedAt = Date.now()
    t.equal(reuse.status, 400, 'the old refresh token, reused on B, is refused')
    t.equal(reuse.json().error, 'invalid_grant', 'invalid_grant')

    // On B, the replica that saw the reuse, the revocation takes effect at once: its cache is purged.
    const accessOnB = await callEcho(b.origin, second.access_token, sessionA, 'after')
    const accessOnBAfter = Date.now() - cachedOnB
    t.equal(accessOnB.status, 401, 'B: the access token it had cached is refused at once')
    t.comment(`B refused it ${accessOnBAfter} ms after caching it${accessOnBAfter < TOKEN_CACHE_TTL ? ', inside its cache window: purged, not expired' : ''}`)
    const newRefreshOnB = await refresh(b.origin, client, second.refresh_token)
    t.equal(newRefreshOnB.status, 400, 'B: the refresh token issued on A is revoked at once')
    t.equal(newRefreshOnB.json().error, 'invalid_grant', 'B: invalid_grant')

    // Then A, which only the store can tell: probes until its cache lets go of the token. A validated (and cached)
    // the token before `cachedOnA`, so its cache entry ends by cachedOnA + TTL:
    // a probe sent after that must reach the store and be refused, however slow the machine is.
    const probesA: Array<{ sentAfterCache: number, sentAfterRevocation: number, status: number }> = []
    const deadA = await waitFor('the access token cached on A to stop working', async () => {
      const sentAt = Date.now()
      const res = await callEcho(a.origin, second.access_token, sessionA, 'probe')
      probesA.push({ sentAfterCache: sentAt - cachedOnA, sentAfterRevocation: sentAt - revokedAt, status: res.status })
      return res.status === 401 ? res : undefined
    }, 3000, 10)
    const served = probesA.filter((p) => p.status === 200)
    t.comment(`A served ${served.length} probe(s) from its cache after the revocation on B; the first 401 was sent ${probesA.at(-1)?.sentAfterRevocation ?? '?'} ms after the revocation, ${probesA.at(-1)?.sentAfterCache ?? '?'} ms after A cached the token`)
    t.same(served.filter((p) => p.sentAfterCache > TOKEN_CACHE_TTL), [],
      `the access token cached on A stopped working within --token-cache-ttl (${TOKEN_CACHE_TTL} ms): no probe sent later than that was served`)
    t.ok(probesA.every((p) => p.status === 200 || p.status === 401), 'A answered only 200 (cached) or 401 meanwhile', { probesA })
    t.match(deadA.headers['www-authenticate'], /error="invalid_token"/, 'A: 401 invalid_token')

    const newRefreshOnA = await refresh(a.origin, client, second.refresh_token)
    t.equal(newRefreshOnA.status, 400, 'A: the refresh token it issued is revoked (refreshes are never cached)')
    const oldAccess = await callEcho(b.origin, first.access_token, sessionA, 'after')
    t.equal(oldAccess.status, 401, 'B: the first access token of the grant is refused too')
    const oldAccessA = await callEcho(a.origin, first.access_token, sessionA, 'after')
    t.equal(oldAccessA.status, 401, 'A: the first access token of the grant is refused too')
  })

  await t.test('two-replica test (issue 15 finding 9): failed sign-ins are counted per address across both replicas; the 11th attempt is refused', async (t) => {
    const address = { 'x-forwarded-for': '198.51.100.23' }
    const pending = await beginLogin(a.origin, publicUrl, client)
    // A user name that does not exist: only the address limit applies, not the per-user backoff.
    const wrong = { flow: pending.flow, csrf: pending.csrf, username: 'not-a-user', password: 'not the password' }
    const statuses: string[] = []
    for (const [replica, times] of [[a, 6], [b, 5]] as const) {
      for (let i = 0; i < times; i++) {
        const res = await pending.browser.postForm(`${replica.origin}/login`, wrong, address)
        statuses.push(`${replica === a ? 'A' : 'B'}:${res.status}`)
      }
    }
    t.same(statuses, ['A:401', 'A:401', 'A:401', 'A:401', 'A:401', 'A:401', 'B:401', 'B:401', 'B:401', 'B:401', 'B:429'],
      '6 failures on A + 4 on B are answered, the 11th (on B) is 429: B continues A\'s count')
    const right = await pending.browser.postForm(`${a.origin}/login`, { ...wrong, username: 'gateway_user', password: 'gateway_pass' }, address)
    t.equal(right.status, 429, 'A refuses this address now too, even with the right password')
    t.match(right.body, /Too many failed sign-ins/, 'the 429 page')
    const other = await pending.browser.postForm(`${b.origin}/login`, wrong, { 'x-forwarded-for': '198.51.100.24' })
    t.equal(other.status, 401, 'another address is not limited')
  })

  t.ok(a.alive && b.alive, 'both replicas still run')
})
