// `npm run bench`: the gateway's /mcp proxy against the plainest Fastify + undici proxy (bench/reference.mjs), in
// N fresh process pairs. See bench/README.md for what is measured and why.
//
//   node bench/run.mjs [--pairs N] [--quick] [--redis] [--profile | --no-profile]
//
// --pairs N: N fresh pairs (default 5; about 55 s each here). --quick: 1 pair, 1 run per scenario, 200 idle streams
// (a smoke test: the figures are not worth quoting). --redis: also a gateway with its state in Redis (BENCH_REDIS,
// default redis://127.0.0.1:6379/0) against the in-memory one. --profile: always profile; --no-profile: never;
// default: profile when a target is missed.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { MCP_HEADERS, RPC_BODY, elapsedS, load, log, pairedRatio, round, scenario, settings, spread, startGateway, startReference, startUpstreamAndReference, stopAll, table } from './harness.mjs'
import { analyseProfile } from './profile.mjs'
import { idleKB, idleStreams, sseLatency } from './streams.mjs'

const argv = process.argv.slice(2)
const args = new Set(argv)
const QUICK = args.has('--quick')
const PAIRS = argv.includes('--pairs') ? Number(argv[argv.indexOf('--pairs') + 1]) : QUICK ? 1 : 5
if (!Number.isInteger(PAIRS) || PAIRS < 1) throw new Error('--pairs takes a whole number ≥ 1')
const REDIS = args.has('--redis')
const PROFILE = args.has('--profile') ? 'always' : args.has('--no-profile') ? 'never' : 'auto'
if (QUICK) Object.assign(settings, { duration: 1, warmup: 1, reps: 1 })
const SSE = { rounds: QUICK ? 1 : 2, events: QUICK ? 50 : 250, intervalMs: 2 }
const IDLE_STREAMS = QUICK ? 200 : 1000
const PROFILE_SECONDS = QUICK ? 2 : 4

const benchDir = fileURLToPath(new URL('.', import.meta.url))
const file = (name) => fileURLToPath(new URL(name, import.meta.url))

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

/** The same bytes through every hop; the gateway refuses a wrong token. */
async function sanity (targets, gateway) {
  const sizes = {}
  for (const t of targets) {
    for (const path of ['/mcp', '/mcp?size=100k']) {
      const res = await fetch(`${t.origin}${path}`, { method: 'POST', headers: { ...MCP_HEADERS, authorization: `Bearer ${t.token}` }, body: RPC_BODY })
      const body = Buffer.from(await res.arrayBuffer())
      if (res.status !== 200) throw new Error(`sanity: ${t.name} ${path} answered ${res.status}`)
      sizes[`${t.name} ${path}`] = body.length
    }
  }
  const small = new Set(Object.entries(sizes).filter(([k]) => !k.endsWith('100k')).map(([, v]) => v))
  const large = new Set(Object.entries(sizes).filter(([k]) => k.endsWith('100k')).map(([, v]) => v))
  if (small.size !== 1 || large.size !== 1) throw new Error(`sanity: bodies differ across hops: ${JSON.stringify(sizes)}`)
  const wrong = await fetch(`${gateway.origin}/mcp`, { method: 'POST', headers: { ...MCP_HEADERS, authorization: 'Bearer gwa_wrong' }, body: RPC_BODY })
  await wrong.arrayBuffer()
  if (wrong.status !== 401) throw new Error(`sanity: the gateway answered ${wrong.status} to a wrong token`)
}

