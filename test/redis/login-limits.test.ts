import t from 'tap'
import { ManualClock } from '../../lib/clock.js'
import { LoginLimits, loginWindow } from '../../lib/login-limits.js'
import { RedisStore } from '../../lib/stores/redis.js'
import { SHARED_REDIS_URL, deletePrefix, testPrefix } from '../helpers/redis.js'

t.test('issue 15 finding 9: two replicas on one Redis share the login failure counts', async (t) => {
  const prefix = testPrefix('login-limits')
  const stores = [
    new RedisStore({ url: SHARED_REDIS_URL, keyPrefix: prefix }),
    new RedisStore({ url: SHARED_REDIS_URL, keyPrefix: prefix })
  ]
  t.teardown(async () => {
    for (const store of stores) await store.close()
    await deletePrefix(SHARED_REDIS_URL, prefix)
  })
  for (const store of stores) await store.connect()
  const clock = new ManualClock(loginWindow(Date.now()).endsAt)
  const [a, b] = stores.map((store) => new LoginLimits({ store, clock, failuresPerAddress: 4, failuresPerUser: 2, knows: (name: string) => name === 'alice' })) as [LoginLimits, LoginLimits]
  await a.recordFailure('198.51.100.1', 'nobody')
  await b.recordFailure('198.51.100.1', 'nobody')
  await a.recordFailure('198.51.100.1', 'nobody')
  t.equal(await b.check('198.51.100.1', 'nobody'), undefined, '3 of 4')
  await b.recordFailure('198.51.100.1', 'nobody')
  t.match(await a.check('198.51.100.1', 'nobody'), { reason: 'address' }, 'the 4th, counted on B, locks the address on A')
  await a.recordFailure('198.51.100.2', 'alice')
  await b.recordFailure('198.51.100.3', 'alice')
  t.same(await a.check('198.51.100.4', 'alice'), { reason: 'user', retryAfterMs: 1000 }, 'failures on alice from two replicas and addresses: she waits on either')
})
