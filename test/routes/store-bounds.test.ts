// Issue 15 (state bounds): a flood of sign-ins or registrations is refused with 503 and evicts nothing;
// registrations that never sign in expire soon; malformed records read as missing (4xx, never 500).
// test/redis/store-bounds.test.ts runs this file again on Redis.
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { hashSecret } from '../../lib/crypto.js'
import { createPkcePair } from '../../lib/pkce.js'
import { StoreUnavailableError } from '../../lib/stores/errors.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import { RedisStore } from '../../lib/stores/redis.js'
import type { Store } from '../../lib/stores/types.js'
import {
  Browser, authorizeFully, authorizeUrl, buildGateway, exchangeCode, pathOf, registerClient, signInAndApprove,
  startFlow, tokenRequest, visitUpstream, type RegisteredClient
} from '../helpers/gateway.js'
import type { GatewayPluginOptions } from '../../app.js'
import { delegatingStore } from '../helpers/failing-store.js'
import { SHARED_REDIS_URL, deletePrefix, testPrefix } from '../helpers/redis.js'

const onRedis = process.env.MCP_GATEWAY_TEST_STORE === 'redis'

/**
 * Where the gateway under test keeps its state, with a handle to read and write it behind its back: a
 * MemoryStore handed in as the host's store, or the Redis prefix of the gateway (`raw` without a prefix).
 */
async function inspectableStore (
  t: Test
): Promise<{ options: Partial<GatewayPluginOptions>, store: Store, raw?: Redis, prefix: string }> {
  if (!onRedis) {
    const store = new MemoryStore()
    t.teardown(() => store.close())
    return { options: { store }, store, prefix: '' }
  }
  const prefix = testPrefix('store-bounds')
  const store = new RedisStore({ url: SHARED_REDIS_URL, keyPrefix: prefix })
  await store.connect()
  const raw = new Redis(SHARED_REDIS_URL)
  t.teardown(async () => {
    await store.close()
    raw.disconnect()
    await deletePrefix(SHARED_REDIS_URL, prefix)
  })
  return { options: { store: SHARED_REDIS_URL, storePrefix: prefix }, store, raw, prefix }
}

async function authorizeStatus (app: Awaited<ReturnType<typeof buildGateway>>['app'], client: RegisteredClient): Promise<number> {
  const res = await app.inject({ method: 'GET', url: authorizeUrl(client, { challenge: createPkcePair().challenge }) })
  return res.statusCode
}

t.test('issue 15 finding 1: a flood of /authorize past maxPendingSignIns gets 503 pages; signed-in clients, grants, refresh tokens and sign-ins already under way live on', async (t) => {
  const inspect = await inspectableStore(t)
  const { app } = await buildGateway(t, { maxPendingSignIns: 50, refreshGrace: 0, ...inspect.options })
  const client = await registerClient(app)
  const done = await authorizeFully(app, client)
  const tokens = (await exchangeCode(app, client, done.code, done.verifier)).json()
  const refreshed = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id })
  t.equal(refreshed.statusCode, 200, 'a first refresh: the original refresh token is now a reuse marker')
  // Someone who started signing in before the flood.
  const { verifier, challenge } = createPkcePair()
  const early = new Browser()
  const earlyFlow = await startFlow(app, early, client, { challenge })

  const statuses: number[] = []
  let refusal
  for (let i = 0; i < 80; i++) {
    // From many addresses, as a distributed flood comes: the per-address rate limit is not what stops it.
    const res = await app.inject({ method: 'GET', url: authorizeUrl(client, { challenge: createPkcePair().challenge }), remoteAddress: `192.0.2.${i}` })
    statuses.push(res.statusCode)
    if (res.statusCode === 503) refusal = res
  }
  t.equal(statuses.filter((s) => s === 302).length, 49, 'the bound (50) minus the sign-in under way were admitted')
  t.equal(statuses.filter((s) => s === 503).length, 31, 'the rest were refused')
  t.equal(refusal?.headers['retry-after'], '5')
  t.match(refusal?.body, /Too many sign-ins are in progress/)
  t.match(refusal?.headers['content-type'], /text\/html/)
  if (inspect.raw !== undefined) {
    t.equal(await inspect.raw.zcard(`${inspect.prefix}index:flow`), 50, 'the Redis index holds the bound, no more')
  }

  // The sign-in begun before the flood completes: its upstream state is a kind of its own.
  const callback = await visitUpstream(await signInAndApprove(app, early, earlyFlow))
  const back = await early.get(app, pathOf(callback))
  t.equal(back.statusCode, 302)
  const code = new URL(back.headers.location as string).searchParams.get('code') ?? ''
  t.equal((await exchangeCode(app, client, code, verifier)).statusCode, 200, 'and its code is exchanged')

  const again = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: refreshed.json().refresh_token, client_id: client.client_id })
  t.equal(again.statusCode, 200, 'the client, its grant and its refresh token survived the flood')
  const reused = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id })
  t.equal(reused.json().error, 'invalid_grant', 'the reuse marker survived too: a rotated token is still caught')
  const revoked = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: again.json().refresh_token, client_id: client.client_id })
  t.equal(revoked.json().error, 'invalid_grant', 'and reuse revoked the grant')
})

