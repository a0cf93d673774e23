// Event streams through a proxy, for run.mjs and ablate.mjs: SSE clients on node:http, idle-stream memory.
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { log, round } from './harness.mjs'

const streamAgent = new http.Agent({ keepAlive: false, maxSockets: Infinity })

/** Opens GET /mcp?tag=…; resolves with the request once the response headers are in (or on timeout). */
export function openStream (target, tag, { onEvent, timeoutMs = 5000 } = {}) {
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

export async function waitFor (what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return true
    await sleep(50)
  }
  log(`gave up waiting for ${what} after ${timeoutMs} ms`)
  return false
}

/**
 * SSE relay latency (upstream write → client receive), one stream per target, the upstream emitting to one at a
 * time.
 */
export async function sseLatency (targets, upstream, { rounds, events, intervalMs }) {
  const samples = Object.fromEntries(targets.map((t) => [t.name, []]))
  const streams = []
  for (const t of targets) {
    const s = await openStream(t, `lat-${t.name}`, { onEvent: (ms) => samples[t.name].push(ms) })
    if (!s.headers) throw new Error(`SSE stream through ${t.name} got no headers`)
    streams.push(s)
  }
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? targets : [...targets].reverse()
    for (const t of order) await upstream.call('emit', { tag: `lat-${t.name}`, n: events, intervalMs })
  }
  await sleep(100)
  for (const s of streams) s.req.destroy()
  const out = {}
  for (const t of targets) {
    const xs = samples[t.name].sort((a, b) => a - b)
    const at = (p) => xs[Math.min(xs.length - 1, Math.max(0, Math.ceil((p / 100) * xs.length) - 1))]
    out[t.name] = { events: xs.length, expected: rounds * events, p50: round(at(50), 3), p99: round(at(99), 3) }
  }
  return out
}

/**
 * Memory one idle stream holds: its objects (heap used), its buffers (external) and its native allocations
 * (sockets, parsers: RSS growth outside V8's resident heap pages). Not RSS itself: RSS also grows by the heap
 * pages V8 touches for the first time while the streams open, which depends on how many the process had
 * touched before (bench/HISTORY.md).
 */
export const idleKB = (idle) => round(idle.heapUsedKBPerStream + idle.externalKBPerStream + idle.nativeKBPerStream, 1)

/**
 * Opens `count` idle streams through `target` (after 20 to warm the GET path), measures what they hold, and
 * returns the figures with `close()`, which destroys the clients and waits until the upstream has seen them go.
 */
export async function openIdleStreams (target, upstream, count) {
  const tag = `idle-${target.name}`
  const openCount = async () => (await upstream.call('stats')).open[tag] ?? 0
  // Warm the GET path (JIT, lazily built objects) so the baseline is not charged for it.
  const warm = await Promise.all(Array.from({ length: 20 }, () => openStream(target, `${tag}-warm`)))
  for (const s of warm) s.req.destroy()
  await waitFor(`${tag}-warm streams to close`, async () => ((await upstream.call('stats')).open[`${tag}-warm`] ?? 0) === 0, 5000)
  const m0 = await target.proc.call('mem')
  const pending = []
  // 100 at a time, so the listen backlogs never overflow.
  for (let i = 0; i < count; i += 100) {
    const batch = []
    for (let j = i; j < Math.min(count, i + 100); j++) batch.push(openStream(target, tag, { timeoutMs: 10_000 }))
    pending.push(...batch)
    await waitFor(`${i + batch.length} upstream streams`, async () => (await openCount()) >= i + batch.length, 5000)
  }
  const streams = await Promise.all(pending)
  const withHeaders = streams.filter((s) => s.headers).length
  await sleep(300)
  const m1 = await target.proc.call('mem')
  const per = (a, b, key) => round((b[key] - a[key]) / count / 1024, 1)
  const native = (m) => ({ native: m.rss - m.heapPhysical })
  const figures = {
    streams: count,
    withHeaders,
    upstreamOpen: await openCount(),
    rssKBPerStream: per(m0, m1, 'rss'),
    heapPagesKBPerStream: per(m0, m1, 'heapPhysical'),
    nativeKBPerStream: per(native(m0), native(m1), 'native'),
    heapUsedKBPerStream: per(m0, m1, 'heapUsed'),
    externalKBPerStream: per(m0, m1, 'external'),
    rssMBBefore: round(m0.rss / 2 ** 20, 1),
    rssMBAfter: round(m1.rss / 2 ** 20, 1)
  }
  const close = async () => {
    const t0 = Date.now()
    for (const s of streams) s.req.destroy()
    await waitFor(`${tag} streams to close upstream`, async () => (await openCount()) === 0, 10_000)
    return Date.now() - t0
  }
  return { figures, baseline: m0, close }
}

/** `openIdleStreams`, then closed at once: the figures and how long the close took to reach the upstream. */
export async function idleStreams (target, upstream, count) {
  const { figures, close } = await openIdleStreams(target, upstream, count)
  return { ...figures, closePropagationMs: await close() }
}
