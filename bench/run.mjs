// `npm run bench`: the gateway's /mcp proxy against the plainest Fastify + undici proxy, side by side,
// in one run, on one machine. See bench/README.md for what is measured and why.
//
//   node bench/run.mjs [--quick] [--profile | --no-profile]
//
// --quick: 1 repetition of 1 s runs (a smoke test; the figures are not worth quoting).
// --profile: always profile; --no-profile: never; default: profile when the gateway misses a target.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { MCP_HEADERS, RPC_BODY, elapsedS, load, log, median, percentile, round, scenario, settings, startGateway, startReference, startUpstreamAndReference, stopAll, table } from './harness.mjs'
import { analyseProfile } from './profile.mjs'

const args = new Set(process.argv.slice(2))
const QUICK = args.has('--quick')
const PROFILE = args.has('--profile') ? 'always' : args.has('--no-profile') ? 'never' : 'auto'
if (QUICK) Object.assign(settings, { duration: 1, warmup: 1, reps: 1 })
const SSE_ROUNDS = QUICK ? 1 : 4
const SSE_EVENTS = QUICK ? 50 : 250 // per round and target
const SSE_INTERVAL_MS = 2
const IDLE_STREAMS = QUICK ? 200 : 1000
const PROFILE_SECONDS = QUICK ? 2 : 4

const benchDir = fileURLToPath(new URL('.', import.meta.url))
const file = (name) => fileURLToPath(new URL(name, import.meta.url))

// ---------------------------------------------------------------------------------------------
// SSE streams (node:http client in this process)

const streamAgent = new http.Agent({ keepAlive: false, maxSockets: Infinity })

/** Opens GET /mcp?tag=…; resolves with the request once the response headers are in (or on timeout). */
function openStream (target, tag, { onEvent, timeoutMs = 5000 } = {}) {
  return new Promise((resolve) => {
    const state = { req: null, res: null, headers: false }
    const timer = setTimeout(() => resolve(state), timeoutMs)
    state.req = http.request(`${target.origin}/mcp?tag=${tag}`, {
      method: 'GET',
      agent: streamAgent,
      headers: { accept: 'text/event-stream', authorization: `Bearer ${target.token}`, 'mcp-protocol-version': '2025-06-18' }
    }, (res) => {
      state.res = res
      state.headers = res.statusCode === 200
      clearTimeout(timer)
      let buffer = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => {
        const now = process.hrtime.bigint()
        if (onEvent === undefined) return
        buffer += chunk
        let end
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const event = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const m = /"t":"(\d+)"/.exec(event)
          if (m !== null) onEvent(Number(now - BigInt(m[1])) / 1e6)
        }
      })
      res.on('error', () => {})
      resolve(state)
    })
    state.req.on('error', () => { clearTimeout(timer); resolve(state) })
    state.req.end()
  })
}

async function waitFor (what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return true
    await sleep(50)
  }
  log(`gave up waiting for ${what} after ${timeoutMs} ms`)
  return false
}

async function sseLatency (targets, upstream) {
  const samples = Object.fromEntries(targets.map((t) => [t.name, []]))
  const streams = []
  for (const t of targets) {
    const s = await openStream(t, `lat-${t.name}`, { onEvent: (ms) => samples[t.name].push(ms) })
    if (!s.headers) throw new Error(`SSE stream through ${t.name} got no headers`)
    streams.push(s)
  }
  for (let r = 0; r < SSE_ROUNDS; r++) {
    const order = r % 2 === 0 ? targets : [...targets].reverse()
    for (const t of order) await upstream.call('emit', { tag: `lat-${t.name}`, n: SSE_EVENTS, intervalMs: SSE_INTERVAL_MS })
  }
  await sleep(100)
  for (const s of streams) s.req.destroy()
  const out = {}
  for (const t of targets) {
    const xs = samples[t.name]
    out[t.name] = { events: xs.length, expected: SSE_ROUNDS * SSE_EVENTS, p50: round(percentile(xs, 50), 3), p99: round(percentile(xs, 99), 3) }
  }
  return out
}

/**
 * `name` ÷ `base` on `key`: the median over repetitions of the ratio within each, where the two ran in adjacent
 * slots. The machine drifts inside a scenario (the upstream alone has gone from 58 to 36 µs per request between
 * repetitions), and a ratio of the two medians can pair runs taken far apart.
 */