/** One pair: a fresh upstream, reference and gateway (and a gateway without logger), every scenario side by side. */
async function onePair (index) {
  const { upstream, upstreamOrigin, upstreamToken, reference } = await startUpstreamAndReference()
  const gateway = { name: 'gateway', ...await startGateway(upstreamOrigin, upstreamToken) }
  log(`pair ${index + 1}/${PAIRS}: upstream pid ${upstream.pid}, reference pid ${reference.proc.pid}, gateway pid ${gateway.proc.pid}`)
  await sanity([{ name: 'direct', origin: upstreamOrigin, token: upstreamToken }, reference, gateway], gateway)
  const pair = { scenarios: {} }

  // Idle streams first, while both processes are fresh; which proxy goes first alternates from pair to pair.
  pair.idle = {}
  for (const t of index % 2 === 0 ? [reference, gateway] : [gateway, reference]) {
    pair.idle[t.name] = await idleStreams(t, upstream, IDLE_STREAMS)
  }
  log(`idle KB/stream: reference ${idleKB(pair.idle.reference)}, gateway ${idleKB(pair.idle.gateway)}`)
  pair.sse = await sseLatency(index % 2 === 0 ? [reference, gateway] : [gateway, reference], upstream, SSE)
  log(`SSE p50: reference ${pair.sse.reference.p50} ms, gateway ${pair.sse.gateway.p50} ms`)

  pair.scenarios.small10 = await scenario('small POST, 10 conns', [reference, gateway], { connections: 10 })
  pair.scenarios.small100 = await scenario('small POST, 100 conns', [reference, gateway], { connections: 100 })
  pair.scenarios.large10 = await scenario('100 KB POST, 10 conns', [reference, gateway], { connections: 10, path: '/mcp?size=100k' })

  // What logging costs: the gateway as users run it against the same build with no logger.
  const quiet = { name: 'gw:log-off', ...await startGateway(upstreamOrigin, upstreamToken, { env: { GATEWAY_LOG: 'off' } }) }
  pair.scenarios.logOff = await scenario('small POST, 10 conns, logger off', [gateway, quiet], { connections: 10 })
  if (REDIS) {
    const onRedis = { name: 'gw:redis', ...await startGateway(upstreamOrigin, upstreamToken, { env: { GATEWAY_STORE: process.env.BENCH_REDIS ?? 'redis://127.0.0.1:6379/0' } }) }
    pair.scenarios.redis = await scenario('small POST, 10 conns, Redis store', [gateway, onRedis], { connections: 10 })
  }
  const stats = await upstream.call('stats')
  if (stats.unauthorized > 0) throw new Error(`the upstream refused ${stats.unauthorized} requests`)
  await stopAll()
  return pair
}

const SCENARIOS = [['small10', 'small POST, 10 conns'], ['small100', 'small POST, 100 conns'], ['large10', '100 KB POST, 10 conns']]

/** Per scenario and figure, the per-pair ratios and their median and spread; the targets. */
function summarise (pairs) {
  const rows = {}
  for (const [key, label] of SCENARIOS) {
    for (const [figure, name] of [['rps', 'req/s'], ['cpuUsPerReq', 'CPU/request']]) {
      rows[`${key}.${figure}`] = { label: `${name} gateway ÷ reference, ${label}`, ...spread(pairs.map((p) => pairedRatio(p.scenarios[key].targets, 'gateway', 'reference', figure))) }
    }
  }
  for (const [figure, name] of [['rps', 'req/s'], ['cpuUsPerReq', 'CPU/request']]) {
    rows[`logOff.${figure}`] = { label: `${name} logger off ÷ as run (info), small POST, 10 conns`, ...spread(pairs.map((p) => pairedRatio(p.scenarios.logOff.targets, 'gw:log-off', 'gateway', figure))) }
  }
  if (REDIS) rows['redis.rps'] = { label: 'req/s gateway on Redis ÷ in memory, small POST, 10 conns', ...spread(pairs.map((p) => pairedRatio(p.scenarios.redis.targets, 'gw:redis', 'gateway', 'rps'))) }
  rows.sseP50 = { label: 'SSE relay p50, gateway − reference (ms)', ...spread(pairs.map((p) => round(p.sse.gateway.p50 - p.sse.reference.p50, 3))) }
  rows.idleGateway = { label: 'memory held per idle stream, gateway (KB)', ...spread(pairs.map((p) => idleKB(p.idle.gateway))) }
  rows.idleReference = { label: 'memory held per idle stream, reference (KB)', ...spread(pairs.map((p) => idleKB(p.idle.reference))) }
  const allHeaders = pairs.every((p) => p.idle.gateway.withHeaders === p.idle.gateway.streams)
  const check = (key, goal, ok) => ({ ...rows[key], key, goal, ok })
  const checks = [
    ...SCENARIOS.map(([key]) => check(`${key}.cpuUsPerReq`, '≤ 1.05', rows[`${key}.cpuUsPerReq`].median <= 1.05)),
    ...SCENARIOS.map(([key]) => check(`${key}.rps`, '≥ 0.95', rows[`${key}.rps`].median >= 0.95)),
    check('sseP50', '≤ 0.1', rows.sseP50.median <= 0.1),
    check('idleGateway', '≤ 20', rows.idleGateway.median <= 20 && allHeaders),
    ...(REDIS ? [check('redis.rps', '≥ 0.9', rows['redis.rps'].median >= 0.9)] : [])
  ]
  return { rows, checks }
}

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
  log(`machine: ${machine.nproc} cores (${machine.cpu}), node ${machine.node}, load average ${machine.loadavgAtStart.join(' ')}; ${PAIRS} pairs`)
  const pairs = []
  for (let i = 0; i < PAIRS; i++) pairs.push(await onePair(i))
  const { rows, checks } = summarise(pairs)
  const results = {
    machine,
    command: `node bench/run.mjs ${argv.join(' ')}`.trim(),
    settings: {
      pairs: PAIRS,
      quick: QUICK,
      durationS: settings.duration,
      reps: settings.reps,
      warmupS: settings.warmup,
      idleStreams: IDLE_STREAMS,
      sse: SSE
    },
    rows,
    checks,
    pairs
  }

  if (PROFILE === 'always' || (PROFILE === 'auto' && checks.some((c) => !c.ok))) {
    log('profiling gateway and reference (small POST, 10 conns), each in a fresh process under --cpu-prof')
    const profDir = `${benchDir}profiles`
    const { upstreamOrigin, upstreamToken } = await startUpstreamAndReference()
    results.profiles = {
      gateway: await profileOne('gateway', (execArgv) => startGateway(upstreamOrigin, upstreamToken, { execArgv }), profDir),
      reference: await profileOne('reference', (execArgv) => startReference(upstreamOrigin, upstreamToken, { execArgv }), profDir)
    }
    await stopAll()
  }
  results.elapsedS = round(elapsedS(), 1)
  writeFileSync(file('results.json'), `${JSON.stringify(results, null, 2)}\n`)
  process.stdout.write(report(results))
}

