import t, { type Test } from 'tap'
import { ManualClock } from '../../lib/clock.js'
import { deriveKey } from '../../lib/crypto.js'
import { GrantIndex, USED_EVERY_MS, indexKey } from '../../lib/grant-index.js'
import { GrantService } from '../../lib/grants.js'
import { storeKey } from '../../lib/grants/records.js'
import { StoreUnavailableError } from '../../lib/stores/errors.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import type { Store } from '../../lib/stores/types.js'
import type { UpstreamTokens } from '../../lib/upstream-as/token-endpoint.js'
import { delegatingStore } from '../helpers/failing-store.js'
import { TEST_CLIENT, signInDirect } from '../helpers/grant-service.js'
import { SHARED_REDIS_URL, deletePrefix, testPrefix } from '../helpers/redis.js'

/*
 * Issue 19 part 4: the index behind the account page and `grants list` (lib/grant-index.ts). On the memory store,
 * and on Redis when test/redis/grant-index.test.ts runs this file again with MCP_GATEWAY_TEST_STORE=redis.
 */

const HOUR = 3600_000

async function openTestStore (t: Test, clock: ManualClock): Promise<Store> {
  if (process.env.MCP_GATEWAY_TEST_STORE !== 'redis') {
    const memory = new MemoryStore({ clock })
    t.teardown(async () => { await memory.close() })
    return memory
  }
  const { RedisStore } = await import('../../lib/stores/redis.js')
  const prefix = testPrefix('grant-index')
  const redis = new RedisStore({ url: SHARED_REDIS_URL, keyPrefix: prefix })
  await redis.connect()
  t.teardown(async () => { await redis.close(); await deletePrefix(SHARED_REDIS_URL, prefix) })
  return redis
}

async function setUp (t: Test, maxPerUser = 100, maxUsers?: number) {
  const clock = new ManualClock(1_000_000_000_000)
  const store = await openTestStore(t, clock)
  const index = new GrantIndex({ store, clock, maxPerUser, ...(maxUsers === undefined ? {} : { maxUsers }) })
  return { clock, store, index }
}

t.test('grant index: put, list and remove one person\'s grants; everyone who holds one is listed', async (t) => {
  const { index, clock } = await setUp(t)
  const now = clock.now()
  t.ok(await index.put('alice', 'g1', now + HOUR))
  t.ok(await index.put('alice', 'g2', now + 2 * HOUR))
  t.ok(await index.put('bob', 'g3', now + HOUR))
  t.same((await index.grantIds('alice')).sort(), ['g1', 'g2'])
  t.same(await index.users(), ['alice', 'bob'])
  await index.remove('alice', ['g1', 'unknown'])
  t.same(await index.grantIds('alice'), ['g2'])
  await index.remove('alice', ['g2'])
  t.same(await index.grantIds('alice'), [])
  await index.remove('carol', ['g9'])
  t.same(await index.grantIds('carol'), [], 'removing from nobody\'s index writes nothing')
  t.same(await index.users(), ['alice', 'bob'], 'a person stays listed until their latest lease ends')
  clock.advance(HOUR + 1)
  t.same(await index.users(), ['alice'], 'bob\'s lease ended')
  clock.advance(HOUR)
  t.same(await index.users(), [])
})

t.test('grant index: a lease only grows; members past their lease are as good as absent', async (t) => {
  const { index, clock } = await setUp(t)
  const now = clock.now()
  await index.put('alice', 'g1', now + 2 * HOUR)
  await index.put('alice', 'g1', now + HOUR)
  clock.advance(HOUR + 1)
  t.same(await index.grantIds('alice'), ['g1'], 'the later lease holds')
  await index.put('alice', 'g1', clock.now() + 10 * HOUR)
  clock.advance(5 * HOUR)
  t.same(await index.grantIds('alice'), ['g1'], 'renewed (a refresh)')
})

t.test('grant index: past maxPerUser live grants a new one is refused, and none is evicted', async (t) => {
  const { index, clock } = await setUp(t, 2)
  const now = clock.now()
  t.ok(await index.put('alice', 'g1', now + HOUR))
  t.ok(await index.put('alice', 'g2', now + 2 * HOUR))
  t.notOk(await index.put('alice', 'g3', now + HOUR), 'refused')
  t.same((await index.grantIds('alice')).sort(), ['g1', 'g2'], 'nothing evicted')
  t.ok(await index.put('alice', 'g2', now + 3 * HOUR), 'a grant already held is renewed at the bound')
  t.ok(await index.put('bob', 'g4', now + HOUR), 'the bound is per person')
  clock.advance(HOUR + 1)
  t.ok(await index.put('alice', 'g3', clock.now() + HOUR), 'room again once a lease ended')
  await index.remove('alice', ['g2'])
  t.ok(await index.put('alice', 'g5', clock.now() + HOUR), 'and once one is removed')
})

