// CPU cost of the steps the gateway's /mcp path runs on every request, each measured alone on the
// built modules (dist/), so the figures are free of the 2-core contention that inflates a sampling
// profile. `node bench/micro.mjs` prints them; run.mjs includes them with its profiles.
import { EventEmitter } from 'node:events'
import { deriveKey, hashSecret, randomToken, seal, unseal } from '../dist/lib/crypto.js'
import { MemoryStore } from '../dist/lib/stores/memory.js'

function cost (fn, iterations = 20_000) {
  for (let i = 0; i < 2000; i++) fn(i) // warm the JIT
  const batches = []
  for (let b = 0; b < 5; b++) {
    const c0 = process.cpuUsage()
    for (let i = 0; i < iterations; i++) fn(i)
    const c1 = process.cpuUsage(c0)
    batches.push((c1.user + c1.system) / iterations)
  }
  batches.sort((a, b) => a - b)
  return Number(batches[2].toFixed(2))
}

async function costAsync (fn, iterations = 20_000) {
  for (let i = 0; i < 2000; i++) await fn(i)
  const batches = []
  for (let b = 0; b < 5; b++) {
    const c0 = process.cpuUsage()
    for (let i = 0; i < iterations; i++) await fn(i)
    const c1 = process.cpuUsage(c0)
    batches.push((c1.user + c1.system) / iterations)
  }
  batches.sort((a, b) => a - b)
  return Number(batches[2].toFixed(2))
}

export async function micro () {
  const store = new MemoryStore()
  const key = deriveKey('bench-secret-that-is-at-least-32-characters-long', 'upstream-token-seal')
  const token = randomToken('gwa_')
  const grantId = randomToken('gwg_')
  const now = Date.now()
  // Records shaped as lib/grants.ts stores them.
  const access = { grantId, clientId: randomToken(), scope: 'mcp', resource: 'http://127.0.0.1:8002/mcp', expiresAt: now + 3_600_000 }
  const sealed = seal(key, JSON.stringify({ a: `gho_${randomToken().slice(0, 36)}` }), grantId)
  const grant = { id: grantId, clientId: access.clientId, userId: 'bench_user', scope: 'mcp', resource: access.resource, sealedUpstream: sealed, upstreamScopes: ['repo'], accessHash: hashSecret(token), refreshHash: hashSecret(randomToken()), expiresAt: now + 86_400_000 }
  await store.set(`access:${hashSecret(token)}`, access, 3_600_000)
  await store.set(`grant:${grantId}`, grant, 3_600_000)
  await store.set(`mcp-session:${hashSecret('bench-session')}`, { grantId }, 3_600_000)

  const rows = []
  const add = (step, where, us, note = '') => rows.push({ step, where, usPerCall: us, note })
  add('hashSecret(access token) (SHA-256)', 'lib/crypto.ts hashSecret ← grants.authenticate', cost(() => hashSecret(token)))
  add('store.get access record (JSON.parse)', 'lib/stores/memory.ts #read ← grants.authenticate', await costAsync(() => store.get(`access:${hashSecret(token)}`)), 'includes the hash')
  add('store.get grant record (JSON.parse)', 'lib/stores/memory.ts #read ← grants.authenticate', await costAsync(() => store.get(`grant:${grantId}`)))
  add('session check: hash + store.get', 'lib/sessions.ts mayUse', await costAsync(() => store.get(`mcp-session:${hashSecret('bench-session')}`)))
  add('unseal upstream token (AES-256-GCM + JSON.parse)', 'lib/crypto.ts unseal ← grants.upstreamAccessToken', cost(() => JSON.parse(unseal([key], sealed, grantId)).a))
  add('new AbortController() + .signal', 'routes/mcp/index.ts forward (aborter)', cost(() => new AbortController().signal))
  add('new AbortController() + listener + abort()', 'node:stream pipeline() finish (per response)', cost(() => { const ac = new AbortController(); ac.signal.addEventListener('abort', () => {}); ac.abort() }), 'the DOMException in the profile')
  add('EventEmitter as undici signal (alternative)', 'undici accepts an EventEmitter signal', cost(() => new EventEmitter()))
  add('Map lookup of a cached token (alternative)', 'an in-process cache in front of the store', (() => {
    const cache = new Map([[token, { grant, upstreamToken: 'x', until: now + 30_000 }]])
    return cost(() => { const hit = cache.get(token); return hit !== undefined && hit.until > Date.now() ? hit.upstreamToken : undefined })
  })())
  await store.close()
  return rows
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await micro()) console.log(`${String(r.usPerCall).padStart(7)} µs  ${r.step}  [${r.where}]${r.note ? ` ${r.note}` : ''}`)
}
