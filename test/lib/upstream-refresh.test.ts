import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { ManualClock } from '../../lib/clock.js'
import { deriveKey } from '../../lib/crypto.js'
import { GrantService, type UnlockedGrant } from '../../lib/grants.js'
import type { UpstreamTokenRecord } from '../../lib/grants/records.js'
import { OAuthError } from '../../lib/oauth-errors.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import type { Store } from '../../lib/stores/types.js'
import { UpstreamError } from '../../lib/upstream-as/errors.js'
import type { UpstreamTokens } from '../../lib/upstream-as/token-endpoint.js'
import { delegatingStore } from '../helpers/failing-store.js'
import { TEST_CLIENT, signInDirect } from '../helpers/grant-service.js'

/*
 * Issue 16 item 2 and the conditional grant writes of item 1, on lib/grants.ts and lib/upstream-refresh.ts
 * alone: two GrantServices on one store stand for two replicas, and a store or upstream that acts in the
 * middle of a call stands for the other replica acting at that moment.
 */

const client = TEST_CLIENT
type Refresh = (refreshToken: string) => Promise<UpstreamTokens>

function setup (
  t: Test,
  options: { refresh?: Refresh, store?: (memory: MemoryStore) => Store, upstreamTimeoutMs?: number } = {}
) {
  const clock = new ManualClock(Date.now())
  const memory = new MemoryStore({ clock })
  t.teardown(async () => { await memory.close() })
  const store = options.store?.(memory) ?? memory
  const calls: string[] = []
  let n = 0
  const refresh: Refresh = options.refresh ?? (async () => {
    await sleep(30)
    n++
    return { accessToken: `ghu_${n}`, refreshToken: `ghr_${n}`, expiresAt: clock.now() + 8 * 3600_000, scopes: [], tokenType: 'bearer' }
  })
  const replica = (): GrantService => new GrantService({
    store,
    clock,
    upstream: { refresh: async (token) => { calls.push(token); return await refresh(token) } },
    sealKeys: [deriveKey('a-secret-of-at-least-thirty-two-characters', 'upstream-token-seal')],
    codeTtlMs: 60_000,
    accessTtlMs: 3600_000,
    refreshTtlMs: 86_400_000,
    refreshGraceMs: 0,
    tokenCacheTtlMs: 60_000,
    upstreamTimeoutMs: options.upstreamTimeoutMs ?? 2000
  })
  return { clock, memory, store, calls, replica }
}

async function login (grants: GrantService, clock: ManualClock, upstream: Partial<UpstreamTokens> = {}) {
  const tokens = await signInDirect(grants, { accessToken: 'ghu_0', refreshToken: 'ghr_0', expiresAt: clock.now() + 120_000, scopes: [], tokenType: 'bearer', ...upstream })
  const found = await grants.authenticate(tokens.access_token)
  if (found === undefined) throw new Error('no grant')
  return { tokens, unlocked: found as UnlockedGrant }
}

const errorOf = async (promise: Promise<unknown>): Promise<string | undefined> =>
  await promise.then(() => undefined, (err: unknown) => err instanceof OAuthError ? err.error : String(err))

t.test('issue 16 item 2: two replicas due to refresh one grant\'s upstream token at once: one refresh, both get its result', async (t) => {
  const { clock, calls, replica } = setup(t)
  const a = replica()
  const b = replica()
  const { unlocked } = await login(a, clock)
  clock.advance(90_000)
  const [viaA, viaB] = await Promise.all([
    a.freshUpstream(unlocked),
    b.freshUpstream(unlocked),
    b.freshUpstream(unlocked)
  ])
  t.same(calls, ['ghr_0'], 'the upstream saw the refresh token once')
  t.equal(a.upstreamAccessToken(viaA), 'ghu_1', 'the refreshing replica has the new token')
  t.equal(b.upstreamAccessToken(viaB), 'ghu_1', 'the waiting replica read it from the grant')
})

