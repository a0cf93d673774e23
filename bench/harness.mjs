// Shared by run.mjs and ablate.mjs: child processes, autocannon runs, medians, tables.
import autocannon from 'autocannon'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { initializeSession, obtainToken } from './flow.mjs'
import { start } from './ipc.mjs'

export const settings = { duration: 1, warmup: 1, reps: 3 }
const file = (name) => fileURLToPath(new URL(name, import.meta.url))
const started = Date.now()
export const log = (msg) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${msg}\n`)
export const elapsedS = () => (Date.now() - started) / 1000

// A JSON-RPC tools/call request, ~120 B, as an MCP client sends it.
export const RPC_BODY = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hello from the bench' } } })
// What an MCP client sends after initialize: the transport headers and the session id the server gave it.
export const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', 'mcp-session-id': 'bench-session' }

const children = []
let upstreamProc // the fake upstream, for its CPU figures
export function setUpstream (proc) { upstreamProc = proc }
export async function spawn (name, env, execArgv = [], { wrapper = [], timeoutMs } = {}) {
  const child = await start(file(name), { env, execArgv, wrapper, timeoutMs })
  children.push(child)
  return child
}
export async function stopAll () {
  for (const child of children.splice(0)) await child.stop().catch(() => {})
}
process.on('SIGINT', () => { stopAll().finally(() => process.exit(130)) })

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}
export const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]
}
/**
 * `name` ÷ `base` on `key` in one scenario: the median over repetitions of the ratio within each, where the two ran
 * in adjacent slots (the machine drifts; a ratio of two medians can pair runs taken far apart).
 */
export const pairedRatio = (targets, name, base, key) =>
  median(targets[name].runs.map((run, i) => run[key] / targets[base].runs[i][key]))
/** Median and spread of per-pair figures. */
export const spread = (xs) => ({
  median: median(xs),
  min: Math.min(...xs),
  max: Math.max(...xs),
  n: xs.length,
  pairs: xs
})
export const cpuUs = (a, b) => (b.user - a.user) + (b.system - a.system)
export const round = (x, digits = 2) => Number.isFinite(x) ? Number(x.toFixed(digits)) : null

// ---------------------------------------------------------------------------------------------
// Processes

/** The fake upstream MCP server, with the token it accepts. */
export async function startUpstream () {
  const upstreamToken = `gho_${randomBytes(27).toString('base64url')}`
  const upstream = await spawn('upstream.mjs', { UPSTREAM_TOKEN: upstreamToken })
  setUpstream(upstream)
  return { upstream, upstreamOrigin: `http://127.0.0.1:${upstream.info.port}`, upstreamToken }
}

/** The fake upstream MCP server and the reference proxy in front of it, with the tokens they use. */
export async function startUpstreamAndReference () {
  const { upstream, upstreamOrigin, upstreamToken } = await startUpstream()
  const reference = await startReference(upstreamOrigin, upstreamToken)
  return { upstream, upstreamOrigin, upstreamToken, reference }
}

/**
 * `execArgv`: Node's flags; `spawnOptions`: see `spawn` (a wrapper command such as valgrind, and how long start-up may
 * take).
 */
export async function startReference (upstreamOrigin, upstreamToken, { execArgv = [], ...spawnOptions } = {}) {
  // The reference gets a client token of the gateway's token length (gwa_ + 43).
  const token = `ref_${randomBytes(32).toString('base64url')}`
  const proc = await spawn('reference.mjs', { UPSTREAM_ORIGIN: upstreamOrigin, UPSTREAM_TOKEN: upstreamToken, CLIENT_TOKEN: token }, execArgv, spawnOptions)
  return { name: 'reference', origin: `http://127.0.0.1:${proc.info.port}`, token, proc }
}

export async function startGateway (upstreamOrigin, upstreamToken, { env = {}, execArgv = [], ...spawnOptions } = {}) {
  const proc = await spawn('gateway.mjs', { UPSTREAM_ORIGIN: upstreamOrigin, UPSTREAM_TOKEN: upstreamToken, ...env }, execArgv, spawnOptions)
  const origin = `http://127.0.0.1:${proc.info.port}`
  const tokens = await obtainToken(origin, proc.info)
  await initializeSession(origin, tokens.access_token, MCP_HEADERS)
  return { origin, token: tokens.access_token, proc }
}

