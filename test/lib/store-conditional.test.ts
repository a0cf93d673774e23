import t, { type Test } from 'tap'
import { ManualClock } from '../../lib/clock.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import { checkedStore } from '../../lib/stores/records.js'
import { RedisStore } from '../../lib/stores/redis.js'
import type { Store } from '../../lib/stores/types.js'
import { delegatingStore } from '../helpers/failing-store.js'
import { SHARED_REDIS_URL, deletePrefix, testPrefix } from '../helpers/redis.js'

/*
 * Issue 16: the store operations replicas agree through. replace() writes over a record only if nobody
 * changed or deleted it since it was read; lock()/unlock() let one replica refresh an upstream token at a
 * time; publish()/subscribe() carry revocations to every replica (Redis only).
 */

const silent = { warn () {} }

async function redisStore (t: Test): Promise<RedisStore> {
  const prefix = testPrefix('store-conditional')
  const store = new RedisStore({ url: SHARED_REDIS_URL, keyPrefix: prefix, commandTimeoutMs: 1000 })
  t.teardown(async () => { await store.close(); await deletePrefix(SHARED_REDIS_URL, prefix) })
  await store.connect()
  return store
}

const stores: Array<[string, (t: Test) => Promise<Store>]> = [
  ['memory', async (t) => { const s = new MemoryStore({ clock: new ManualClock(1000) }); t.teardown(async () => { await s.close() }); return s }],
  ['redis', redisStore],
  ['checked memory', async (t) => { const s = new MemoryStore(); t.teardown(async () => { await s.close() }); return delegatingStore(checkedStore(s, silent)) }]
]

for (const [name, open] of stores) {
  t.test(`issue 16 item 1, ${name}: replace() writes only over the version it read`, async (t) => {
    const store = await open(t)
    t.equal(await store.replace('grant:g', 0, { version: 1 }, 10_000), false, 'nothing to replace: a deleted record stays deleted')
    t.equal(await store.get('grant:g'), undefined)
    await store.set('grant:g', { n: 'old' }, 10_000)
    t.equal(await store.replace('grant:g', 1, { n: 'x', version: 2 }, 10_000), false, 'a record without a version is version 0')
    t.equal(await store.replace('grant:g', 0, { n: 'a', version: 1 }, 10_000), true, 'written over version 0')
    const both = await Promise.all([store.replace('grant:g', 1, { n: 'b', version: 2 }, 10_000), store.replace('grant:g', 1, { n: 'c', version: 2 }, 10_000)])
    t.same(both.filter(Boolean), [true], 'of two writers over one version, one wins')
    await store.set('grant:bad', 'not an object', 10_000)
    t.equal(await store.replace('grant:bad', 0, { version: 1 }, 10_000), false, 'a record that is not an object is never replaced')
    await t.rejects(store.replace('grant:g', 2, { version: 3 }, 0), RangeError, 'nothing lives forever')
  })

  t.test(`issue 16 item 2, ${name}: lock() has one holder until it unlocks or the TTL ends`, async (t) => {
    const store = await open(t)
    const tokens = await Promise.all([store.lock('lock:a', 10_000), store.lock('lock:a', 10_000)])
    const holder = tokens.find((token) => token !== undefined)
    t.equal(tokens.filter((token) => token !== undefined).length, 1, 'one of two concurrent takers holds it')
    await store.unlock('lock:a', 'not-the-token')
    t.equal(await store.lock('lock:a', 10_000), undefined, 'another token does not unlock it')
    await store.unlock('lock:a', holder as string)
    t.type(await store.lock('lock:a', 10_000), 'string', 'free again once its holder unlocked it')
  })
}

t.test('issue 16 item 2: a lock whose holder died is freed by its TTL (memory)', async (t) => {
  const clock = new ManualClock(1000)
  const store = new MemoryStore({ clock })
  t.teardown(async () => { await store.close() })
  t.type(await store.lock('lock:a', 500), 'string')
  clock.advance(499)
  t.equal(await store.lock('lock:a', 500), undefined, 'held within its TTL')
  clock.advance(1)
  t.type(await store.lock('lock:a', 500), 'string', 'taken again after it')
})

t.test('issue 16 item 4: a message published on a Redis store reaches every subscriber under the same prefix, and no other', async (t) => {
  const a = await redisStore(t)
  const prefix = testPrefix('store-conditional-b')
  const b = new RedisStore({ url: SHARED_REDIS_URL, keyPrefix: prefix })
  await b.connect()
  t.teardown(async () => { await b.close() })
  const checked = checkedStore(a, silent)
  const received: string[] = []
  const elsewhere: string[] = []
  const stop = await (checked.subscribe as NonNullable<Store['subscribe']>)('revocations', (message) => received.push(message))
  await (b.subscribe as NonNullable<Store['subscribe']>)('revocations', (message) => elsewhere.push(message))
  await (checked.publish as NonNullable<Store['publish']>)('revocations', 'gwg_1')
  await (checked.publish as NonNullable<Store['publish']>)('other', 'gwg_x')
  for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.same(received, ['gwg_1'], 'the subscriber of the channel got it, and nothing of another channel')
  t.same(elsewhere, [], 'a store under another prefix got nothing')
  await stop()
  await (checked.publish as NonNullable<Store['publish']>)('revocations', 'gwg_2')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(received, ['gwg_1'], 'nothing after it stopped')
  t.equal(checkedStore(new MemoryStore(), silent).subscribe, undefined, 'a memory store has no messages: one process')
})

t.test('issue 16 item 4: a Redis store closes the subscriptions it opened, and a subscription fails like any command when Redis is away', async (t) => {
  const store = await redisStore(t)
  const received: string[] = []
  await store.subscribe('revocations', (message) => received.push(message))
  await store.close()
  const { StoreUnavailableError } = await import('../../lib/stores/errors.js')
  const away = new RedisStore({ url: 'redis://127.0.0.1:1/0', keyPrefix: 'x:', commandTimeoutMs: 200 })
  t.teardown(async () => { await away.close() })
  await t.rejects(away.subscribe('revocations', () => {}), StoreUnavailableError, 'no Redis: refused at once')
  t.same(received, [])
})
