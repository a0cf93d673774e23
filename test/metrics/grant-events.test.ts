import t from 'tap'
import type { ClientRecord } from '../../lib/clients.js'
import { ManualClock } from '../../lib/clock.js'
import { deriveKey } from '../../lib/crypto.js'
import { GatewayEvents, type GatewayEventMap, type GatewayEventName } from '../../lib/events.js'
import { GrantService } from '../../lib/grants.js'
import { createPkcePair } from '../../lib/pkce.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import { UpstreamError } from '../../lib/upstream-as/errors.js'
import type { UpstreamTokens } from '../../lib/upstream-as/token-endpoint.js'
import type { Teardown } from '../helpers/teardown.js'

/*
 * lib/grants.ts reports what it decides: tokens issued, replays, reuse, and every grant it ends with
 * the reason, plus the upstream failures it meets while refreshing. The cases HTTP tests reach only
 * with difficulty (an upstream token that expires with no refresh token, a code used twice at once).
 */

const HOUR = 60 * 60 * 1000

const failure = async (promise: Promise<unknown>): Promise<unknown> =>
  await promise.then(() => undefined, (err: unknown) => err)

function setup (t: Teardown, refresh: (token: string) => Promise<UpstreamTokens> = async () => { throw new Error('no refresh') }) {
  const clock = new ManualClock(Date.now())
  const store = new MemoryStore({ clock })
  t.teardown(() => store.close())
  const events = new GatewayEvents()
  const seen: Array<[GatewayEventName, unknown]> = []
  for (const name of ['tokens_issued', 'refresh_reuse_detected', 'code_replay_detected', 'grant_revoked', 'upstream_error'] as const) {
    events.on(name, (payload: GatewayEventMap[typeof name]) => { seen.push([name, payload]) })
  }
  const grants = new GrantService({
    store,
    clock,
    upstream: { refresh },
    sealKeys: [deriveKey('s'.repeat(32), 'upstream-token-seal')],
    codeTtlMs: 60_000,
    accessTtlMs: HOUR,
    refreshTtlMs: 24 * HOUR,
    refreshGraceMs: 0,
    tokenCacheTtlMs: 0,
    events
  })
  const client: ClientRecord = {
    clientId: 'client-1',
    issuedAt: clock.now(),
    lastSeenAt: clock.now(),
    metadata: { redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] }
  }
  const code = async (upstream: UpstreamTokens) => {
    const { verifier, challenge } = createPkcePair()
    const value = await grants.createCode({ clientId: client.clientId, redirectUri: 'http://127.0.0.1/cb', codeChallenge: challenge, resource: 'https://gw.example/mcp', scope: 'mcp', userId: 'u', upstream })
    return { code: value, codeVerifier: verifier }
  }
  return { clock, grants, client, code, seen }
}

t.test('an upstream token that expires with nothing to refresh it ends the grant: upstream_expired', async (t) => {
  const { clock, grants, client, code, seen } = setup(t)
  const issued = await grants.exchangeCode(client, await code({ accessToken: 'up', expiresAt: clock.now() + 2 * HOUR, scopes: [], tokenType: 'bearer' }))
  const grantId = (seen[0]?.[1] as { grantId: string }).grantId
  clock.advance(3 * HOUR)
  t.match(await failure(grants.refresh(client, { refreshToken: issued.refresh_token ?? '' })), { error: 'invalid_grant' })
  t.same(seen, [
    ['tokens_issued', { clientId: 'client-1', grantId, grantType: 'authorization_code' }],
    ['grant_revoked', { clientId: 'client-1', grantId, reason: 'upstream_expired' }]
  ])
})

t.test('an upstream refresh that fails for want of the upstream: counted by kind, nothing revoked', async (t) => {
  let cause: Error = new UpstreamError('timeout', 'slow')
  const { clock, grants, client, code, seen } = setup(t, async () => { throw cause })
  const upstream: UpstreamTokens = { accessToken: 'up', refreshToken: 'up-r', expiresAt: clock.now() + 2 * HOUR, scopes: [], tokenType: 'bearer' }
  const issued = await grants.exchangeCode(client, await code(upstream))
  clock.advance(2 * HOUR)
  t.match(await failure(grants.refresh(client, { refreshToken: issued.refresh_token ?? '' })), { error: 'temporarily_unavailable' })
  cause = new Error('the store went away')
  t.match(await failure(grants.refresh(client, { refreshToken: issued.refresh_token ?? '' })), { error: 'temporarily_unavailable' })
  t.same(seen.map(([name, payload]) => [name, name === 'tokens_issued' ? 'issued' : payload]), [
    ['tokens_issued', 'issued'],
    ['upstream_error', { kind: 'timeout' }]
  ], 'a failure that is not the upstream\'s is no upstream error')
})

t.test('a code exchanged twice at once: code_replay_detected, and both grants revoked', async (t) => {
  const { grants, client, code, seen } = setup(t)
  const params = await code({ accessToken: 'up', scopes: [], tokenType: 'bearer' })
  const results = await Promise.allSettled([grants.exchangeCode(client, params), grants.exchangeCode(client, params)])
  t.same(results.map((r) => r.status).sort(), ['fulfilled', 'rejected'])
  const names = seen.map(([name]) => name)
  t.equal(names.filter((n) => n === 'code_replay_detected').length, 1)
  const revoked = seen.filter(([name]) => name === 'grant_revoked').map(([, p]) => (p as { reason: string }).reason)
  t.same(revoked, ['code_replay', 'code_replay'], 'the loser\'s grant and the winner\'s')
})