const pairedRatio = (targets, name, base, key) => median(targets[name].runs.map((run, i) => run[key] / targets[base].runs[i][key]))

/**
 * Memory one idle stream holds: its objects (heap used), its buffers (external) and its native allocations
 * (sockets, parsers: RSS growth outside V8's resident heap pages). Not RSS itself: RSS also grows by the heap
 * pages V8 touches for the first time while the streams open, which depends on how many the process had
 * touched before (for the same 14.2 KB of heap per stream, 20 to 37 KB of RSS: bench/README.md).
 */
const idleKB = (idle) => round(idle.heapUsedKBPerStream + idle.externalKBPerStream + idle.nativeKBPerStream, 1)

async function idleStreams (target, upstream) {
  const tag = `idle-${target.name}`
  const openCount = async () => (await upstream.call('stats')).open[tag] ?? 0
  // Warm the GET path (JIT, lazily built objects) so the baseline is not charged for it.
  const warm = await Promise.all(Array.from({ length: 20 }, () => openStream(target, `${tag}-warm`)))
  for (const s of warm) s.req.destroy()
  await waitFor(`${tag}-warm streams to close`, async () => ((await upstream.call('stats')).open[`${tag}-warm`] ?? 0) === 0, 5000)
  const m0 = await target.proc.call('mem')
  const u0 = await upstream.call('mem')
  const pending = []
  // 100 at a time, so the listen backlogs never overflow.
  for (let i = 0; i < IDLE_STREAMS; i += 100) {
    const batch = []
    for (let j = i; j < Math.min(IDLE_STREAMS, i + 100); j++) batch.push(openStream(target, tag, { timeoutMs: 10_000 }))
    pending.push(...batch)
    await waitFor(`${i + batch.length} upstream streams`, async () => (await openCount()) >= i + batch.length, 5000)
  }
  const streams = await Promise.all(pending)
  const withHeaders = streams.filter((s) => s.headers).length
  await sleep(300)
  const m1 = await target.proc.call('mem')
  const u1 = await upstream.call('mem')
  const upstreamOpen = await openCount()
  const t0 = Date.now()
  for (const s of streams) s.req.destroy()
  await waitFor(`${tag} streams to close upstream`, async () => (await openCount()) === 0, 10_000)
  const closeMs = Date.now() - t0
  const per = (a, b, key) => round((b[key] - a[key]) / IDLE_STREAMS / 1024, 1)
  const native = (m) => ({ native: m.rss - m.heapPhysical })
  return {
    streams: IDLE_STREAMS,
    withHeaders,
    upstreamOpen,
    rssKBPerStream: per(m0, m1, 'rss'),
    heapPagesKBPerStream: per(m0, m1, 'heapPhysical'),
    nativeKBPerStream: per(native(m0), native(m1), 'native'),
    heapUsedKBPerStream: per(m0, m1, 'heapUsed'),
    externalKBPerStream: per(m0, m1, 'external'),
    rssMBBefore: round(m0.rss / 2 ** 20, 1),
    rssMBAfter: round(m1.rss / 2 ** 20, 1),
    upstreamRssKBPerStream: per(u0, u1, 'rss'),
    closePropagationMs: closeMs
  }
}

// ---------------------------------------------------------------------------------------------
// Profiles: separate processes started with --cpu-prof, so the measured ones run unprofiled.

async function profileOne (name, startTarget, profDir) {
  const dir = `${profDir}/${name}`
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const target = { name, ...await startTarget(['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=200']) }
  await load(target, { connections: 10, duration: settings.warmup })
  const from = process.hrtime.bigint() / 1000n
  const r = await load(target, { connections: 10, duration: PROFILE_SECONDS })
  const to = process.hrtime.bigint() / 1000n
  await target.proc.stop()
  const profile = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
  if (profile === undefined) throw new Error(`no .cpuprofile written for ${name}`)
  return analyseProfile(`${dir}/${profile}`, { fromUs: Number(from), toUs: Number(to), requests: r.requests })
}

// ---------------------------------------------------------------------------------------------