t.test('grant index: a full index of people refuses a new person, leaving nothing of theirs behind', async (t) => {
  const { index, clock } = await setUp(t, 10, 1)
  t.ok(await index.put('alice', 'g1', clock.now() + HOUR))
  t.notOk(await index.put('bob', 'g2', clock.now() + HOUR))
  t.same(await index.grantIds('bob'), [])
  t.ok(await index.put('alice', 'g3', clock.now() + HOUR), 'someone listed already is not refused')
})

t.test('grant index: concurrent puts from two replicas, on a new index and an existing one, lose no grant', async (t) => {
  const { store, clock } = await setUp(t)
  const a = new GrantIndex({ store, clock, maxPerUser: 1000 })
  const b = new GrantIndex({ store, clock, maxPerUser: 1000 })
  const ids = Array.from({ length: 20 }, (_v, i) => `g${i}`)
  await Promise.all(ids.map(async (id, i) => await (i % 2 === 0 ? a : b).put('alice', id, clock.now() + HOUR)))
  t.same((await a.grantIds('alice')).sort(), [...ids].sort(), 'created concurrently')
  const more = Array.from({ length: 20 }, (_v, i) => `h${i}`)
  await Promise.all([
    ...more.map(async (id, i) => await (i % 2 === 0 ? a : b).put('alice', id, clock.now() + HOUR)),
    b.remove('alice', ['g0', 'g1'])
  ])
  t.same((await b.grantIds('alice')).sort(), [...ids.slice(2), ...more].sort(), 'updated concurrently')
})

t.test('grant index: an index nobody can write for the writers around it says the store is unavailable', async (t) => {
  const clock = new ManualClock(1_000_000_000_000)
  const memory = new MemoryStore({ clock })
  t.teardown(async () => { await memory.close() })
  const contended = delegatingStore(memory, { replace: async () => false })
  const index = new GrantIndex({ store: contended, clock, maxPerUser: 10 })
  t.ok(await index.put('alice', 'g1', clock.now() + HOUR), 'created without a replace')
  await t.rejects(index.put('alice', 'g2', clock.now() + HOUR), StoreUnavailableError)
})

t.test('grant index: a grant\'s use is written at most every few minutes per process, and never fails', async (t) => {
  const { index, clock, store } = await setUp(t)
  const grantEnd = clock.now() + 10 * USED_EVERY_MS
  t.equal(await index.lastUsed('g1'), undefined)
  const first = clock.now()
  await index.markUsed('g1', grantEnd)
  t.equal(await index.lastUsed('g1'), first)
  clock.advance(USED_EVERY_MS - 1)
  await index.markUsed('g1', grantEnd)
  t.equal(await index.lastUsed('g1'), first, 'not written again within USED_EVERY_MS')
  clock.advance(1)
  await index.markUsed('g1', grantEnd)
  t.equal(await index.lastUsed('g1'), clock.now(), 'written again after it')
  await index.forgetUse('g1')
  t.equal(await index.lastUsed('g1'), undefined, 'forgotten with the grant')
  await index.markUsed('g2', clock.now())
  t.equal(await store.get(indexKey.used('g2')), undefined, 'nothing for a grant past its end')

  const failing = { on: true }
  const flaky = delegatingStore(store, {
    set: async (key, value, ttl) => {
      if (failing.on) throw new StoreUnavailableError(new Error('down'))
      await store.set(key, value, ttl)
    }
  })
  const other = new GrantIndex({ store: flaky, clock, maxPerUser: 10 })
  await other.markUsed('g3', grantEnd)
  t.equal(await other.lastUsed('g3'), undefined, 'a failed write is swallowed')
  failing.on = false
  await other.markUsed('g3', grantEnd)
  t.equal(await other.lastUsed('g3'), clock.now(), 'and tried again at the next use')
})

const UPSTREAM: UpstreamTokens = { accessToken: 'gho_upstream', scopes: ['repo'], tokenType: 'bearer' }

function service (store: Store, clock: ManualClock, maxGrantsPerUser?: number): GrantService {
  return new GrantService({
    store,
    clock,
    upstream: { refresh: async (): Promise<UpstreamTokens> => { throw new Error('no upstream refresh expected') } },
    sealKeys: [deriveKey('a-secret-of-at-least-thirty-two-characters', 'upstream-token-seal')],
    codeTtlMs: 60_000,
    accessTtlMs: HOUR,
    refreshTtlMs: 24 * HOUR,
    refreshGraceMs: 0,
    tokenCacheTtlMs: 0,
    ...(maxGrantsPerUser === undefined ? {} : { maxGrantsPerUser })
  })
}

