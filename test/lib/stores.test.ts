import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { ManualClock } from '../../lib/clock.js'
import { MemoryStore, type MemoryStoreOptions } from '../../lib/stores/memory.js'

function makeStore (t: Test, options: MemoryStoreOptions = {}): { store: MemoryStore, clock: ManualClock } {
  const clock = new ManualClock()
  const store = new MemoryStore({ clock, ...options })
  t.teardown(() => store.close())
  return { store, clock }
}

t.test('Store contract: set then get returns the value; missing keys are undefined', async (t) => {
  const { store } = makeStore(t)
  await store.set('k', { a: 1, list: ['x'] }, 1000)
  t.strictSame(await store.get('k'), { a: 1, list: ['x'] })
  t.equal(await store.get('missing'), undefined)
  await store.set('s', 'text', 1000)
  t.equal(await store.get<string>('s'), 'text')
  await store.set('k', { a: 2 }, 1000)
  t.strictSame(await store.get('k'), { a: 2 }, 'overwrite')
  t.equal(store.size, 2)
})

t.test('Store contract (every write carries a TTL): entries expire on read at exactly ttl', async (t) => {
  const { store, clock } = makeStore(t)
  await store.set('k', 'v', 1000)
  clock.advance(999)
  t.equal(await store.get('k'), 'v', 'alive 1 ms before expiry')
  t.equal(store.size, 1)
  clock.advance(1)
  t.equal(await store.get('k'), undefined, 'gone at expiresAt')
  t.equal(store.size, 0, 'the expired read also removed the entry')
})

t.test('Store contract: a rewrite restarts the TTL', async (t) => {
  const { store, clock } = makeStore(t)
  await store.set('k', 'v1', 1000)
  clock.advance(900)
  await store.set('k', 'v2', 1000)
  clock.advance(900)
  t.equal(await store.get('k'), 'v2')
})

t.test('Store contract: take, swap and get all treat expired entries as missing', async (t) => {
  const { store, clock } = makeStore(t)
  await store.set('a', 'A', 10)
  await store.set('b', 'B', 10)
  clock.advance(10)
  t.equal(await store.take('a'), undefined)
  t.equal(await store.swap('b', 'B2', 10), undefined, 'swap over an expired entry sees no previous value')
  t.equal(await store.get('b'), 'B2')
})

t.test('MemoryStore.sweep() drops every expired entry and keeps live ones', async (t) => {
  const { store, clock } = makeStore(t)
  await store.set('short1', 1, 100)
  await store.set('short2', 2, 100)
  await store.set('long', 3, 10_000)
  t.equal(store.size, 3)
  clock.advance(99)
  store.sweep()
  t.equal(store.size, 3, 'nothing expired yet')
  clock.advance(1)
  store.sweep()
  t.equal(store.size, 1)
  t.equal(await store.get('long'), 3)
})

t.test('MemoryStore sweeps on its timer (sweepIntervalMs)', async (t) => {
  const { store, clock } = makeStore(t, { sweepIntervalMs: 5 })
  await store.set('k', 'v', 100)
  clock.advance(100)
  t.equal(store.size, 1, 'not read, not yet swept')
  for (let i = 0; i < 50 && store.size > 0; i++) await sleep(5)
  t.equal(store.size, 0, 'the timer swept it without a read')
})

t.test('Store contract: take is single-use, and two concurrent takes yield one value', async (t) => {
  const { store } = makeStore(t)
  await store.set('code', { grant: 'g1' }, 1000)
  const results = await Promise.all([store.take('code'), store.take('code')])
  t.strictSame(results.filter((r) => r !== undefined), [{ grant: 'g1' }], 'exactly one taker wins')
  t.equal(await store.get('code'), undefined, 'deleted')
  t.equal(await store.take('code'), undefined, 'a third take gets nothing')
  t.equal(await store.take('never'), undefined)
  t.equal(store.size, 0)
})