async function main () {
  const machine = {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memGB: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    fastify: JSON.parse(readFileSync(new URL('../node_modules/fastify/package.json', import.meta.url))).version,
    undici: JSON.parse(readFileSync(new URL('../node_modules/undici/package.json', import.meta.url))).version,
    autocannon: JSON.parse(readFileSync(new URL('../node_modules/autocannon/package.json', import.meta.url))).version,
    loadavgAtStart: os.loadavg().map((x) => round(x, 2)),
    date: new Date().toISOString()
  }
  log(`machine: ${machine.nproc} cores (${machine.cpu}), node ${machine.node}, load average ${machine.loadavgAtStart.join(' ')}`)

  const { upstream: upstreamProc, upstreamOrigin, upstreamToken, reference } = await startUpstreamAndReference()
  const direct = { name: 'direct', origin: upstreamOrigin, token: upstreamToken, proc: upstreamProc }

  const gateway = { name: 'gateway', ...await startGateway(upstreamOrigin, upstreamToken) }
  log(`upstream pid ${upstreamProc.pid}, reference pid ${reference.proc.pid}, gateway pid ${gateway.proc.pid} (token via the login flow: ${gateway.token.slice(0, 8)}…)`)

  // Sanity: the same bytes through every hop; the gateway refuses a wrong token; the upstream saw no 401.
  const sanity = {}
  for (const t of [direct, reference, gateway]) {
    for (const path of ['/mcp', '/mcp?size=100k']) {
      const res = await fetch(`${t.origin}${path}`, { method: 'POST', headers: { ...MCP_HEADERS, authorization: `Bearer ${t.token}` }, body: RPC_BODY })
      const body = Buffer.from(await res.arrayBuffer())
      if (res.status !== 200) throw new Error(`sanity: ${t.name} ${path} answered ${res.status}`)
      sanity[`${t.name} ${path}`] = body.length
    }
  }
  const sizes = new Set(Object.entries(sanity).filter(([k]) => !k.endsWith('100k')).map(([, v]) => v))
  if (sizes.size !== 1) throw new Error(`sanity: small bodies differ across hops: ${JSON.stringify(sanity)}`)
  const wrong = await fetch(`${gateway.origin}/mcp`, { method: 'POST', headers: { ...MCP_HEADERS, authorization: 'Bearer gwa_wrong' }, body: RPC_BODY })
  await wrong.arrayBuffer()
  if (wrong.status !== 401) throw new Error(`sanity: the gateway answered ${wrong.status} to a wrong token`)
  log(`sanity ok: small body ${[...sizes][0]} B, large ${sanity['gateway /mcp?size=100k']} B through every hop`)

  const results = { machine, settings: { quick: QUICK, durationS: settings.duration, reps: settings.reps, warmupS: settings.warmup }, scenarios: {} }

  // 1. Memory per idle SSE stream, first, while both proxies are in the same fresh state.
  log(`idle SSE streams: ${IDLE_STREAMS} through each proxy`)
  results.idle = {}
  for (const t of [reference, gateway]) {
    results.idle[t.name] = await idleStreams(t, upstreamProc)
    log(`idle ${t.name}: ${JSON.stringify(results.idle[t.name])}`)
  }

  // 2. SSE relay latency, one stream per hop, the upstream emitting to one hop at a time.
  log(`SSE relay latency: ${SSE_ROUNDS} x ${SSE_EVENTS} events per hop, ${SSE_INTERVAL_MS} ms apart`)
  results.sse = await sseLatency([direct, reference, gateway], upstreamProc)
  log(`SSE: ${JSON.stringify(results.sse)}`)

  // 3. Throughput, latency and CPU per request.
  results.scenarios.small10 = await scenario('small POST, 10 conns', [direct, reference, gateway], { connections: 10 })
  results.scenarios.small100 = await scenario('small POST, 100 conns', [reference, gateway], { connections: 100 })
  results.scenarios.large10 = await scenario('100 KB POST, 10 conns', [reference, gateway], { connections: 10, path: '/mcp?size=100k' })
  // What each full collection of that scenario had to mark: its CPU follows them (bench/README.md).
  results.heapUsedMBAfterLarge = {}
  for (const t of [reference, gateway]) results.heapUsedMBAfterLarge[t.name] = round((await t.proc.call('mem')).heapUsed / 2 ** 20, 1)

  // 4. The gateway with its state in Redis (issue 4: at least 0.9x the in-memory gateway's req/s).
  const gatewayRedis = { name: 'gw+redis', ...await startGateway(upstreamOrigin, upstreamToken, { env: { GATEWAY_STORE: process.env.BENCH_REDIS ?? 'redis://127.0.0.1:6379/0' } }) }
  results.scenarios.redis = await scenario('small POST, 10 conns, Redis store', [gateway, gatewayRedis], { connections: 10 })
  await gatewayRedis.proc.stop()

  // 5. The gateway as `npm start` runs it: Fastify's request log at info (to /dev/null).
  const gatewayLog = { name: 'gw+log', ...await startGateway(upstreamOrigin, upstreamToken, { env: { GATEWAY_LOG: 'info' } }) }
  results.scenarios.logging = await scenario('small POST, 10 conns, logger on', [gateway, gatewayLog], { connections: 10 })
  await gatewayLog.proc.stop()

  const up = await upstreamProc.call('stats')
  results.upstreamStats = up
  if (up.unauthorized > 0) throw new Error(`the upstream refused ${up.unauthorized} requests`)

  // Targets.
  const s10 = results.scenarios.small10.targets
  const s100 = results.scenarios.small100.targets
  const l10 = results.scenarios.large10.targets
  const idleGatewayKB = idleKB(results.idle.gateway)
  const vsReference = (targets, key) => pairedRatio(targets, 'gateway', 'reference', key)
  const atLeast = (target, value, goal) => ({ target, value: round(value, 2), goal: `>= ${goal.toFixed(1)}`, ok: value >= goal })
  const atMost = (target, value, goal) => ({ target, value: round(value, 2), goal: `<= ${goal.toFixed(1)}`, ok: value <= goal })
  const checks = [
    atLeast('req/s gateway/reference, small POST 10 conns', vsReference(s10, 'rps'), 1),
    atLeast('req/s gateway/reference, small POST 100 conns', vsReference(s100, 'rps'), 1),
    atLeast('req/s gateway/reference, 100 KB 10 conns', vsReference(l10, 'rps'), 1),
    atMost('CPU/request gateway/reference, small POST 10 conns', vsReference(s10, 'cpuUsPerReq'), 1),
    atMost('CPU/request gateway/reference, small POST 100 conns', vsReference(s100, 'cpuUsPerReq'), 1),
    atMost('CPU/request gateway/reference, 100 KB 10 conns', vsReference(l10, 'cpuUsPerReq'), 1),
    { target: 'SSE relay p50 gateway - reference (ms)', value: round(results.sse.gateway.p50 - results.sse.reference.p50, 3), goal: '<= 0.1', ok: results.sse.gateway.p50 - results.sse.reference.p50 <= 0.1 },
    atLeast('req/s gateway on Redis / in memory, small POST 10 conns', pairedRatio(results.scenarios.redis.targets, 'gw+redis', 'gateway', 'rps'), 0.9),
    { target: 'memory held per idle SSE stream, gateway (KB): heap + external + native', value: idleGatewayKB, goal: '<= 20', ok: idleGatewayKB <= 20 && results.idle.gateway.withHeaders === IDLE_STREAMS }
  ]
  results.checks = checks

  // 5. Profiles, when a target is missed (or asked for).
  if (PROFILE === 'always' || (PROFILE === 'auto' && checks.some((c) => !c.ok))) {
    log('profiling gateway and reference (small POST, 10 conns), each in a fresh process under --cpu-prof')
    const profDir = `${benchDir}profiles`
    results.profiles = {
      gateway: await profileOne('gateway', (execArgv) => startGateway(upstreamOrigin, upstreamToken, { execArgv }), profDir),
      reference: await profileOne('reference', (execArgv) => startReference(upstreamOrigin, upstreamToken, { execArgv }), profDir)
    }
  }

  await stopAll()
  results.elapsedS = round(elapsedS(), 1)
  writeFileSync(file('results.json'), `${JSON.stringify(results, null, 2)}\n`)
  process.stdout.write(report(results))
}