t.test('grant service: exchanges index grants, past the bound refuse with invalid_grant, revocations un-index', async (t) => {
  const { store, clock } = await setUp(t)
  const grants = service(store, clock, 2)
  const first = await signInDirect(grants, UPSTREAM)
  await signInDirect(grants, UPSTREAM)
  await t.rejects(signInDirect(grants, UPSTREAM), { name: 'OAuthError', message: /max-grants-per-user/ }, 'a third')
  const held = await grants.grantsOf('u1')
  t.equal(held.length, 2)
  t.match(held[0], { userId: 'u1', clientId: TEST_CLIENT.clientId, scope: 'mcp', upstreamScopes: ['repo'], createdAt: clock.now() })
  t.notOk('lastUsedAt' in (held[0] as object), 'not used yet')
  t.same(await grants.grantHolders(), ['u1'])

  const used = await grants.authenticate(first.access_token)
  const usedId = used?.grant.id as string
  t.equal((await grants.findGrant(usedId))?.lastUsedAt, clock.now(), 'the access token\'s use is recorded')
  t.equal(await grants.revokeGrant(usedId, 'user_revoked'), true)
  t.equal(await grants.revokeGrant(usedId, 'user_revoked'), false, 'nothing left to revoke')
  t.equal(await grants.findGrant(usedId), undefined)
  t.equal(await store.get(indexKey.used(usedId)), undefined, 'its use forgotten')
  t.equal((await grants.grantsOf('u1')).length, 1)
  await signInDirect(grants, UPSTREAM)
  t.equal((await grants.grantsOf('u1')).length, 2, 'room for a new one')
})

t.test('grant service: a listed id whose grant is gone is dropped from the index', async (t) => {
  const { store, clock } = await setUp(t)
  const grants = service(store, clock)
  await signInDirect(grants, UPSTREAM)
  await signInDirect(grants, UPSTREAM)
  const [gone, kept] = await grants.grantsOf('u1') as unknown as [{ id: string }, { id: string }]
  await store.delete(storeKey.grant(gone.id))
  t.same((await grants.grantsOf('u1')).map((g) => g.id), [kept.id])
  t.same(await new GrantIndex({ store, clock, maxPerUser: 1 }).grantIds('u1'), [kept.id], 'pruned in the store')
})

t.test('grant service: a refresh renews the grant\'s lease in the index, and puts back a grant it lacks', async (t) => {
  const { store, clock } = await setUp(t)
  const grants = service(store, clock)
  const tokens = await signInDirect(grants, UPSTREAM)
  const id = (await grants.authenticate(tokens.access_token))?.grant.id as string
  await new GrantIndex({ store, clock, maxPerUser: 10 }).remove('u1', [id])
  t.same(await grants.grantsOf('u1'), [], 'as a grant from before the index')
  clock.advance(20 * HOUR)
  await grants.refresh(TEST_CLIENT, { refreshToken: tokens.refresh_token as string })
  clock.advance(20 * HOUR)
  t.same((await grants.grantsOf('u1')).map((g) => g.id), [id], 'indexed again, until the renewed expiry')
})

t.test('grant service: a revocation holds even when the index cannot be tidied (the id is dropped when listed)', async (t) => {
  const clock = new ManualClock(1_000_000_000_000)
  const memory = new MemoryStore({ clock })
  t.teardown(async () => { await memory.close() })
  const store = delegatingStore(memory, {
    replace: async (key, version, value, ttl) => key.startsWith('user-grants:') ? false : await memory.replace(key, version, value, ttl),
    delete: async (key) => {
      if (key.startsWith('grant-used:')) throw new StoreUnavailableError(new Error('down'))
      await memory.delete(key)
    }
  })
  const grants = service(store, clock)
  const tokens = await signInDirect(grants, UPSTREAM)
  const id = (await grants.authenticate(tokens.access_token))?.grant.id as string
  t.equal(await grants.revokeGrant(id, 'operator_revoked'), true)
  t.equal(await grants.authenticate(tokens.access_token), undefined, 'revoked')
  t.same(await new GrantIndex({ store: memory, clock, maxPerUser: 1 }).grantIds('u1'), [id], 'still indexed')
  t.same(await grants.grantsOf('u1'), [], 'but never listed')
})
