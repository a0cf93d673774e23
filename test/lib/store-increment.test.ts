import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { ManualClock } from '../../lib/clock.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import { RedisStore } from '../../lib/stores/redis.js'
import { SHARED_REDIS_URL, deletePrefix, testPrefix } from '../helpers/redis.js'

// Fixed-window counters (failed sign-ins per address and per user name): the first increment starts the window,
// later ones do not extend it, and concurrent increments never lose a count.

t.test('memory: a fixed window from the first increment, concurrent increments all counted', async (t) => {
  const clock = new ManualClock(1_000_000)
  const store = new MemoryStore({ clock })
  t.teardown(() => store.close())
  t.equal(await store.increment('fails:a', 1000), 1)
  clock.advance(600)
  t.equal(await store.increment('fails:a', 1000), 2)
  clock.advance(600)
  t.equal(await store.increment('fails:a', 1000), 1, 'the window ended 1000 ms after the first increment, not the last')
  const counts = await Promise.all(Array.from({ length: 20 }, async () => await store.increment('fails:b', 1000)))
  t.same(counts.sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i + 1))
  await t.rejects(store.increment('fails:c', 0), RangeError, 'no counter lives forever')
})

t.test('Redis: the same window, atomic across connections', async (t) => {
  const prefix = testPrefix(import.meta.url)
  const stores = [
    new RedisStore({ url: SHARED_REDIS_URL, keyPrefix: prefix }),
    new RedisStore({ url: SHARED_REDIS_URL, keyPrefix: prefix })
  ]
  t.teardown(async () => {
    for (const store of stores) await store.close()
    await deletePrefix(SHARED_REDIS_URL, prefix)
  })
  for (const store of stores) await store.connect()
  const counts = await Promise.all(Array.from({ length: 20 }, async (_, i) => await (stores[i % 2] as RedisStore).increment('fails:a', 300)))
  t.same(counts.sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i + 1), 'two replicas, no lost count')
  const ttl = await (stores[0] as RedisStore).client.pttl('fails:a')
  t.ok(ttl > 0 && ttl <= 300, 'the window is the first increment\'s')
  await sleep(350)
  t.equal(await (stores[1] as RedisStore).increment('fails:a', 300), 1, 'a new window after expiry')
  await t.rejects((stores[0] as RedisStore).increment('fails:b', 0), RangeError)
})
