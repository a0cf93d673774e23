import t from 'tap'
import { ManualClock } from '../../lib/clock.js'
import { hashSecret } from '../../lib/crypto.js'
import { SessionStore } from '../../lib/sessions.js'
import { MemoryStore } from '../../lib/stores/memory.js'

function sessions (cacheTtlMs = 5000): { store: MemoryStore, clock: ManualClock, sessions: SessionStore } {
  const clock = new ManualClock(Date.now())
  const store = new MemoryStore({ clock })
  t.teardown(async () => { await store.close() })
  return { store, clock, sessions: new SessionStore({ store, clock, ttlMs: 60_000, cacheTtlMs }) }
}

t.test('MCP security best practices (session hijacking): an issued session id is usable by its grant only', async (t) => {
  const { sessions: s } = sessions()
  await s.bind('sid-1', 'grant-a')
  t.equal(await s.mayUse('sid-1', 'grant-a'), true)
  t.equal(await s.mayUse('sid-1', 'grant-b'), false)
})

t.test('a made-up session id binds nothing: a flood of them cannot fill the store (the upstream answers for them)', async (t) => {
  const { store, sessions: s } = sessions()
  for (let i = 0; i < 50; i++) t.equal(await s.mayUse(`made-up-${i}`, 'grant-a'), true)
  t.equal(store.size, 0, 'nothing was written')
  t.equal(await store.get(`mcp-session:${hashSecret('made-up-0')}`), undefined)
  t.equal(await s.mayUse('made-up-0', 'grant-b'), true, 'and no grant owns it afterwards')
})

t.test('the owner is read from the store once per cache period, and another replica\'s binding is seen', async (t) => {
  const { store, clock, sessions: s } = sessions(1000)
  const other = new SessionStore({ store, clock, ttlMs: 60_000, cacheTtlMs: 1000 })
  await other.bind('sid-2', 'grant-a')
  t.equal(await s.mayUse('sid-2', 'grant-b'), false, 'bound by the other replica')
  t.equal(await s.mayUse('sid-2', 'grant-a'), true, 'and the owner may')
  await other.forget('sid-2')
  t.equal(await s.mayUse('sid-2', 'grant-b'), false, 'still refused within the cache period')
  clock.advance(1001)
  t.equal(await s.mayUse('sid-2', 'grant-b'), true, 'forgotten everywhere once the period is over')
})

t.test('forget (DELETE of a session) ends the binding at once on this replica; no cache: every check reads the store', async (t) => {
  const { sessions: s } = sessions(0)
  await s.bind('sid-3', 'grant-a')
  t.equal(await s.mayUse('sid-3', 'grant-b'), false)
  await s.forget('sid-3')
  t.equal(await s.mayUse('sid-3', 'grant-b'), true)
})
