import t from 'tap'
import { ManualClock } from '../../lib/clock.js'
import { ClientRegistry } from '../../lib/clients.js'
import { FlowStore, type NewFlow } from '../../lib/flows.js'
import { MalformedRecordError, StoreFullError, StoreUnavailableError } from '../../lib/stores/errors.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import { CheckedStore, checkedStore, isWellFormed, storeKind } from '../../lib/stores/records.js'
import type { Store } from '../../lib/stores/types.js'

function logRecorder (): { log: { warn (details: { storeKind: string }, message: string): void }, lines: unknown[] } {
  const lines: unknown[] = []
  return { lines, log: { warn: (details, message) => { lines.push({ ...details, message }) } } }
}

const client = { clientId: 'gwc_1', issuedAt: 1, lastSeenAt: 1, metadata: { redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], response_types: ['code'] } }
const flow = { id: 'f', browserHash: 'b', csrf: 'c', clientId: 'gwc_1', redirectUri: 'http://127.0.0.1/cb', codeChallenge: 'x', resource: 'r', scope: 'mcp', expiresAt: 5 }
const grant = { id: 'g', clientId: 'c', userId: 'u', scope: 'mcp', resource: 'r', sealedUpstream: 's', upstreamScopes: ['repo'], accessHash: 'a', expiresAt: 1 }
const code = { clientId: 'c', redirectUri: 'u', codeChallenge: 'x', resource: 'r', scope: 'mcp', userId: 'u', expiresAt: 1, sealedUpstream: '', upstreamScopes: [], consumedBy: 'g' }

t.test('storeKind is the key up to its first colon', async (t) => {
  t.equal(storeKind('flow:abc'), 'flow')
  t.equal(storeKind('upstream:client:abc'), 'upstream')
  t.equal(storeKind('nokind'), 'nokind')
})

t.test('issue 15 finding 3: each kind the gateway stores has its shape checked', async (t) => {
  const good: Array<[string, unknown]> = [
    ['client:1', client],
    ['client:2', { ...client, secretHash: 'h', unused: true, metadata: { ...client.metadata, client_name: 'n' } }],
    ['flow:1', flow],
    ['flow:2', { ...flow, state: 's', userId: 'u', approved: true }],
    ['upstream-state:1', { flowId: 'f', verifier: 'v' }],
    ['code:1', code],
    ['grant:1', { ...grant, refreshHash: 'r', upstreamExpiresAt: 9 }],
    ['grant:2', { ...grant, sealedUpstream: undefined, upstreamScopes: undefined, upstreamTokens: 's' }],
    ['upstream-tokens:s', { id: 's', generation: 'g', holders: { g: { publicKey: 'p', sealed: 'x', since: 1, mac: 'm' } }, upstreamScopes: [], expiresAt: 1, version: 1 }],
    ['access:1', { grantId: 'g', clientId: 'c', scope: 'mcp', resource: 'r', expiresAt: 1, wrappedKey: 'k' }],
    ['refresh:1', { grantId: 'g', clientId: 'c', expiresAt: 1, wrappedKey: '', rotatedAt: 3 }],
    ['consent:1', { scopes: ['repo'] }],
    ['mcp-session:1', { grantId: 'g' }],
    ['upstream-scope-needs:1', { scopes: [] }],
    ['upstream:client:1', { clientId: 'c', authMethod: 'none' }],
    ['some-other-kind:1', 'anything: kinds the gateway does not store are not checked']
  ]
  for (const [key, value] of good) t.equal(isWellFormed(key, value), true, key)
  const bad: Array<[string, unknown]> = [
    ['client:1', { ...client, metadata: { token_endpoint_auth_method: 'none', grant_types: [] } }],
    ['client:2', { ...client, metadata: { ...client.metadata, redirect_uris: [1] } }],
    ['client:3', { ...client, unused: 'yes' }],
    ['client:4', 'a string'],
    ['client:5', null],
    ['client:6', [client]],
    ['flow:1', { ...flow, expiresAt: '5' }],
    ['upstream-state:1', { flowId: 'f' }],
    ['code:1', { ...code, upstreamScopes: 'repo' }],
    ['grant:1', { ...grant, upstreamTokens: 7 }],
    ['upstream-tokens:s', { id: 's', generation: 'g', holders: { g: { publicKey: 'p' } }, upstreamScopes: [], expiresAt: 1, version: 1 }],
    ['upstream-tokens:s', { id: 's', generation: 'g', holders: [], upstreamScopes: [], expiresAt: 1, version: 1 }],
    ['access:1', { grantId: 'g' }],
    ['refresh:1', { grantId: 'g', clientId: 'c', expiresAt: 1 }],
    ['consent:1', {}],
    ['mcp-session:1', { grantId: 7 }],
    ['upstream-scope-needs:1', { scopes: [null] }],
    ['upstream:client:1', { clientId: 'c' }]
  ]
  for (const [key, value] of bad) t.equal(isWellFormed(key, value), false, `${key} ${JSON.stringify(value)}`)
})