function report (r) {
  const out = []
  out.push(`mcp-oauth-gateway proxy bench — ${r.machine.nproc} cores, node ${r.machine.node}, fastify ${r.machine.fastify}, undici ${r.machine.undici}; medians of ${r.settings.reps} x ${r.settings.durationS} s runs, alternating order; ratios are medians of the per-repetition ratios\n`)
  const rows = [['scenario', 'target', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'of it GC pauses', 'upstream µs/req', 'mark-compacts/1k req', 'req/s vs ref', 'CPU vs ref']]
  for (const s of Object.values(r.scenarios)) {
    const base = s.targets.reference === undefined ? 'gateway' : 'reference'
    for (const [name, t] of Object.entries(s.targets)) {
      const vsBase = (key) => `${pairedRatio(s.targets, name, base, key).toFixed(2)}x`
      rows.push([s.label, name, t.rps, t.p50, t.p99, t.cpuUsPerReq, t.gcPauseUsPerReq, name === 'direct' ? '(same)' : t.upstreamCpuUsPerReq, t.markCompactsPer1k, vsBase('rps'), vsBase('cpuUsPerReq')])
    }
  }
  out.push(table(rows))
  out.push('\nSSE relay latency (upstream write → client receive), ms')
  const sse = [['hop', 'events', 'p50', 'p99', 'p50 - reference']]
  for (const [name, t] of Object.entries(r.sse)) sse.push([name, `${t.events}/${t.expected}`, t.p50, t.p99, round(t.p50 - r.sse.reference.p50, 3)])
  out.push(table(sse))
  out.push(`\nIdle SSE streams (${Object.values(r.idle)[0].streams} per proxy)`)
  const idle = [['proxy', 'headers', 'held KB/stream', 'heapUsed', 'external', 'native', 'RSS KB/stream', 'of it V8 heap pages', 'RSS MB before→after', 'upstream RSS KB/stream', 'close propagation ms']]
  for (const [name, t] of Object.entries(r.idle)) {
    idle.push([name, t.withHeaders, idleKB(t), t.heapUsedKBPerStream, t.externalKBPerStream, t.nativeKBPerStream, t.rssKBPerStream, t.heapPagesKBPerStream, `${t.rssMBBefore}→${t.rssMBAfter}`, t.upstreamRssKBPerStream, t.closePropagationMs])
  }
  out.push(table(idle))
  out.push('\nTargets')
  out.push(table([['target', 'value', 'goal', 'met'], ...r.checks.map((c) => [c.target, c.value, c.goal, c.ok ? 'yes' : 'NO'])]))
  out.push(`\nheap used after the 100 KB scenario: ${Object.entries(r.heapUsedMBAfterLarge).map(([name, mb]) => `${name} ${mb} MB`).join(', ')}`)
  if (r.profiles !== undefined) {
    for (const [name, p] of Object.entries(r.profiles)) {
      out.push(`\nProfile: ${name} (${p.requests} requests in the window, ${p.windowed ? 'load window only' : 'whole process'}; ${p.totalUsPerReq} µs sampled per request)`)
      out.push(table([['category (self time)', 'µs/req', '%'], ...p.categories.map((c) => [c.name, c.usPerReq, c.percent])]))
      out.push(`owner: node core and native time charged to the package or file that called it (${name})`)
      out.push(table([['owner', 'µs/req', '%'], ...p.owners.map((c) => [c.name, c.usPerReq, c.percent])]))
      out.push(`top self time (${name})`)
      out.push(table([['function', 'where', 'µs/req', '%'], ...p.topSelf.slice(0, 20).map((f) => [f.name, f.where, f.usPerReq, f.percent])]))
      if (p.topGatewayInclusive.length > 0) {
        out.push(`inclusive time of gateway code (${name})`)
        out.push(table([['function', 'where', 'µs/req', '%'], ...p.topGatewayInclusive.slice(0, 20).map((f) => [f.name, f.where, f.usPerReq, f.percent])]))
      }
    }
    if (r.profiles.gateway !== undefined && r.profiles.reference !== undefined) {
      out.push('\nwhere the gateway spends more than the reference (self µs/req by category)')
      for (const view of ['categories', 'owners']) {
        const ref = Object.fromEntries(r.profiles.reference[view].map((c) => [c.name, c.usPerReq]))
        const rows2 = r.profiles.gateway[view].map((c) => [c.name, c.usPerReq, ref[c.name] ?? 0, round(c.usPerReq - (ref[c.name] ?? 0), 1)])
        out.push(table([[view === 'owners' ? 'owner' : 'category (self)', 'gateway', 'reference', 'difference'], ...rows2]))
      }
    }
  }
  out.push(`\nwritten to bench/results.json (${r.elapsedS} s)\n`)
  return out.join('\n')
}

main().catch(async (err) => {
  log(`bench failed: ${err.stack ?? err}`)
  await stopAll()
  process.exit(1)
})
