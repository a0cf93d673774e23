import t, { type Test } from 'tap'
import { systemClock } from '../../lib/clock.js'
import { deriveKey } from '../../lib/crypto.js'
import { GrantService, type TokenResponse } from '../../lib/grants.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import type { Store } from '../../lib/stores/types.js'
import type { UpstreamTokens } from '../../lib/upstream-as/token-endpoint.js'
import { TEST_CLIENT, codeFor, signInDirect } from '../helpers/grant-service.js'
import { SHARED_REDIS_URL, deletePrefix, testPrefix } from '../helpers/redis.js'

/*
 * Issue 16 item 1: whatever revokes a grant wins over any write in flight. Each race is released
 * together (Promise.all) many times in one process, on the memory store and (MCP_GATEWAY_TEST_STORE=redis,
 * test/redis/grant-races.test.ts) on Redis, and afterwards every token of a revoked grant must be refused.
 */

const RUNS = 50
const client = TEST_CLIENT

async function openTestStore (t: Test): Promise<Store> {
  if (process.env.MCP_GATEWAY_TEST_STORE !== 'redis') {
    const memory = new MemoryStore()
    t.teardown(async () => { await memory.close() })
    return memory
  }
  const { RedisStore } = await import('../../lib/stores/redis.js')
  const prefix = testPrefix('grant-races')
  const redis = new RedisStore({ url: SHARED_REDIS_URL, keyPrefix: prefix })
  await redis.connect()
  t.teardown(async () => { await redis.close(); await deletePrefix(SHARED_REDIS_URL, prefix) })
  return redis
}

function service (store: Store, refreshGraceMs = 0): GrantService {
  return new GrantService({
    store,
    clock: systemClock,
    upstream: { refresh: async (): Promise<UpstreamTokens> => { throw new Error('no upstream refresh expected') } },
    sealKeys: [deriveKey('a-secret-of-at-least-thirty-two-characters', 'upstream-token-seal')],
    codeTtlMs: 60_000,
    accessTtlMs: 3600_000,
    refreshTtlMs: 86_400_000,
    refreshGraceMs,
    tokenCacheTtlMs: 0
  })
}

const UPSTREAM: UpstreamTokens = { accessToken: 'gho_upstream', scopes: [], tokenType: 'bearer' }
const newCode = async (grants: GrantService): Promise<{ code: string, verifier: string }> =>
  await codeFor(grants, UPSTREAM)
const login = async (grants: GrantService): Promise<TokenResponse> => await signInDirect(grants, UPSTREAM)

/** Each of `tokens` still works: an access token authenticates, a refresh token refreshes. */
async function live (grants: GrantService, tokens: TokenResponse[]): Promise<boolean> {
  for (const issued of tokens) {
    if (await grants.authenticate(issued.access_token) !== undefined) return true
    if (
      issued.refresh_token !== undefined &&
      await grants.refresh(client, { refreshToken: issued.refresh_token }).then(() => true, () => false)
    ) {
      return true
    }
  }
  return false
}

const settled = async <T>(promise: Promise<T>): Promise<T | undefined> =>
  await promise.then((value) => value, () => undefined)

t.test('issue 16 item 1: two concurrent refreshes with one refresh token never leave the revoked grant alive', async (t) => {
  const store = await openTestStore(t)
  const a = service(store)
  const b = service(store)
  let resurrected = 0
  let bothRefused = 0
  for (let run = 0; run < RUNS; run++) {
    const first = await login(a)
    const results = await Promise.all([
      settled(a.refresh(client, { refreshToken: first.refresh_token as string })),
      settled(b.refresh(client, { refreshToken: first.refresh_token as string }))
    ])
    const issued = results.filter((r): r is TokenResponse => r !== undefined)
    if (issued.length === 0) bothRefused++
    if (await live(a, [first, ...issued])) resurrected++
  }
  t.comment(`${RUNS} races: ${resurrected} resurrected grants, ${bothRefused} with both refreshes refused, ${RUNS - bothRefused} with one refresh answered with tokens`)
  t.equal(resurrected, 0, 'reuse detection revokes the grant, whoever wrote last')
})

t.test('issue 22 finding 1: within the grace period two concurrent refreshes with one token get the same pair, which stays live', async (t) => {
  const store = await openTestStore(t)
  const a = service(store, 10_000)
  const b = service(store, 10_000)
  let samePair = 0
  let livePairs = 0
  for (let run = 0; run < RUNS; run++) {
    const first = await login(a)
    const results = await Promise.all([
      settled(a.refresh(client, { refreshToken: first.refresh_token as string })),
      settled(b.refresh(client, { refreshToken: first.refresh_token as string }))
    ])
    const [x, y] = results
    if (
      x !== undefined &&
      y !== undefined &&
      x.access_token === y.access_token &&
      x.refresh_token === y.refresh_token
    ) {
      samePair++
    }
    const kept = results[run % 2]
    if (kept !== undefined && await a.authenticate(kept.access_token) !== undefined &&
      await settled(b.refresh(client, { refreshToken: kept.refresh_token as string })) !== undefined) livePairs++
  }
  t.comment(`${RUNS} races within the grace period: ${samePair} answered twice with one pair, ${livePairs} kept pairs that worked afterwards`)
  t.equal(samePair, RUNS, 'both refreshes get the same tokens')
  t.equal(livePairs, RUNS, 'whichever answer the client keeps works, and refreshes')
})

t.test('issue 16 item 1: /revoke racing a refresh always ends with the grant revoked', async (t) => {
  const store = await openTestStore(t)
  const a = service(store)
  const b = service(store)
  let resurrected = 0
  let refreshServed = 0
  for (let run = 0; run < RUNS; run++) {
    const first = await login(a)
    const [refreshed] = await Promise.all([
      settled(a.refresh(client, { refreshToken: first.refresh_token as string })),
      b.revoke(client, first.access_token)
    ])
    if (refreshed !== undefined) refreshServed++
    if (await live(a, refreshed === undefined ? [first] : [first, refreshed])) resurrected++
  }
  t.comment(`${RUNS} races: ${resurrected} resurrected grants, ${refreshServed} refreshes answered with tokens (refused afterwards)`)
  t.equal(resurrected, 0, 'the revocation wins')
})

t.test('issue 16 item 1: a code replayed while its first use is in flight leaves no grant alive', async (t) => {
  const store = await openTestStore(t)
  const a = service(store)
  const b = service(store)
  let resurrected = 0
  let served = 0
  for (let run = 0; run < RUNS; run++) {
    const { code, verifier } = await newCode(a)
    const results = await Promise.all([
      settled(a.exchangeCode(client, { code, codeVerifier: verifier })),
      settled(b.exchangeCode(client, { code, codeVerifier: verifier }))
    ])
    const issued = results.filter((r): r is TokenResponse => r !== undefined)
    served += issued.length
    // The replay comes once more, after the race: whatever the first use issued must end.
    await settled(a.exchangeCode(client, { code, codeVerifier: verifier }))
    if (await live(a, issued)) resurrected++
  }
  t.comment(`${RUNS} races: ${resurrected} resurrected grants, ${served} exchanges answered with tokens`)
  t.equal(resurrected, 0, 'both grants revoked, none written back')
})
