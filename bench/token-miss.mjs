// What a token-cache miss costs: GrantService.authenticate with tokenCacheTtlMs 0 on the memory store, µs per
// call, for two builds side by side in one process (7 alternating runs of 3,000 calls each; the median of each).
//   node bench/token-miss.mjs <distA> <distB>     e.g. an older build's dist/ against this one's
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const [dirA, dirB] = [process.argv[2] ?? 'dist', process.argv[3] ?? 'dist']

async function signedIn (dir) {
  const lib = (file) => import(pathToFileURL(resolve(dir, 'lib', file)).href)
  const { GrantService } = await lib('grants.js')
  const { MemoryStore } = await lib('stores/memory.js')
  const { deriveKey } = await lib('crypto.js')
  const { createPkcePair } = await lib('pkce.js')
  const grants = new GrantService({
    store: new MemoryStore(),
    clock: { now: () => Date.now() },
    upstream: { refresh: async () => { throw new Error('not refreshed here') } },
    sealKeys: [deriveKey('a-secret-of-at-least-thirty-two-characters', 'bench')],
    codeTtlMs: 60_000,
    accessTtlMs: 3_600_000,
    refreshTtlMs: 86_400_000,
    refreshGraceMs: 0,
    tokenCacheTtlMs: 0
  })
  const client = { clientId: 'c1', metadata: { grant_types: ['authorization_code', 'refresh_token'] } }
  const pkce = createPkcePair()
  const code = await grants.createCode({
    clientId: 'c1',
    redirectUri: 'http://127.0.0.1/cb',
    codeChallenge: pkce.challenge,
    resource: 'https://gw.example/mcp',
    scope: 'mcp',
    userId: 'u1',
    upstream: { accessToken: 'gho_bench', scopes: [], tokenType: 'bearer' }
  })
  const { access_token: token } = await grants.exchangeCode(client, { code, codeVerifier: pkce.verifier })
  return async (n) => {
    const started = performance.now()
    for (let i = 0; i < n; i++) if (await grants.authenticate(token) === undefined) throw new Error('not authenticated')
    return (performance.now() - started) / n * 1000
  }
}

const runs = { A: await signedIn(dirA), B: await signedIn(dirB) }
await runs.A(2000)
await runs.B(2000)
const times = { A: [], B: [] }
for (let round = 0; round < 7; round++) {
  for (const which of round % 2 === 0 ? ['A', 'B'] : ['B', 'A']) times[which].push(await runs[which](3000))
}
const median = (list) => [...list].sort((x, y) => x - y)[list.length >> 1]
const [a, b] = [median(times.A), median(times.B)]
console.log(`A ${dirA}: ${a.toFixed(1)} µs, B ${dirB}: ${b.toFixed(1)} µs per token-cache miss; B/A ${(b / a).toFixed(2)}`)
