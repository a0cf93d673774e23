import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { ManualClock } from '../../lib/clock.js'
import { deriveKey, holderPublicKey, openSealedTo, seal, sealTo } from '../../lib/crypto.js'
import type { GrantRecord, UpstreamTokenRecord } from '../../lib/grants/records.js'
import { UpstreamTokenShares, shareIdFor } from '../../lib/grants/upstream-tokens.js'
import { GrantService } from '../../lib/grants.js'
import type { OAuthError } from '../../lib/oauth-errors.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import { delegatingStore } from '../helpers/failing-store.js'
import { TEST_CLIENT, signInDirect } from '../helpers/grant-service.js'

/*
 * Issue 19 part 3 on lib/grants/upstream-tokens.ts alone: how grants join, leave and outlive a share of
 * upstream tokens, and how a grant written before shares existed moves into one.
 */

function setup (t: Test) {
  const clock = new ManualClock(Date.now())
  const store = new MemoryStore({ clock })
  t.teardown(async () => { await store.close() })
  const renewAt = (at: number): number => at - 60_000
  const shares = new UpstreamTokenShares({ store, clock, sealKeys: [SEAL_KEY], lockTtlMs: 1000, renewAt })
  return { clock, store, shares }
}

const SEAL_KEY = deriveKey('a-secret-of-at-least-thirty-two-characters', 'upstream-token-seal')
const tokens = (accessToken: string) => ({ accessToken, scopes: ['repo'], tokenType: 'bearer' })

function grant (id: string, clock: ManualClock, shareId = 'share-1'): GrantRecord & { upstreamTokens: string } {
  return { id, clientId: 'c', userId: 'u', scope: 'mcp', resource: 'r', upstreamTokens: shareId, accessHash: '', expiresAt: clock.now() + 3600_000 }
}

t.test('sealing to a public key: only the matching grant key opens it, and only with its associated data', async (t) => {
  const key = randomBytes(32)
  const publicKey = holderPublicKey(key)
  t.equal(holderPublicKey(key), publicKey, 'the same key, the same public key')
  const sealed = sealTo(publicKey, 'ghu_secret', 'upstream-tokens:s:g')
  t.notMatch(sealed, 'ghu_secret')
  t.equal(openSealedTo(key, publicKey, sealed, 'upstream-tokens:s:g'), 'ghu_secret')
  const other = randomBytes(32)
  t.throws(() => openSealedTo(other, holderPublicKey(other), sealed, 'upstream-tokens:s:g'), 'another grant\'s key')
  t.throws(() => openSealedTo(other, publicKey, sealed, 'upstream-tokens:s:g'), 'another key claiming this public key')
  t.throws(() => openSealedTo(key, publicKey, sealed, 'upstream-tokens:s:other'), 'moved to another grant')
  t.throws(() => openSealedTo(key, publicKey, 'v1.not.this', 'a'), 'not a sealed-to value')
})

t.test('a share id is one per gateway user, upstream user and scope set; without an upstream user, one per grant', async (t) => {
  t.equal(shareIdFor('alice', '1', ['repo', 'gist']), shareIdFor('alice', '1', ['gist', 'repo']), 'scope order does not matter')
  t.not(shareIdFor('alice', '1', ['repo']), shareIdFor('bob', '1', ['repo']))
  t.not(shareIdFor('alice', '1', ['repo']), shareIdFor('alice', '2', ['repo']))
  t.not(shareIdFor('alice', '1', ['repo']), shareIdFor('alice', '1', ['repo', 'gist']))
  t.not(shareIdFor('alice', undefined, ['repo']), shareIdFor('alice', undefined, ['repo']))
})

