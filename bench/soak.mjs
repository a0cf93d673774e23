// `npm run soak`: 1,000 open event streams (100 users, 10 each) while the users keep calling tools and refreshing
// their tokens for 60 s, against `node dist/server.js`. Pass: no error of any kind, every stream still open at the
// end, and the gateway's RSS drifting ≤ 5 MB from the end of the warm-up to the end.
//
//   node bench/soak.mjs [--store memory|redis] [--seconds 60] [--warmup 15] [--refresh-every 100]
//
// Loopback only, bounded in time.
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { address, callTool, openStream, pool, refresh, signIn, startLiveGateway } from './live.mjs'

const { values } = parseArgs({
  options: {
    store: { type: 'string', default: 'memory' },
    seconds: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '15' },
    'refresh-every': { type: 'string', default: '100' }
  }
})
// Each refresh keeps state by design until its tokens' lifetimes end (the new access and refresh records, and the
// rotated token as a reuse marker), about 2.5 KB in the memory store: at one refresh every 100 of a user's calls
// (several a minute, where real clients refresh hourly) that is about 2 MB over the run.
const REFRESH_EVERY = Number(values['refresh-every'])
const USERS = 100
const STREAMS_PER_USER = 10
const CALLERS = 16
const seconds = Number(values.seconds)
const warmup = Number(values.warmup)

const started = Date.now()
const log = (msg) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`)
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]

const gateway = await startLiveGateway({
  logFile: `/tmp/soak-gateway-${values.store}.log`,
  // The heap left after each full collection, beside RSS: RSS also holds the garbage since the last one.
  nodeFlags: ['--trace-gc'],
  args: ['--log-level', 'warn', ...(values.store === 'redis' ? ['--store', 'redis://127.0.0.1:6379/0', '--store-prefix', `soak:${process.pid}:`] : [])]
})
let exitCode = 0
try {
  log(`gateway on ${gateway.origin} (${values.store}); signing in ${USERS} users`)
  const users = []
  await pool(USERS, 10, async (i) => { users.push(await signIn(gateway, address(1, i))) })
  const streams = []
  await pool(USERS * STREAMS_PER_USER, 50, async (i) => { streams.push(await openStream(gateway, users[i % USERS], 'soak')) })
  log(`${streams.length} streams open`)

  const counts = { toolCalls: 0, refreshes: 0, errors: 0, events: 0 }
  const errors = []
  const fail = (what) => { counts.errors++; if (errors.length < 10) errors.push(what) }
  const rss = []
  const deadline = Date.now() + seconds * 1000
  const sampler = setInterval(() => rss.push({ t: (Date.now() - started) / 1000, kb: gateway.rssKb() }), 1000)
  const soakStart = (Date.now() - started) / 1000
  // Some events on every stream now and then, as a server pushes notifications.
  const pusher = (async () => {
    while (Date.now() < deadline) {
      await sleep(5000)
      const sent = await gateway.upstream.call('emit', { tag: 'soak', n: 1, intervalMs: 0 }).catch((err) => { fail(`emit: ${err.message}`); return undefined })
      if (sent !== undefined) counts.events += sent.streams
    }
  })()
  // Each caller owns every CALLERS-th user, so no user ever has two requests in flight: concurrent refreshes
  // of one grant are the replicas issue's subject (#16, #22), not this run's.
  const call = async (user, round) => {
    if (round % REFRESH_EVERY === REFRESH_EVERY - 1) {
      const status = await refresh(gateway, user).catch((err) => err.message)
      if (status === 200) counts.refreshes++
      else fail(`refresh: ${status}`)
    }
    const status = await callTool(gateway, user).catch((err) => err.message)
    if (status === 200) counts.toolCalls++
    else fail(`tool call: ${status}`)
  }
  const callers = Promise.all(Array.from({ length: CALLERS }, async (_, caller) => {
    for (let round = 0; Date.now() < deadline; round++) {
      for (let u = caller; u < USERS && Date.now() < deadline; u += CALLERS) await call(users[u], round)
    }
  }))
  await Promise.all([pusher, callers])
  clearInterval(sampler)

  let streamsOpen = 0
  for (const close of streams) if (close()) streamsOpen++
  const errorLines = gateway.errorLines()
  const afterWarmup = rss.filter((s) => s.t >= soakStart + warmup)
  const firstKb = median(afterWarmup.slice(0, 5).map((s) => s.kb))
  const lastKb = median(afterWarmup.slice(-5).map((s) => s.kb))
  const summary = {
    store: values.store,
    seconds,
    refreshEvery: REFRESH_EVERY,
    streams: { opened: streams.length, stillOpen: streamsOpen },
    ...counts,
    errorLogLines: errorLines.length,
    rssMb: {
      afterWarmup: Number((firstKb / 1024).toFixed(1)),
      end: Number((lastKb / 1024).toFixed(1)),
      drift: Number(((lastKb - firstKb) / 1024).toFixed(1))
    },
    liveHeapAfterFullCollectionsMb: gateway.liveHeapsMb(),
    rssSamplesMb: rss.map((s) => Number((s.kb / 1024).toFixed(1)))
  }
  process.stdout.write(`${JSON.stringify(summary)}\n`)
  const verdicts = [
    ['no error', counts.errors === 0 && errorLines.length === 0],
    ['every stream still open', streamsOpen === USERS * STREAMS_PER_USER],
    ['RSS drift after warm-up ≤ 5 MB', lastKb - firstKb <= 5 * 1024]
  ]
  for (const [what, ok] of verdicts) {
    process.stdout.write(`${ok ? 'PASS' : 'FAIL'}  ${what}\n`)
    if (!ok) exitCode = 1
  }
  for (const error of errors) process.stdout.write(`  ${error}\n`)
  for (const line of errorLines.slice(0, 5)) process.stdout.write(`  ${line.slice(0, 300)}\n`)
} catch (err) {
  process.stderr.write(`${err.stack}\n`)
  exitCode = 1
} finally {
  await gateway.stop()
}
process.exit(exitCode)
