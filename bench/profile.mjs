// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per category, and the
// inclusive time of the gateway's own functions, in µs per proxied request.
import { readFileSync } from 'node:fs'

const SPECIAL = new Set(['(root)', '(program)', '(idle)', '(garbage collector)'])

function where (url, line) {
  if (url === '') return ''
  const short = url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/node_modules\//, '')
    .replace(/^.*\/(dist|bench)\//, '$1/')
  return `${short}:${line + 1}`
}

function categoryOf (frame) {
  const { functionName, url } = frame
  if (SPECIAL.has(functionName) && url === '') return functionName === '(garbage collector)' ? 'GC' : functionName === '(program)' ? 'V8/native (program)' : functionName
  if (url === '') return 'native builtins'
  if (url.startsWith('node:')) return 'node core'
  if (url.includes('/node_modules/')) {
    const pkg = url.replace(/^.*\/node_modules\//, '').split('/')
    const name = pkg[0].startsWith('@') ? `${pkg[0]}/${pkg[1]}` : pkg[0]
    if (name === 'undici') return 'undici'
    if (name === 'fastify') return 'fastify core'
    if (name.startsWith('@fastify/')) return name
    if (['find-my-way', 'avvio', 'light-my-request', 'fast-json-stringify', 'fast-querystring', 'fast-decode-uri-component', 'toad-cache', 'abstract-logging', 'process-warning', 'rfdc', 'safe-regex2', 'fast-uri', 'content-type'].includes(name)) return 'fastify deps'
    if (name.startsWith('pino') || name === 'sonic-boom' || name === 'fast-redact' || name === 'quick-format-unescaped' || name === 'atomic-sleep' || name === 'thread-stream' || name === 'on-exit-leak-free' || name === 'safe-stable-stringify' || name === '@pinojs/redact') return 'pino (logging)'
    return `npm: ${name}`
  }
  if (url.includes('/dist/')) return 'gateway code (dist/)'
  if (url.includes('/bench/')) return 'bench harness'
  return 'other JS'
}

/**
 * Code the gateway or the reference owns: its own files or a package; node core and builtins inherit from their
 * caller.
 */
const OWNING = (cat) => !['node core', 'native builtins', 'V8/native (program)', 'GC', '(root)', '(idle)'].includes(cat)

export function analyseProfile (file, { fromUs, toUs, requests }) {
  const prof = JSON.parse(readFileSync(file, 'utf8'))
  const nodes = new Map(prof.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

  // Sample i lasts until sample i+1 (DevTools' attribution).
  const times = []
  let t = prof.startTime
  for (const d of prof.timeDeltas) { t += d; times.push(t) }
  const windowed = fromUs >= prof.startTime && toUs <= prof.endTime + 1000 && toUs > fromUs
  const self = new Map() // node id → µs
  let total = 0
  for (let i = 0; i < prof.samples.length - 1; i++) {
    if (windowed && (times[i] < fromUs || times[i] > toUs)) continue
    const dur = times[i + 1] - times[i]
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dur)
    total += dur
  }
  const idle = [...self].filter(([id]) => nodes.get(id).callFrame.functionName === '(idle)').reduce((a, [, v]) => a + v, 0)
  const busy = total - idle
  const per = (us) => Number((us / requests).toFixed(1))
  const pct = (us) => Number((100 * us / busy).toFixed(1))

  const bySelf = new Map()
  const byCategory = new Map()
  const byOwner = new Map()
  const inclusive = new Map()
  const ownerCache = new Map()
  const stackKeys = new Map()
  const ownerOf = (id) => {
    if (ownerCache.has(id)) return ownerCache.get(id)
    const cat = categoryOf(nodes.get(id).callFrame)
    const p = parent.get(id)
    const owner = OWNING(cat) || p === undefined ? cat : (() => { const up = ownerOf(p); return up === '(root)' ? cat : up })()
    ownerCache.set(id, owner)
    return owner
  }
  const gatewayKeysOf = (id) => {
    if (stackKeys.has(id)) return stackKeys.get(id)
    const p = parent.get(id)
    const keys = new Set(p === undefined ? [] : gatewayKeysOf(p))
    const f = nodes.get(id).callFrame
    if (categoryOf(f) === 'gateway code (dist/)') keys.add(`${f.functionName || '(anonymous)'}\t${where(f.url, f.lineNumber)}`)
    stackKeys.set(id, keys)
    return keys
  }
  for (const [id, us] of self) {
    const f = nodes.get(id).callFrame
    if (f.functionName === '(idle)') continue
    const key = `${f.functionName || '(anonymous)'}\t${where(f.url, f.lineNumber)}`
    bySelf.set(key, (bySelf.get(key) ?? 0) + us)
    const cat = categoryOf(f)
    byCategory.set(cat, (byCategory.get(cat) ?? 0) + us)
    const owner = ownerOf(id)
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + us)
    for (const k of gatewayKeysOf(id)) inclusive.set(k, (inclusive.get(k) ?? 0) + us)
  }
  const list = (m) => [...m].sort((a, b) => b[1] - a[1]).map(([k, us]) => {
    const [name, at] = k.split('\t')
    return { name, where: at ?? '', usPerReq: per(us), percent: pct(us) }
  })
  return {
    file,
    windowed,
    requests,
    totalUsPerReq: per(busy),
    categories: list(byCategory).map(({ name, usPerReq, percent }) => ({ name, usPerReq, percent })),
    owners: list(byOwner).map(({ name, usPerReq, percent }) => ({ name, usPerReq, percent })),
    topSelf: list(bySelf).slice(0, 40),
    topGatewayInclusive: list(inclusive).slice(0, 30)
  }
}