t.test('Store contract: swap returns the previous value and writes the new one; concurrent swaps see different previous values', async (t) => {
  const { store, clock } = makeStore(t)
  t.equal(await store.swap('rt', { used: false }, 1000), undefined, 'none before the first write')
  t.strictSame(await store.swap('rt', { used: true }, 1000), { used: false })
  t.strictSame(await store.get('rt'), { used: true })

  const [first, second] = await Promise.all([store.swap('rt', 'A', 1000), store.swap('rt', 'B', 1000)])
  t.strictSame([first, second], [{ used: true }, 'A'], 'the second swapper sees the first one\'s tombstone, not the original')
  t.equal(await store.get('rt'), 'B')

  clock.advance(999)
  await store.swap('rt', 'C', 1000)
  clock.advance(999)
  t.equal(await store.get('rt'), 'C', 'swap sets a fresh TTL')
})

t.test('MemoryStore refuses a non-positive or non-numeric TTL (nothing lives forever)', async (t) => {
  const { store } = makeStore(t)
  for (const ttl of [0, -1, Number.NaN, -Infinity]) {
    await t.rejects(store.set('k', 'v', ttl), { name: 'RangeError', message: `store TTL must be positive, got ${ttl}` }, `set ttl ${ttl}`)
    await t.rejects(store.swap('k', 'v', ttl), RangeError, `swap ttl ${ttl}`)
  }
  t.equal(store.size, 0, 'nothing was written')
})

t.test('MemoryStore values are copies: mutating what was written or read does not change the store', async (t) => {
  const { store } = makeStore(t)
  const written = { n: 1, nested: { list: [1, 2] } }
  await store.set('k', written, 1000)
  written.n = 99
  written.nested.list.push(3)
  const read = await store.get<typeof written>('k')
  t.strictSame(read, { n: 1, nested: { list: [1, 2] } }, 'writer\'s later mutation not seen')
  if (read === undefined) throw new Error('unreachable')
  read.n = 42
  read.nested.list.length = 0
  t.strictSame(await store.get('k'), { n: 1, nested: { list: [1, 2] } }, 'reader\'s mutation not seen')
  t.not(await store.get('k'), await store.get('k'), 'each read is a new object')

  const previous = await store.swap<typeof written>('k', { n: 2, nested: { list: [] } }, 1000)
  if (previous === undefined) throw new Error('unreachable')
  previous.n = 7
  t.strictSame(await store.get('k'), { n: 2, nested: { list: [] } })
})

t.test('MemoryStore stores JSON: what JSON cannot carry does not survive (as with Redis)', async (t) => {
  const { store } = makeStore(t)
  await store.set('k', { when: new Date(0), gone: undefined, fn: () => 1 }, 1000)
  t.strictSame(await store.get('k'), { when: '1970-01-01T00:00:00.000Z' })
})

t.test('Store contract: delete removes the entry; deleting a missing key is fine', async (t) => {
  const { store } = makeStore(t)
  await store.set('k', 'v', 1000)
  await store.delete('k')
  t.equal(await store.get('k'), undefined)
  await store.delete('k')
  t.equal(store.size, 0)
})

t.test('Store contract: close clears every entry', async (t) => {
  const { store } = makeStore(t)
  await store.set('a', 1, 1000)
  await store.set('b', 2, 1000)
  await store.close()
  t.equal(store.size, 0)
  t.equal(await store.get('a'), undefined)
})

t.test('MemoryStore defaults: the system clock', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  await store.set('k', 'v', 60_000)
  t.equal(await store.get('k'), 'v')
})

t.test('issue 15 finding 1: the memory store never evicts a live record, whatever the number written', async (t) => {
  const { store } = makeStore(t)
  await store.set('client:c1', { id: 'c1' }, 60_000)
  await store.set('grant:g1', { id: 'g1' }, 60_000)
  await store.set('refresh:r1', { rotatedAt: 1 }, 60_000)
  await store.set('mcp-session:s1', { grantId: 'g1' }, 60_000)
  // More than the 100 000 entries the old global cap kept: it evicted the oldest of any kind.
  for (let i = 0; i < 100_100; i++) await store.set(`flow:${i}`, i, 60_000)
  t.equal(store.size, 100_104)
  t.strictSame(await store.get('client:c1'), { id: 'c1' })
  t.strictSame(await store.get('grant:g1'), { id: 'g1' })
  t.strictSame(await store.get('refresh:r1'), { rotatedAt: 1 })
  t.strictSame(await store.get('mcp-session:s1'), { grantId: 'g1' })
})

