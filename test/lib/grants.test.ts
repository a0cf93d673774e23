import t from 'tap'
import { ManualClock } from '../../lib/clock.js'
import { deriveKey } from '../../lib/crypto.js'
import { GrantService } from '../../lib/grants.js'
import { OAuthError } from '../../lib/oauth-errors.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import type { UpstreamTokens } from '../../lib/upstream-as/token-endpoint.js'
import { TEST_CLIENT, signInDirect } from '../helpers/grant-service.js'

/*
 * lib/grants.ts on its own, for what only shows with two replicas on one store: each has its own token
 * cache, so one can hold a grant that the other has already revoked.
 */

const client = TEST_CLIENT

t.test('an upstream refresh from a replica\'s cached copy never writes back a grant another replica revoked', async (t) => {
  const clock = new ManualClock(Date.now())
  const store = new MemoryStore({ clock })
  t.teardown(async () => { await store.close() })
  const refreshed: string[] = []
  const upstream = {
    refresh: async (refreshToken: string): Promise<UpstreamTokens> => {
      refreshed.push(refreshToken)
      return { accessToken: 'ghu_new', refreshToken: 'ghr_new', expiresAt: clock.now() + 8 * 3600_000, scopes: [], tokenType: 'bearer' }
    }
  }
  const replica = (): GrantService => new GrantService({
    store,
    clock,
    upstream,
    sealKeys: [deriveKey('a-secret-of-at-least-thirty-two-characters', 'upstream-token-seal')],
    codeTtlMs: 60_000,
    accessTtlMs: 3600_000,
    refreshTtlMs: 30 * 86_400_000,
    refreshGraceMs: 0,
    tokenCacheTtlMs: 60_000
  })
  const a = replica()
  const b = replica()
  // The upstream token expires in two minutes: past the one-minute margin now, inside it later.
  const tokens = await signInDirect(a, { accessToken: 'ghu_old', refreshToken: 'ghr_old', expiresAt: clock.now() + 120_000, scopes: [], tokenType: 'bearer' })
  const cached = await a.authenticate(tokens.access_token)
  if (cached === undefined) throw new Error('no grant')
  t.equal((await a.authenticate(tokens.access_token))?.grant.id, cached.grant.id, 'replica A holds the grant in memory')

  await b.revoke(client, tokens.access_token)
  t.equal(await store.get(`grant:${cached.grant.id}`), undefined, 'replica B revoked it')
  t.equal((await a.authenticate(tokens.access_token))?.grant.id, cached.grant.id, 'A still has its copy within the cache period')

  clock.advance(90_000)
  t.notOk(a.isUpstreamFresh(cached), 'the upstream token is inside the expiry margin')
  const failure: unknown = await a.freshUpstream(cached).then(() => undefined, (err: unknown) => err)
  t.equal(failure instanceof OAuthError ? failure.error : failure, 'invalid_grant', 'the grant is over: the proxy answers invalid_token')
  t.same(refreshed, [], 'no upstream refresh for a revoked grant')
  t.equal(await store.get(`grant:${cached.grant.id}`), undefined, 'and the grant stays gone')
})

t.test('issue 22 finding 2: a refreshable upstream token does not shorten expires_in; one without a refresh token bounds it', async (t) => {
  const clock = new ManualClock(Date.now())
  const store = new MemoryStore({ clock })
  t.teardown(async () => { await store.close() })
  const grants = new GrantService({
    store,
    clock,
    upstream: { refresh: async (): Promise<UpstreamTokens> => { throw new Error('no upstream refresh expected') } },
    sealKeys: [deriveKey('a-secret-of-at-least-thirty-two-characters', 'upstream-token-seal')],
    codeTtlMs: 60_000,
    accessTtlMs: 3600_000,
    refreshTtlMs: 30 * 86_400_000,
    refreshGraceMs: 0,
    tokenCacheTtlMs: 0
  })
  const refreshable = await signInDirect(grants, { accessToken: 'ghu_a', refreshToken: 'ghr_a', expiresAt: clock.now() + 300_000, scopes: [], tokenType: 'bearer' })
  t.equal(refreshable.expires_in, 3600, 'a 5-minute upstream token the gateway can renew: the gateway TTL')
  const final = await signInDirect(grants, { accessToken: 'ghu_b', expiresAt: clock.now() + 300_000, scopes: [], tokenType: 'bearer' })
  t.equal(final.expires_in, 300, 'one it cannot renew: what is left of it, as the grant ends with it')
})