t.test('a share keeps each holder\'s copy apart, outlives its longest grant, and ends with its last holder', async (t) => {
  const { clock, store, shares } = setup(t)
  const keyA = randomBytes(32)
  const keyB = randomBytes(32)
  const a = await shares.hold(grant('gA', clock), keyA, tokens('gho_1'))
  const b = await shares.hold(grant('gB', clock), keyB, tokens('gho_2'))
  t.equal(b.upstream.tokens.a, 'gho_2')
  const unlockedA = await shares.unlock(a.grant, keyA)
  t.equal(unlockedA?.upstream.tokens.a, 'gho_2', 'the newest sign-in\'s token, for the older grant too')
  t.equal(await shares.unlock(a.grant, keyB), undefined, 'one grant\'s key opens no other\'s copy: as good as revoked')
  const stored = await store.get<UpstreamTokenRecord>('upstream-tokens:share-1') as UpstreamTokenRecord
  const holderA = stored.holders['gA'] as UpstreamTokenRecord['holders'][string]
  await store.set('upstream-tokens:share-1', { ...stored, holders: { ...stored.holders, gA: { ...holderA, sealed: 'x1.garbage' } } }, 3600_000)
  t.equal(await shares.unlock(a.grant, keyA), undefined, 'nor does a copy that is not a sealed value')
  await store.set('upstream-tokens:share-1', stored, 3600_000)

  await shares.outlast('share-1', clock.now() + 7200_000)
  const record = await store.get<UpstreamTokenRecord>('upstream-tokens:share-1') as UpstreamTokenRecord
  t.equal(record.expiresAt, clock.now() + 7200_000, 'kept as long as a refreshed grant lasts')
  await shares.outlast('share-1', clock.now())
  t.equal((await store.get<UpstreamTokenRecord>('upstream-tokens:share-1'))?.expiresAt, clock.now() + 7200_000, 'never shortened')

  t.equal(await shares.release('share-1', 'gA'), undefined, 'not the last holder')
  t.equal(await shares.release('share-1', 'gA'), undefined, 'releasing twice is harmless')
  const last = await shares.release('share-1', 'gB')
  t.same(Object.keys(last?.holders ?? {}), ['gB'], 'the last holder gets the record back, to revoke upstream')
  t.equal(await store.get('upstream-tokens:share-1'), undefined, 'and the share is gone')
  t.equal(await shares.unlock(b.grant, keyB), undefined)
})

t.test('a public key slipped into the store without the operator\'s secret gets no copy of the next tokens', async (t) => {
  const { clock, store, shares } = setup(t)
  const key = randomBytes(32)
  await shares.hold(grant('gA', clock), key, tokens('gho_1'))
  const stored = await store.get<UpstreamTokenRecord>('upstream-tokens:share-1') as UpstreamTokenRecord
  const thief = randomBytes(32)
  const forged = { publicKey: holderPublicKey(thief), sealed: '', since: clock.now(), mac: 'made-up' }
  const gA = stored.holders['gA'] as UpstreamTokenRecord['holders'][string]
  await store.set('upstream-tokens:share-1', {
    ...stored,
    holders: { gA: { ...gA, publicKey: holderPublicKey(thief) }, gT: forged },
    version: stored.version + 1
  }, 3600_000)
  await shares.hold(grant('gB', clock), randomBytes(32), tokens('gho_2'))
  const after = await store.get<UpstreamTokenRecord>('upstream-tokens:share-1') as UpstreamTokenRecord
  t.same(Object.keys(after.holders), ['gB'], 'neither the forged holder nor the swapped key is sealed for')
  t.notMatch(JSON.stringify(after), holderPublicKey(thief))
})

t.test('holders whose grants are gone are dropped after a minute; a full share gives new grants tokens of their own', async (t) => {
  const { clock, store, shares } = setup(t)
  const key = randomBytes(32)
  for (let i = 0; i < 50; i++) await shares.hold(grant(`g${i}`, clock), key, tokens(`gho_${i}`))
  const full = await shares.hold(grant('g50', clock), key, tokens('gho_50'))
  t.not(full.grant.upstreamTokens, 'share-1', 'the 51st grant gets a share of its own')
  t.equal(full.upstream.tokens.a, 'gho_50')
  t.equal((await shares.unlock(grant('g0', clock), key))?.upstream.tokens.a, 'gho_49', 'nobody was dropped to make room')

  // None of those grants was stored: a minute on, they are dropped when the next one joins.
  await store.set('grant:g1', grant('g1', clock), 3600_000)
  clock.advance(61_000)
  await shares.hold(grant('g51', clock), key, tokens('gho_51'))
  const record = await store.get<UpstreamTokenRecord>('upstream-tokens:share-1') as UpstreamTokenRecord
  t.same(Object.keys(record.holders).sort(), ['g1', 'g51'])
})

t.test('a grant written before shares existed moves into one of its own on first use, once', async (t) => {
  const { clock, store, shares } = setup(t)
  const key = randomBytes(32)
  const legacy: GrantRecord = {
    id: 'gOld',
    clientId: 'c',
    userId: 'u',
    scope: 'mcp',
    resource: 'r',
    sealedUpstream: seal(key, JSON.stringify({ a: 'gho_old', r: 'ghr_old' }), 'gOld'),
    upstreamExpiresAt: clock.now() + 3600_000,
    upstreamScopes: ['repo'],
    accessHash: 'h',
    expiresAt: clock.now() + 86_400_000,
    version: 3
  }
  await store.set('grant:gOld', legacy, 86_400_000)
  const unlocked = await shares.unlock(legacy, key)
  t.same(unlocked?.upstream.tokens, { a: 'gho_old', r: 'ghr_old' })
  t.equal(unlocked?.upstream.record.upstreamExpiresAt, legacy.upstreamExpiresAt)
  const stored = await store.get<GrantRecord>('grant:gOld') as GrantRecord
  t.equal(stored.sealedUpstream, undefined, 'the grant no longer holds the tokens itself')
  t.equal(stored.upstreamTokens, unlocked?.grant.upstreamTokens)
  t.equal(stored.version, 4)

  // Another request adopted it first from the same old copy: that one stands, this one's share is dropped.
  const again = await shares.unlock(legacy, key)
  t.equal(again?.grant.upstreamTokens, stored.upstreamTokens)
  t.equal(await shares.unlock({ ...legacy, sealedUpstream: undefined } as unknown as GrantRecord, key), undefined,
    'a grant with neither reads as gone')
})