t.test('issue 16 item 2: a replica waits for another\'s refresh no longer than the upstream timeout', async (t) => {
  const { clock, store, calls, replica } = setup(t, { upstreamTimeoutMs: 50 })
  const a = replica()
  const { unlocked } = await login(a, clock)
  clock.advance(90_000)
  // Another replica holds the lock and never writes (it hangs on GitHub, say).
  await store.lock(`lock:upstream-tokens:${unlocked.upstream.record.id}`, 60_000)
  t.equal(await errorOf(a.freshUpstream(unlocked)), 'temporarily_unavailable', '503: retry later, the grant is kept')
  t.same(calls, [], 'no second refresh with the same token')
  t.ok(await store.get(`grant:${unlocked.grant.id}`), 'the grant is still there')
})

t.test('issue 16 item 2: an upstream refusal after another replica already refreshed uses its token instead of revoking', async (t) => {
  const { clock, memory, replica } = setup(t, {
    refresh: async () => {
      // The other replica's write lands while this request is at GitHub (its lock had expired).
      const key = `upstream-tokens:${first.upstream.record.id}`
      const stored = await memory.get<UpstreamTokenRecord>(key) as UpstreamTokenRecord
      await memory.set(key, { ...stored, generation: 'newer', version: stored.version + 1 }, 60_000)
      throw new UpstreamError('oauth_error', 'refused', { oauthError: 'bad_refresh_token' })
    }
  })
  const a = replica()
  const { unlocked: first } = await login(a, clock)
  const recovered = await a.recoverUpstream(first)
  t.equal(recovered?.upstream.record.generation, 'newer', 'the newer token is used')
  t.ok(await memory.get(`grant:${first.grant.id}`), 'and the grant is not revoked')

  const refused = setup(t, { refresh: async () => { throw new UpstreamError('oauth_error', 'refused', { oauthError: 'bad_refresh_token' }) } })
  const c = refused.replica()
  const { unlocked: third } = await login(c, refused.clock)
  t.equal(await c.recoverUpstream(third).then(() => 'ok', (err: unknown) => (err as OAuthError).error), 'invalid_grant', 'refused with nothing newer: the login is over')
  t.equal(await refused.memory.get(`grant:${third.grant.id}`), undefined, 'the grant is revoked')
})

t.test('issue 16 item 1: an upstream refresh never writes back upstream tokens of a grant revoked while it was at the upstream', async (t) => {
  let revoke = async (): Promise<void> => {}
  const { clock, memory, replica } = setup(t, {
    refresh: async () => {
      await revoke()
      return { accessToken: 'ghu_new', refreshToken: 'ghr_new', expiresAt: Date.now() + 8 * 3600_000, scopes: ['repo'], tokenType: 'bearer' }
    }
  })
  const a = replica()
  const { unlocked } = await login(a, clock)
  revoke = async () => { await a.revokeGrant(unlocked.grant.id, 'client_revoked') }
  t.equal(await errorOf(a.recoverUpstream(unlocked)), 'invalid_grant', 'the refresh ends as revoked')
  t.equal(await memory.get(`grant:${unlocked.grant.id}`), undefined, 'and the grant stays gone')

  const { unlocked: next } = await login(a, clock)
  // The share changes while the upstream refresh is at GitHub (a client's refresh keeps it longer): written over.
  const shareKey = `upstream-tokens:${next.upstream.record.id}`
  revoke = async () => {
    const stored = await memory.get<UpstreamTokenRecord>(shareKey) as UpstreamTokenRecord
    await memory.set(shareKey, { ...stored, expiresAt: stored.expiresAt + 1000, version: stored.version + 1 }, 60_000)
  }
  const recovered = await a.recoverUpstream(next)
  t.equal(recovered === undefined ? undefined : a.upstreamAccessToken(recovered), 'ghu_new', 'the new upstream token')
  const stored = await memory.get<UpstreamTokenRecord>(shareKey) as UpstreamTokenRecord
  t.equal(stored.expiresAt, next.upstream.record.expiresAt + 1000, 'the other write is kept')
  t.same(stored.upstreamScopes, ['repo'], 'with the upstream\'s new tokens over it')
})