// ---------------------------------------------------------------------------------------------
// Load (autocannon, in this process)

export async function load (target, { connections, duration, path = '/mcp' }) {
  const c0 = await target.proc.call('cpu')
  const u0 = await upstreamProc.call('cpu')
  // autocannon's histogram keeps whole milliseconds; its per-response event has the float duration.
  const latencies = []
  const r = await new Promise((resolve, reject) => {
    const instance = autocannon({
      url: `${target.origin}${path}`,
      method: 'POST',
      headers: { ...MCP_HEADERS, authorization: `Bearer ${target.token}` },
      body: RPC_BODY,
      connections,
      duration
    }, (err, result) => { if (err) reject(err); else resolve(result) })
    instance.on('response', (_client, _status, _bytes, ms) => { latencies.push(ms) })
  })
  const c1 = await target.proc.call('cpu')
  const u1 = await upstreamProc.call('cpu')
  const n = r.requests.total
  if (r.non2xx > 0 || r.errors > 0 || r.timeouts > 0) {
    throw new Error(`${target.name} ${path} at ${connections} connections: ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`)
  }
  return {
    rps: r.requests.average,
    p50: round(percentile(latencies, 50), 3),
    p99: round(percentile(latencies, 99), 3),
    requests: n,
    bytesPerSec: r.throughput.average,
    cpuUsPerReq: cpuUs(c0, c1) / n,
    upstreamCpuUsPerReq: cpuUs(u0, u1) / n,
    markCompactsPer1k: (c1.markCompacts - c0.markCompacts) / n * 1000,
    gcPauseUsPerReq: (c1.gcMs - c0.gcMs) * 1000 / n
  }
}

/** Warm every target, then REPS measured runs each, order reversed every repetition; medians. */
export async function scenario (label, targets, opts) {
  log(`${label}: warming up`)
  for (const t of targets) await load(t, { ...opts, duration: settings.warmup })
  const runs = Object.fromEntries(targets.map((t) => [t.name, []]))
  for (let rep = 0; rep < settings.reps; rep++) {
    const order = rep % 2 === 0 ? targets : [...targets].reverse()
    for (const t of order) {
      const r = await load(t, { ...opts, duration: settings.duration })
      runs[t.name].push(r)
      log(`${label} #${rep + 1} ${t.name.padEnd(9)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms  ${r.cpuUsPerReq.toFixed(0)} µs CPU/req (GC pauses ${r.gcPauseUsPerReq.toFixed(0)})  ${r.markCompactsPer1k.toFixed(2)} mark-compacts/1k`)
    }
  }
  const summary = {}
  for (const [name, rs] of Object.entries(runs)) {
    summary[name] = {
      rps: round(median(rs.map((r) => r.rps)), 0),
      p50: median(rs.map((r) => r.p50)),
      p99: median(rs.map((r) => r.p99)),
      cpuUsPerReq: round(median(rs.map((r) => r.cpuUsPerReq)), 1),
      upstreamCpuUsPerReq: round(median(rs.map((r) => r.upstreamCpuUsPerReq)), 1),
      markCompactsPer1k: round(median(rs.map((r) => r.markCompactsPer1k)), 2),
      gcPauseUsPerReq: round(median(rs.map((r) => r.gcPauseUsPerReq)), 1),
      runs: rs.map((r) => ({
        rps: round(r.rps, 0),
        p50: r.p50,
        p99: r.p99,
        cpuUsPerReq: round(r.cpuUsPerReq, 1),
        upstreamCpuUsPerReq: round(r.upstreamCpuUsPerReq, 1),
        markCompactsPer1k: round(r.markCompactsPer1k, 2),
        gcPauseUsPerReq: round(r.gcPauseUsPerReq, 1),
        requests: r.requests
      }))
    }
  }
  return { label, connections: opts.connections, path: opts.path ?? '/mcp', duration: settings.duration, reps: settings.reps, targets: summary }
}

export function table (rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)))
  return rows.map((r, k) => {
    const line = r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ')
    return k === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line
  }).join('\n')
}