t.test('a share that keeps changing, or whose lock is held too long, gives up with 503 instead of waiting forever', async (t) => {
  const clock = new ManualClock(Date.now())
  const memory = new MemoryStore({ clock })
  t.teardown(async () => { await memory.close() })
  const store = delegatingStore(memory, { replace: async () => false })
  const shares = new UpstreamTokenShares({ store, clock, sealKeys: [SEAL_KEY], lockTtlMs: 50, renewAt: (at) => at })
  await shares.hold(grant('gA', clock), randomBytes(32), tokens('gho_1'))
  t.equal(await shares.outlast('share-1', clock.now() + 7200_000).catch((err: OAuthError) => err.error),
    'temporarily_unavailable', 'a write that never lands')
  // Another replica holds the lock (it hangs on GitHub, say).
  await memory.lock('lock:upstream-tokens:share-1', 60_000)
  t.equal(await shares.hold(grant('gB', clock), randomBytes(32), tokens('gho_2')).catch((err: OAuthError) => err.error),
    'temporarily_unavailable', 'a sign-in does not wait past the lock\'s time')
})

t.test('the last grant revoked with its token: an upstream revocation that fails is logged, and the grant ends anyway', async (t) => {
  const clock = new ManualClock(Date.now())
  const store = new MemoryStore({ clock })
  t.teardown(async () => { await store.close() })
  const revoked: string[] = []
  let fail = true
  const grants = new GrantService({
    store,
    clock,
    upstream: { refresh: async () => { throw new Error('unused') } },
    sealKeys: [deriveKey('a-secret-of-at-least-thirty-two-characters', 'upstream-token-seal')],
    codeTtlMs: 60_000,
    accessTtlMs: 3600_000,
    refreshTtlMs: 86_400_000,
    refreshGraceMs: 0,
    tokenCacheTtlMs: 0,
    revokeUpstream: async (token) => {
      if (fail) throw new Error('GitHub is down')
      revoked.push(token)
      return true
    }
  })
  const warnings: unknown[] = []
  const log = { info: () => {}, warn: (obj: object) => { warnings.push(obj) }, error: () => {} }
  const first = await signInDirect(grants, { accessToken: 'gho_1', scopes: [], tokenType: 'bearer' })
  await grants.revoke(TEST_CLIENT, first.access_token, log)
  t.equal(await grants.authenticate(first.access_token), undefined, 'the grant is over')
  t.match(warnings, [{ err: 'GitHub is down' }], 'the failure is logged')
  fail = false
  const second = await signInDirect(grants, { accessToken: 'gho_2', scopes: [], tokenType: 'bearer' })
  await grants.revoke(TEST_CLIENT, second.refresh_token as string, log)
  t.same(revoked, ['gho_2'], 'revoked upstream with the refresh token\'s key too')
})

t.test('after the operator\'s secret is rotated, holders vouched for under the old one keep their copy, vouched anew', async (t) => {
  const { clock, store, shares } = setup(t)
  const keyA = randomBytes(32)
  await shares.hold(grant('gA', clock), keyA, tokens('gho_1'))
  const newKey = deriveKey('a-new-secret-of-at-least-thirty-two-characters', 'upstream-token-seal')
  const renewAt = (at: number): number => at
  const rotated = new UpstreamTokenShares({ store, clock, sealKeys: [newKey, SEAL_KEY], lockTtlMs: 1000, renewAt })
  const before = await store.get<UpstreamTokenRecord>('upstream-tokens:share-1') as UpstreamTokenRecord
  await rotated.hold(grant('gB', clock), randomBytes(32), tokens('gho_2'))
  t.equal((await rotated.unlock(grant('gA', clock), keyA))?.upstream.tokens.a, 'gho_2', 'the old holder gets the new token')
  const after = await store.get<UpstreamTokenRecord>('upstream-tokens:share-1') as UpstreamTokenRecord
  t.not(after.holders['gA']?.mac, before.holders['gA']?.mac, 'now under the new secret')
  const onlyNew = new UpstreamTokenShares({ store, clock, sealKeys: [newKey], lockTtlMs: 1000, renewAt })
  await onlyNew.hold(grant('gC', clock), randomBytes(32), tokens('gho_3'))
  t.equal((await onlyNew.unlock(grant('gA', clock), keyA))?.upstream.tokens.a, 'gho_3', 'so the old secret can go')
})
