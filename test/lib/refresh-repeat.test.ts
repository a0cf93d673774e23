import t, { type Test } from 'tap'
import { ManualClock } from '../../lib/clock.js'
import { deriveKey } from '../../lib/crypto.js'
import { GrantService, type TokenResponse } from '../../lib/grants.js'
import { OAuthError } from '../../lib/oauth-errors.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import type { Store } from '../../lib/stores/types.js'
import type { UpstreamTokens } from '../../lib/upstream-as/token-endpoint.js'
import { delegatingStore } from '../helpers/failing-store.js'
import { TEST_CLIENT, signInDirect } from '../helpers/grant-service.js'

/*
 * Issue 22: a refresh token sent again within --refresh-grace gets the answer its rotation gave, once that
 * rotation has stored its tokens. The store below holds the rotating request back at the moment it writes
 * the new refresh token, which is where a concurrent repeat (another request, another replica) must wait.
 */

const client = TEST_CLIENT

function setup (
  t: Test,
  options: { accessTtlMs?: number, refreshGraceMs?: number, store?: (memory: MemoryStore) => Store } = {}
) {
  const clock = new ManualClock(Date.now())
  const memory = new MemoryStore({ clock })
  t.teardown(async () => { await memory.close() })
  const grants = new GrantService({
    store: options.store?.(memory) ?? memory,
    clock,
    upstream: { refresh: async (): Promise<UpstreamTokens> => { throw new Error('no upstream refresh expected') } },
    sealKeys: [deriveKey('a-secret-of-at-least-thirty-two-characters', 'upstream-token-seal')],
    codeTtlMs: 60_000,
    accessTtlMs: options.accessTtlMs ?? 3600_000,
    refreshTtlMs: 86_400_000,
    refreshGraceMs: options.refreshGraceMs ?? 30_000,
    tokenCacheTtlMs: 0
  })
  return { clock, memory, grants }
}

const login = async (grants: GrantService): Promise<TokenResponse> =>
  await signInDirect(grants, { accessToken: 'gho_upstream', scopes: [], tokenType: 'bearer' })

const errorOf = async (promise: Promise<unknown>): Promise<string | undefined> =>
  await promise.then(() => undefined, (err: unknown) => err instanceof OAuthError ? err.error : String(err))

/**
 * A signed-in grant whose first refresh is under way and held back at the moment it writes its new refresh
 * token (after its rotation is recorded): `rotating` settles once `release()` is called.
 */
async function stalledRotation (t: Test) {
  let armed = false
  let stalled = false
  let release: () => void = () => {}
  const released = new Promise<void>((resolve) => { release = resolve })
  const { grants } = setup(t, {
    store: (memory) => delegatingStore(memory, {
      set: async (key, value, ttlMs) => {
        if (armed && !stalled && key.startsWith('refresh:') && (value as { rotatedAt?: number }).rotatedAt === undefined) {
          stalled = true
          await released
        }
        await memory.set(key, value, ttlMs)
      }
    })
  })
  const first = await login(grants)
  armed = true
  const rotating = grants.refresh(client, { refreshToken: first.refresh_token as string })
  rotating.catch(() => {})
  // `stalled` is set by the store, from inside the refresh: the loop gives it turns until then.
  // eslint-disable-next-line no-unmodified-loop-condition
  while (!stalled) await new Promise((resolve) => setImmediate(resolve))
  return { grants, first, rotating, release: () => { release() } }
}

t.test('issue 22: a repeat that arrives while the rotation is still storing its tokens waits for them, then gets them', async (t) => {
  const { grants, first, rotating, release } = await stalledRotation(t)
  let repeated: TokenResponse | undefined
  const repeating = grants.refresh(client, { refreshToken: first.refresh_token as string })
    .then((answer) => { repeated = answer })
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(repeated, undefined, 'the repeat waits while the new tokens are not stored')
  release()
  const [rotated] = await Promise.all([rotating, repeating])
  t.same(repeated, rotated, 'then answers with exactly what the rotation answered')
  t.ok(await grants.authenticate(rotated.access_token), 'and those tokens work')
})

t.test('issue 22: a repeat whose grant is revoked while it waits is refused at once; one whose rotation never finishes gets 503', async (t) => {
  const { grants, first, rotating, release } = await stalledRotation(t)

  const started = Date.now()
  t.equal(await errorOf(grants.refresh(client, { refreshToken: first.refresh_token as string })), 'temporarily_unavailable', 'a rotation that never stores its tokens: retry later')
  t.ok(Date.now() - started >= 4900, `after the bounded wait (${Date.now() - started} ms)`)

  const waiting = errorOf(grants.refresh(client, { refreshToken: first.refresh_token as string }))
  await grants.revoke(client, first.access_token)
  const revokedAt = Date.now()
  t.equal(await waiting, 'invalid_grant', 'the revocation wins over the wait')
  t.ok(Date.now() - revokedAt < 1000, 'at once')
  release()
  await rotating.catch(() => undefined)
})

t.test('issue 22: a grace period longer than the access token still repeats the answer; the pair goes on', async (t) => {
  const { clock, grants } = setup(t, { accessTtlMs: 1000, refreshGraceMs: 60_000 })
  const first = await login(grants)
  const rotated = await grants.refresh(client, { refreshToken: first.refresh_token as string })
  clock.advance(5000)
  const repeated = await grants.refresh(client, { refreshToken: first.refresh_token as string })
  t.equal(repeated.refresh_token, rotated.refresh_token, 'the same refresh token, though its access token has expired')
  t.equal(repeated.expires_in, 1, 'expires_in never below 1')
  const next = await grants.refresh(client, { refreshToken: repeated.refresh_token as string })
  t.ok(await grants.authenticate(next.access_token), 'and refreshing it works')
})