t.test('issue 15 finding 1: add() refuses past the bound of its kind, and leaves every other kind alone', async (t) => {
  const { store } = makeStore(t)
  await store.set('client:c1', { id: 'c1' }, 60_000)
  for (let i = 0; i < 3; i++) t.equal(await store.add(`flow:${i}`, i, 1000, 3), true, `flow ${i} added`)
  t.equal(await store.add('flow:3', 3, 1000, 3), false, 'the fourth is refused')
  t.equal(await store.get('flow:3'), undefined, 'and not written')
  t.equal(await store.add('flow:1', 11, 1000, 3), true, 'a counted key may be written again at the bound')
  t.equal(await store.get('flow:1'), 11)
  t.equal(store.countOf('flow'), 3, 'without being counted twice')
  t.equal(await store.add('upstream-state:a', 'a', 1000, 3), true, 'another kind has a count of its own')
  await store.set('flow:plain', 'x', 1000)
  t.equal(store.countOf('flow'), 3, 'set() writes are not counted')
  t.equal(store.countOf('nothing'), 0)
  t.strictSame(await store.get('client:c1'), { id: 'c1' }, 'nothing was evicted')
  t.equal(store.size, 6)
})

t.test('issue 15 finding 1: a count frees up as records expire, are deleted, taken or released', async (t) => {
  const { store, clock } = makeStore(t)
  t.equal(await store.add('flow:a', 'a', 100, 2), true)
  clock.advance(50)
  t.equal(await store.add('flow:b', 'b', 100, 2), true)
  t.equal(await store.add('flow:c', 'c', 100, 2), false)
  clock.advance(49)
  t.equal(await store.add('flow:c', 'c', 100, 2), false, 'nothing has expired yet')
  clock.advance(1)
  t.equal(await store.add('flow:c', 'c', 100, 2), true, 'a expired: room for c')
  t.equal(await store.add('flow:d', 'd', 100, 2), false)

  await store.delete('flow:b')
  t.equal(await store.add('flow:d', 'd', 100, 2), true, 'delete uncounts')
  t.equal(await store.take('flow:c'), 'c')
  t.equal(await store.add('flow:e', 'e', 100, 2), true, 'take uncounts')
  await store.release('flow:d')
  t.equal(await store.get('flow:d'), 'd', 'release keeps the record')
  t.equal(await store.add('flow:f', 'f', 100, 2), true, 'release uncounts')
  t.equal(store.countOf('flow'), 2)
  await store.release('unknown-kind:x')
})

t.test('MemoryStore.sweep() also forgets expired counts; close() forgets every count', async (t) => {
  const { store, clock } = makeStore(t)
  await store.add('flow:a', 'a', 100, 10)
  await store.add('flow:b', 'b', 200, 10)
  await store.add('client:c', 'c', 1000, 10)
  clock.advance(100)
  store.sweep()
  t.equal(store.countOf('flow'), 1)
  t.equal(store.countOf('client'), 1)
  clock.advance(100)
  store.sweep()
  t.equal(store.countOf('flow'), 0)
  await store.close()
  t.equal(store.countOf('client'), 0)
})

t.test('MemoryStore.add refuses a non-positive TTL, even at the bound', async (t) => {
  const { store } = makeStore(t)
  await t.rejects(store.add('flow:a', 'a', 0, 1), RangeError)
  await store.add('flow:a', 'a', 10, 1)
  await t.rejects(store.add('flow:b', 'b', -1, 1), RangeError)
  t.equal(store.countOf('flow'), 1)
})