t.test('issue 15 finding 1: once the flood\'s flows expire, sign-ins are admitted again', { skip: onRedis && 'Redis expires by its own clock' }, async (t) => {
  const { app, clock } = await buildGateway(t, { maxPendingSignIns: 3 })
  const client = await registerClient(app)
  for (let i = 0; i < 3; i++) t.equal(await authorizeStatus(app, client), 302)
  t.equal(await authorizeStatus(app, client), 503)
  clock.advance(600_000)
  t.equal(await authorizeStatus(app, client), 302, 'the flow TTL passed: room again')
})

t.test('issue 15 finding 2: registrations past maxUnusedClients get 503 temporarily_unavailable; a completed sign-in makes room', async (t) => {
  const inspect = await inspectableStore(t)
  const { app } = await buildGateway(t, { maxUnusedClients: 3, ...inspect.options })
  const clients = [await registerClient(app), await registerClient(app), await registerClient(app)]
  const refused = await app.inject({ method: 'POST', url: '/register', payload: { redirect_uris: ['http://127.0.0.1:33418/callback'], token_endpoint_auth_method: 'none' } })
  t.equal(refused.statusCode, 503)
  t.same(refused.json(), { error: 'temporarily_unavailable', error_description: 'the gateway is busy, try again later' })
  t.equal(refused.headers['retry-after'], '5')
  t.equal(refused.headers['cache-control'], 'no-store')

  const first = clients[0] as RegisteredClient
  const done = await authorizeFully(app, first)
  t.equal((await exchangeCode(app, first, done.code, done.verifier)).statusCode, 200)
  t.equal((await registerClient(app)).client_id.startsWith('gwc_'), true, 'the first client is used now: room for one more')
  if (inspect.raw !== undefined) {
    t.equal(await inspect.raw.zcard(`${inspect.prefix}index:client`), 3, 'the Redis index counts unused clients only')
    const usedTtl = await inspect.raw.pttl(`${inspect.prefix}client:${first.client_id}`)
    const unusedTtl = await inspect.raw.pttl(`${inspect.prefix}client:${(clients[1] as RegisteredClient).client_id}`)
    t.ok(unusedTtl > 0 && unusedTtl <= 86_400_000, `an unused client lives unusedClientTtl (PTTL ${unusedTtl})`)
    t.ok(usedTtl > 86_400_000, `a used one clientTtl (PTTL ${usedTtl})`)
  }
})

t.test('issue 15 finding 2: an unused client expires after unusedClientTtl, untouched by use; a used one lives on', { skip: onRedis && 'Redis expires by its own clock (PTTLs are checked above)' }, async (t) => {
  const { app, clock } = await buildGateway(t, { unusedClientTtl: 7200 })
  const used = await registerClient(app)
  const unused = await registerClient(app)
  const done = await authorizeFully(app, used)
  t.equal((await exchangeCode(app, used, done.code, done.verifier)).statusCode, 200)
  clock.advance(3_700_000)
  t.equal(await authorizeStatus(app, unused), 302, 'after an hour the unused client is still there (read, so an idle client would be touched)')
  clock.advance(3_600_000)
  const gone = await app.inject({ method: 'GET', url: authorizeUrl(unused, { challenge: createPkcePair().challenge }) })
  t.equal(gone.statusCode, 400)
  t.match(gone.body, /Unknown client/, 'two hours after registration it is gone: the read did not extend it')
  t.equal(await authorizeStatus(app, used), 302, 'the used client lives on (clientTtl idle)')
  const token = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: 'gwr_x', client_id: unused.client_id })
  t.equal(token.json().error, 'invalid_client')
})