t.test('issue 16 item 1: a grant that keeps changing makes an upstream refresh give up with 503', async (t) => {
  const { clock, replica } = setup(t, { store: (memory) => delegatingStore(memory, { replace: async () => false }) })
  const a = replica()
  const { unlocked } = await login(a, clock)
  t.equal(await errorOf(a.recoverUpstream(unlocked)), 'temporarily_unavailable')
})

t.test('issue 16 item 1: a client refresh whose grant write loses to a concurrent writer writes again, or gives up', async (t) => {
  let fail = 1
  const { clock, memory, replica } = setup(t, {
    store: (memory) => delegatingStore(memory, {
      replace: async (key, version, value, ttlMs) => key.startsWith('grant:') && fail-- > 0 ? false : await memory.replace(key, version, value, ttlMs)
    })
  })
  const a = replica()
  const { tokens } = await login(a, clock)
  const refreshed = await a.refresh(client, { refreshToken: tokens.refresh_token as string })
  t.ok(await a.authenticate(refreshed.access_token), 'served on the second write')
  fail = 100
  t.equal(await errorOf(a.refresh(client, { refreshToken: refreshed.refresh_token as string })), 'invalid_grant', 'gives up after a few')
  t.ok(memory.size > 0)
})

t.test('issue 16 item 1: tokens issued for a grant revoked between its write and theirs are taken back', async (t) => {
  const revokes: Array<() => Promise<void>> = []
  const { clock, memory, replica } = setup(t, {
    store: (memory) => delegatingStore(memory, {
      set: async (key, value, ttlMs) => {
        await memory.set(key, value, ttlMs)
        if (key.startsWith('access:')) for (const revoke of revokes) await revoke()
      }
    })
  })
  const a = replica()
  const { tokens, unlocked } = await login(a, clock)
  revokes.push(async () => { await memory.delete(`grant:${unlocked.grant.id}`) })
  t.equal(await errorOf(a.refresh(client, { refreshToken: tokens.refresh_token as string })), 'invalid_grant', 'the client hears its grant is over')
  t.equal(await memory.get(`grant:${unlocked.grant.id}`), undefined, 'and nothing brought the grant back')
})

t.test('a code exchange refreshes an upstream token already due, and fails when it cannot', async (t) => {
  const refused = setup(t, { refresh: async () => { throw new UpstreamError('oauth_error', 'refused', { oauthError: 'bad_refresh_token' }) } })
  t.equal(await errorOf(login(refused.replica(), refused.clock, { expiresAt: refused.clock.now() + 30_000 })), 'invalid_grant', 'refused upstream: invalid_grant')
  const dead = setup(t)
  t.equal(await errorOf(login(dead.replica(), dead.clock, { refreshToken: undefined, expiresAt: dead.clock.now() - 1 })), 'invalid_grant', 'expired without a refresh token')
  const soon = setup(t)
  const { unlocked } = await login(soon.replica(), soon.clock, {
    refreshToken: undefined,
    expiresAt: soon.clock.now() + 30_000
  })
  t.equal(unlocked.upstream.record.upstreamExpiresAt, soon.clock.now() + 30_000, 'due but not expired, with no way to refresh: used while it lasts')
  const fresh = setup(t)
  const { unlocked: renewed } = await login(fresh.replica(), fresh.clock, { expiresAt: fresh.clock.now() + 30_000 })
  t.ok(fresh.calls.includes('ghr_0'), 'refreshed at the exchange')
  t.ok((renewed.upstream.record.upstreamExpiresAt as number) > fresh.clock.now() + 3600_000, 'with a token of hours')
})