t.test('issue 15 finding 3: checkedStore reads malformed records as missing, logging their kind and never their value', async (t) => {
  const memory = new MemoryStore()
  t.teardown(() => memory.close())
  const { log, lines } = logRecorder()
  const store = checkedStore(memory, log)
  t.equal(checkedStore(store, log), store, 'checking twice is checking once')
  await store.set('client:bad', { clientId: 'gwc_bad', secretHash: 'secret-hash-value' }, 1000)
  await store.set('client:good', client, 1000)
  t.equal(await store.get('client:bad'), undefined)
  t.same(await store.get('client:good'), client)
  t.equal(await store.get('client:none'), undefined)
  t.equal(await store.swap('client:bad', client, 1000), undefined, 'swap: the previous value was malformed')
  t.same(await store.take('client:bad'), client, 'swap wrote the new value')
  await store.set('grant:bad', { id: 'g' }, 1000)
  t.equal(await store.take('grant:bad'), undefined)
  t.equal(await memory.get('grant:bad'), undefined, 'take removed it all the same')
  t.same(lines, [
    { storeKind: 'client', message: 'malformed store record read as missing' },
    { storeKind: 'client', message: 'malformed store record read as missing' },
    { storeKind: 'grant', message: 'malformed store record read as missing' }
  ])
  t.notMatch(JSON.stringify(lines), /secret-hash-value|gwc_bad/, 'nothing of the value is logged')

  t.equal(await store.add('flow:1', flow, 1000, 1), true, 'the other methods pass through')
  t.equal(await store.add('flow:2', flow, 1000, 1), false)
  await store.release('flow:1')
  t.equal(await store.add('flow:2', flow, 1000, 1), true)
  await store.delete('flow:2')
  t.equal(await memory.get('flow:2'), undefined)
  t.equal(await store.increment('counter:1', 1000), 1)
  t.equal(await store.ping(), true)
  await store.close()
  t.equal(memory.size, 0)
})

t.test('issue 15 finding 3: a value that is not JSON reads as missing; a store that is down still fails', async (t) => {
  const { log, lines } = logRecorder()
  let failure: Error = new MalformedRecordError(new SyntaxError('x'))
  const broken = { get: async () => { throw failure } } as unknown as Store
  const store = new CheckedStore(broken, log)
  t.equal(await store.get('client:1'), undefined, 'MalformedRecordError (the Redis store)')
  failure = new SyntaxError('Unexpected token')
  t.equal(await store.get('flow:1'), undefined, 'SyntaxError (a host store parsing JSON itself)')
  t.equal(lines.length, 2)
  failure = new StoreUnavailableError(new Error('down'))
  await t.rejects(store.get('client:1'), StoreUnavailableError)
})

t.test('issue 15 finding 1: FlowStore refuses sign-ins past maxPending with StoreFullError, flows and upstream states alike', async (t) => {
  const clock = new ManualClock()
  const memory = new MemoryStore({ clock })
  t.teardown(() => memory.close())
  const flows = new FlowStore({ store: memory, clock, ttlMs: 1000, maxPending: 1 })
  const fresh: NewFlow = { clientId: 'c', redirectUri: 'http://127.0.0.1/cb', codeChallenge: 'x', resource: 'r', scope: 'mcp' }
  const first = await flows.create('browser', fresh)
  await t.rejects(flows.create('browser', fresh), new StoreFullError('flow'))
  const state = await flows.beginLeg('upstream', first, { verifier: 'verifier' })
  await t.rejects(flows.beginLeg('upstream', first, { verifier: 'verifier' }), new StoreFullError('upstream-state'))
  t.ok(await flows.takeLeg('upstream', state))
  await flows.beginLeg('upstream', first, { verifier: 'verifier' })
  await flows.finish(first.id)
  t.ok(await flows.create('browser', fresh), 'finishing a flow makes room')
})

t.test('issue 15 finding 2: ClientRegistry bounds unused clients; markUsed moves a client to the idle TTL and out of the count', async (t) => {
  const clock = new ManualClock()
  const memory = new MemoryStore({ clock })
  t.teardown(() => memory.close())
  const registry = new ClientRegistry({
    store: memory,
    clock,
    idleTtlMs: 10_000_000,
    unusedTtlMs: 7_200_000,
    maxUnused: 1
  })
  const metadata = { redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' as const, grant_types: ['authorization_code'], response_types: ['code'] }
  const { client } = await registry.register(metadata)
  t.equal(client.unused, true)
  await t.rejects(registry.register(metadata), new StoreFullError('client'))
  await registry.markUsed(client)
  t.equal(memory.countOf('client'), 0)
  const used = await registry.find(client.clientId)
  t.equal(used?.unused, undefined, 'stored as used')
  t.equal(used?.lastSeenAt, clock.now())
  await registry.markUsed(used as NonNullable<typeof used>)
  const { client: other } = await registry.register(metadata)
  clock.advance(7_200_000)
  t.equal(await registry.find(other.clientId), undefined, 'the unused one expired')
  t.ok(await registry.find(client.clientId), 'the used one lives on')
})