t.test('issue 15 finding 3: malformed records read as missing: a normal 4xx, never a 500', async (t) => {
  const inspect = await inspectableStore(t)
  const { app } = await buildGateway(t, inspect.options)
  const clientId = 'gwc_malformed'
  await inspect.store.set(`client:${clientId}`, { clientId, issuedAt: 1, lastSeenAt: 1, metadata: { token_endpoint_auth_method: 'none' } }, 60_000)
  const noUris = await app.inject({ method: 'GET', url: `/authorize?response_type=code&client_id=${clientId}&code_challenge=${createPkcePair().challenge}&code_challenge_method=S256` })
  t.equal(noUris.statusCode, 400, 'a client without redirect_uris')
  t.match(noUris.body, /Unknown client/)
  const noUrisToken = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: 'gwr_x', client_id: clientId })
  t.equal(noUrisToken.statusCode, 401)
  t.equal(noUrisToken.json().error, 'invalid_client')

  // Not JSON at all on Redis (written without the store); a bare string where an object belongs in memory.
  if (inspect.raw !== undefined) await inspect.raw.set(`${inspect.prefix}client:gwc_garbage`, '{"clientId": oops', 'PX', 60_000)
  else await inspect.store.set('client:gwc_garbage', 'not a record', 60_000)
  const garbage = await app.inject({ method: 'GET', url: `/authorize?response_type=code&client_id=gwc_garbage&code_challenge=${createPkcePair().challenge}&code_challenge_method=S256` })
  t.equal(garbage.statusCode, 400)
  t.match(garbage.body, /Unknown client/)
  const garbageToken = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: 'gwr_x', client_id: 'gwc_garbage' })
  t.equal(garbageToken.json().error, 'invalid_client')

  const client = await registerClient(app)
  const done = await authorizeFully(app, client)
  const tokens = (await exchangeCode(app, client, done.code, done.verifier)).json()
  const refresh = await inspect.store.get<{ grantId: string }>(`refresh:${hashSecret(tokens.refresh_token)}`)
  const grantKey = `grant:${refresh?.grantId ?? ''}`
  const grant = await inspect.store.get<Record<string, unknown>>(grantKey)
  t.ok(grant !== undefined, 'the grant as stored')
  await inspect.store.set(grantKey, { ...grant, sealedUpstream: undefined, upstreamScopes: 'repo' }, 60_000)
  const res = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id })
  t.equal(res.statusCode, 400, 'a grant missing fields')
  t.equal(res.json().error, 'invalid_grant')

  await inspect.store.set(`code:${hashSecret('gwo_spoilt')}`, { clientId: client.client_id }, 60_000)
  const code = await exchangeCode(app, client, 'gwo_spoilt', createPkcePair().verifier)
  t.equal(code.json().error, 'invalid_grant', 'a code missing fields')
})

t.test('issue 15 finding 2: a store failure while marking the client used does not cost the client its tokens', { skip: onRedis && 'a host store of the test\'s own' }, async (t) => {
  const memory = new MemoryStore()
  t.teardown(() => memory.close())
  const store = delegatingStore(memory, { release: async () => { throw new StoreUnavailableError(new Error('down')) } })
  const { app } = await buildGateway(t, { store })
  const client = await registerClient(app)
  const done = await authorizeFully(app, client)
  const res = await exchangeCode(app, client, done.code, done.verifier)
  t.equal(res.statusCode, 200, 'the code is spent: the tokens go out')
  t.match(res.json().access_token, /^gwa_/)
})

t.test('issue 15 finding 1: upstream states past maxPendingSignIns get the 503 page, not an upstream error', { skip: onRedis && 'the same on Redis; one run suffices' }, async (t) => {
  const { app } = await buildGateway(t, { maxPendingSignIns: 1 })
  const client = await registerClient(app)
  const browser = new Browser()
  const flow = await startFlow(app, browser, client, { challenge: createPkcePair().challenge })
  await signInAndApprove(app, browser, flow)
  // Approving the same flow again asks for a second upstream state while the first is pending.
  const again = await browser.post(app, '/consent', { ...flow, decision: 'approve' })
  t.equal(again.statusCode, 503)
  t.match(again.body, /Too many sign-ins are in progress/)
})
