// `npm run abuse`: what one person without an account can do to a running gateway (issue 15). 100 users sign in
// and keep an MCP session and an event stream open; then 1,000 attacker addresses (127.0.x.y) send 50,000
// registrations, 200,000 /authorize requests and 20,000 malformed requests. Afterwards every user must still call a
// tool and refresh, memory must stay bounded, and no response may be a 5xx other than the 503 a full bound answers.
//
//   node bench/abuse.mjs [--store memory|redis] [--scale 1] [--expiry-wait 150]
//
// `--scale 0.1` sends a tenth of the traffic (a quick look). Loopback only, bounded in count and time.
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { address, callTool, openStream, pool, refresh, send, signIn, startLiveGateway } from './live.mjs'

const { values } = parseArgs({ options: { store: { type: 'string', default: 'memory' }, scale: { type: 'string', default: '1' }, 'expiry-wait': { type: 'string', default: '150' } } })
const scale = Number(values.scale)
const USERS = 100
const ATTACKERS = 1000
const COUNTS = {
  register: Math.round(50_000 * scale),
  authorize: Math.round(200_000 * scale),
  badForm: Math.round(20_000 * scale)
}
const CONCURRENCY = 128
const REDIS_URL = 'redis://127.0.0.1:6379/0'
const prefix = `abuse:${process.pid}:`
// Short lifetimes for what an attacker leaves behind, so the run can watch it go.
const FLOW_TTL = 60
const UNUSED_CLIENT_TTL = 90
const LIMITS = { maxPendingSignIns: 10_000, maxUnusedClients: 10_000 }
// The README's bound: flows and upstream states, unused clients and their three index keys, what each signed-in
// user holds (client, consent, code tombstone, grant, access and refresh records, session binding, rotated tokens),
// and per attacking address a rate-limit counter for each of the 7 limited routes and a failed-login counter.
const KEY_BOUND = 2 * LIMITS.maxPendingSignIns + LIMITS.maxUnusedClients + 3 + 20 * USERS + 8 * ATTACKERS

