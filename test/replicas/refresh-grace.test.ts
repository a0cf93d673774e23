import t from 'tap'
import { startFakeGithub } from '../helpers/fake-github.js'
import { startFakeMcp } from '../helpers/fake-mcp.js'
import { SECRET } from '../helpers/gateway.js'
import { GatewayProcess, callEcho, freePort, gatewayFlags, loginFully, refresh, register, type Tokens } from '../helpers/process.js'
import { SHARED_REDIS_URL, deletePrefix, testPrefix } from '../helpers/redis.js'

/*
 * Issue 22 finding 1 across replicas: a client that sends one refresh token twice at once (Gemini CLI does,
 * one refresh per request in flight) reaches two gateway processes on one Redis, with the default
 * --refresh-grace. Both answers must be the same pair, and the client must go on with whichever it kept.
 */

const RUNS = 50
const CYCLES = 3

const github = await startFakeGithub({})
t.teardown(() => github.close())
const mcp = await startFakeMcp({ isValidToken: (token) => github.isValidAccessToken(token) })
t.teardown(() => mcp.close())
const prefix = testPrefix('replica-refresh-grace')
t.teardown(async () => { await deletePrefix(SHARED_REDIS_URL, prefix) })

const [portA, portB] = [await freePort(), await freePort()] as [number, number]
const publicUrl = `http://127.0.0.1:${portA}`
const flags = (port: number): string[] => gatewayFlags({ port, publicUrl, store: SHARED_REDIS_URL, storePrefix: prefix, secret: SECRET, github, upstreamRs: mcp.url, extra: ['--rate-limit-token', '100000', '--rate-limit-sign-in', '100000'] })

t.test('issue 22 finding 1: one refresh token sent to both replicas at once, again and again, never signs the client out', async (t) => {
  const [a, b] = await Promise.all([
    GatewayProcess.start(t, portA, flags(portA), {}, 40_000),
    GatewayProcess.start(t, portB, flags(portB), {}, 40_000)
  ])
  t.teardown(() => { if (!t.passing()) t.comment(`replica A:\n${a.output}\nreplica B:\n${b.output}`) })
  const client = await register(a.origin)

  let differentPairs = 0
  let refused = 0
  let deadAccess = 0
  for (let run = 0; run < RUNS; run++) {
    let current = (await loginFully(a.origin, publicUrl, client)).refresh_token
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const answers = await Promise.all([refresh(a.origin, client, current), refresh(b.origin, client, current)])
      if (answers.some((answer) => answer.status !== 200)) {
        refused++
        break
      }
      const [x, y] = answers.map((answer) => answer.json<Tokens>()) as [Tokens, Tokens]
      if (x.access_token !== y.access_token || x.refresh_token !== y.refresh_token) differentPairs++
      // The client keeps either answer: alternate, so both replicas' answers are used.
      const kept = (run + cycle) % 2 === 0 ? x : y
      if ((await callEcho(cycle % 2 === 0 ? b.origin : a.origin, kept.access_token, undefined, 'kept')).status === 401) deadAccess++
      current = kept.refresh_token
    }
  }
  const output = a.output + b.output
  t.comment(`${RUNS} sign-ins × ${CYCLES} doubled refreshes across replicas: ${refused} refused, ${differentPairs} answered with two pairs, ${deadAccess} kept access tokens refused`)
  t.equal(refused, 0, 'every refresh answered')
  t.equal(differentPairs, 0, 'both replicas answer with the same pair')
  t.equal(deadAccess, 0, 'the kept access token works on the other replica')
  t.notMatch(output, /refresh_reuse_detected|grant_revoked/, 'no reuse detected, no grant revoked')
})