const fmt = (x) => (Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2))

function report (r) {
  const out = []
  out.push(`mcp-oauth-gateway proxy bench — ${r.machine.date}, ${r.machine.nproc} cores, node ${r.machine.node}, fastify ${r.machine.fastify}, undici ${r.machine.undici}`)
  out.push(`\`${r.command}\`: ${r.settings.pairs} fresh pairs; per pair and scenario ${r.settings.reps} x ${r.settings.durationS} s runs per process, alternating; ratio of a pair = median of its runs' ratios; below: median of the pairs [min–max]\n`)
  out.push(table([['figure', 'median', 'spread (min–max)', 'per pair'], ...Object.values(r.rows).map((x) => [x.label, fmt(x.median), `${fmt(x.min)}–${fmt(x.max)}`, x.pairs.map(fmt).join(' ')])]))
  out.push('\nTargets')
  out.push(table([['target', 'median', 'spread', 'goal', 'result'], ...r.checks.map((c) => [c.label, fmt(c.median), `${fmt(c.min)}–${fmt(c.max)}`, c.goal, c.ok ? 'PASS' : 'FAIL'])]))
  const last = r.pairs.at(-1)
  out.push('\nLast pair, absolute figures (medians of its runs)')
  const rows = [['scenario', 'process', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'upstream µs/req', 'mark-compacts/1k req']]
  for (const s of Object.values(last.scenarios)) {
    for (const [name, t] of Object.entries(s.targets)) {
      rows.push([s.label, name, t.rps, t.p50, t.p99, t.cpuUsPerReq, t.upstreamCpuUsPerReq, t.markCompactsPer1k])
    }
  }
  out.push(table(rows))
  out.push(table([['idle streams', 'with headers', 'held KB/stream', 'heapUsed', 'external', 'native', 'RSS KB/stream', 'close ms'], ...Object.entries(last.idle).map(([name, t]) => [name, `${t.withHeaders}/${t.streams}`, idleKB(t), t.heapUsedKBPerStream, t.externalKBPerStream, t.nativeKBPerStream, t.rssKBPerStream, t.closePropagationMs])]))
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
        const rows2 = r.profiles.gateway[view].map((c) => [
          c.name,
          c.usPerReq,
          ref[c.name] ?? 0,
          round(c.usPerReq - (ref[c.name] ?? 0), 1)
        ])
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