const started = Date.now()
const log = (msg) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`)
const mb = (kb) => (kb / 1024).toFixed(1)

const gateway = await startLiveGateway({
  logFile: `/tmp/abuse-gateway-${values.store}.log`,
  // V8's own account of the heap left after each full collection: what the attack leaves live, apart from the
  // garbage RSS also holds until the next one.
  nodeFlags: ['--trace-gc'],
  args: [
    '--flow-ttl', String(FLOW_TTL), '--unused-client-ttl', String(UNUSED_CLIENT_TTL), '--log-level', 'warn',
    ...(values.store === 'redis' ? ['--store', REDIS_URL, '--store-prefix', prefix] : [])
  ]
})
const redis = values.store === 'redis' ? new Redis(REDIS_URL) : undefined
/** Keys under the run's prefix, by kind (the part before the first ':' after the prefix). */
async function redisKeys () {
  const kinds = {}
  let total = 0
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    for (const key of keys) {
      const kind = key.slice(prefix.length).split(':')[0]
      kinds[kind] = (kinds[kind] ?? 0) + 1
      total++
    }
  } while (cursor !== '0')
  return { total, kinds }
}

const results = { statuses: {}, failures: [] }
const tally = (phase, status) => {
  const byPhase = results.statuses[phase] ??= {}
  byPhase[status] = (byPhase[status] ?? 0) + 1
}

let exitCode = 0
let sampler
try {
  log(`gateway on ${gateway.origin} (${values.store}); signing in ${USERS} users`)
  const users = []
  await pool(USERS, 10, async (i) => { users.push(await signIn(gateway, address(1, i))) })
  const streams = []
  for (const user of users) streams.push(await openStream(gateway, user))
  await sleep(2000)
  const rssStart = gateway.rssKb()
  const collectionsBefore = gateway.liveHeapsMb().length
  log(`${users.length} users signed in, ${streams.length} streams open; RSS ${mb(rssStart)} MB`)

  let rssPeak = rssStart
  sampler = setInterval(() => { rssPeak = Math.max(rssPeak, gateway.rssKb()) }, 250)
  // The keys at their most: what is created early may have expired by the end of a long attack.
  let keysPeak = { total: 0 }
  const keySampler = redis === undefined
    ? undefined
    : setInterval(() => {
      redisKeys().then((keys) => { if (keys.total > keysPeak.total) keysPeak = keys }, () => {})
    }, 5000)
  const attacker = (i) => address(0, i % ATTACKERS)
  const attackerClients = []
  const json = (body) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const guard = (phase) => async (res) => {
    tally(phase, res.status)
    if (res.status >= 500 && res.status !== 503) results.failures.push(`${phase}: ${res.status} ${res.text.replace(/\s+/g, ' ').slice(0, 160)}`)
    return res
  }

  const t0 = Date.now()
  await pool(COUNTS.register, CONCURRENCY, async (i) => {
    const res = await send(gateway, attacker(i), '/register', json({ client_name: `x${i}`, redirect_uris: ['http://127.0.0.1:9/cb'], token_endpoint_auth_method: 'none' })).then(guard('register'))
    if (res.status === 201 && attackerClients.length < 1000) attackerClients.push(JSON.parse(res.text).client_id)
  })
  log(`register: ${COUNTS.register} in ${((Date.now() - t0) / 1000).toFixed(0)} s ${JSON.stringify(results.statuses.register)}`)

  const t1 = Date.now()
  await pool(COUNTS.authorize, CONCURRENCY, async (i) => {
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: attackerClients[i % attackerClients.length] ?? 'unknown',
      redirect_uri: 'http://127.0.0.1:9/cb',
      code_challenge: 'a'.repeat(43),
      code_challenge_method: 'S256',
      state: String(i)
    })
    await send(gateway, attacker(i), `/authorize?${query}`).then(guard('authorize'))
  })
  log(`authorize: ${COUNTS.authorize} in ${((Date.now() - t1) / 1000).toFixed(0)} s ${JSON.stringify(results.statuses.authorize)}`)

  // What a careless or hostile client sends to the forms and the OAuth endpoints.
  const BAD = [
    ['/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"flow":"x","csrf":"y"}' }],
    ['/login', { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<login><flow>x</flow></login>' }],
    ['/consent', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `flow=x&csrf=y&decision=approve&pad=${'a'.repeat(20_000)}` }],
    ['/consent', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' }],
    ['/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '%%%&flow=%zz' }],
    ['/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":"refresh_token"' }],
    ['/register', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"redirect_uris":' }],
    ['/revoke', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=x&token=y' }],
    ['/upstream/callback?state=forged&code=x', { method: 'GET' }],
    ['/mcp', { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer forged' }, body: '{}' }]
  ]
  const t2 = Date.now()
  await pool(COUNTS.badForm, CONCURRENCY, async (i) => {
    const [path, options] = BAD[i % BAD.length]
    await send(gateway, attacker(i), path, options).then(guard('bad input'))
  })
  log(`bad input: ${COUNTS.badForm} in ${((Date.now() - t2) / 1000).toFixed(0)} s ${JSON.stringify(results.statuses['bad input'])}`)
  clearInterval(sampler)
  const rssAfter = gateway.rssKb()
  clearInterval(keySampler)
  const keysAfter = redis === undefined ? undefined : await redisKeys()

  // The users: a tool call and a refresh each, and their streams still open.
  const check = { toolCalls: 0, refreshes: 0, streamsOpen: 0 }
  await pool(users.length, 10, async (i) => {
    const user = users[i]
    if (await callTool(gateway, user) === 200) check.toolCalls++
    if (await refresh(gateway, user) === 200) check.refreshes++
    if (await callTool(gateway, user) !== 200) check.toolCalls--
  })
  for (const close of streams) if (close()) check.streamsOpen++
  log(`users: ${check.toolCalls}/${USERS} tool calls, ${check.refreshes}/${USERS} refreshes, ${check.streamsOpen}/${USERS} streams still open`)

  const wait = Number(values['expiry-wait'])
  log(`waiting ${wait} s for pending state to expire (flows ${FLOW_TTL} s, unused clients ${UNUSED_CLIENT_TTL} s)`)
  await sleep(wait * 1000)
  const rssExpired = gateway.rssKb()
  const liveHeaps = gateway.liveHeapsMb()
  const keysExpired = redis === undefined ? undefined : await redisKeys()
  const errorLines = gateway.errorLines()

  const summary = {
    store: values.store,
    sent: COUNTS,
    statuses: results.statuses,
    fiveHundreds: results.failures.length,
    errorLogLines: errorLines.length,
    users: check,
    rssMb: {
      start: Number(mb(rssStart)),
      peak: Number(mb(rssPeak)),
      afterAttack: Number(mb(rssAfter)),
      afterExpiry: Number(mb(rssExpired))
    },
    rssGrowthMb: { peak: Number(mb(rssPeak - rssStart)), afterExpiry: Number(mb(rssExpired - rssStart)) },
    liveHeapAfterFullCollectionsMb: {
      beforeAttack: liveHeaps[collectionsBefore - 1] ?? null,
      maxSince: Math.max(...liveHeaps.slice(collectionsBefore)),
      last: liveHeaps.at(-1) ?? null
    },
    ...(keysAfter === undefined
      ? {}
      : { redisKeys: { peak: keysPeak, afterAttack: keysAfter, afterExpiry: keysExpired } }),
    durationS: Math.round((Date.now() - started) / 1000)
  }
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`)
  const verdicts = [
    ['every user calls a tool and refreshes', check.toolCalls === USERS && check.refreshes === USERS],
    ['every user\'s event stream stayed open', check.streamsOpen === USERS],
    ['no 5xx but the 503 of a full bound', results.failures.length === 0],
    ['no error-level log line', errorLines.length === 0],
    ...(redis === undefined
      ? [
          ['RSS growth at the peak ≤ 50 MB', rssPeak - rssStart <= 50 * 1024],
          ['RSS ≤ 10 MB above the start once pending state expired', rssExpired - rssStart <= 10 * 1024]
        ]
      : [['Redis keys at their peak ≤ the documented bound', Math.max(keysPeak.total, keysAfter.total) <= KEY_BOUND]])
  ]
  for (const [what, ok] of verdicts) {
    process.stdout.write(`${ok ? 'PASS' : 'FAIL'}  ${what}\n`)
    if (!ok) exitCode = 1
  }
  for (const failure of results.failures.slice(0, 10)) process.stdout.write(`  ${failure}\n`)
  for (const line of errorLines.slice(0, 5)) process.stdout.write(`  ${line.slice(0, 300)}\n`)
} catch (err) {
  process.stderr.write(`${err.stack}\n`)
  exitCode = 1
} finally {
  clearInterval(sampler)
  await gateway.stop()
  if (redis !== undefined) {
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length > 0) await redis.del(...keys)
    redis.disconnect()
  }
}
process.exit(exitCode)
