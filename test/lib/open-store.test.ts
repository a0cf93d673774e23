import { createRequire } from 'node:module'
import t from 'tap'
import '../../app.js'
import { systemClock } from '../../lib/clock.js'
import { openStore, redisClientOf } from '../../lib/stores/index.js'
import { SHARED_REDIS_URL, testPrefix } from '../helpers/redis.js'

/*
 * openStore() loads ioredis for a Redis store only: an in-memory gateway (the default) does without it,
 * about 1 MB less heap for every full collection to mark (bench/HISTORY.md). This file imports nothing else
 * that loads it (test/helpers/redis.ts only spawns and names).
 */

const loaded = (): boolean => Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes('/node_modules/ioredis/'))

t.test('the gateway and a memory store leave ioredis unloaded; a Redis store loads it and shares its connection', async (t) => {
  t.equal(loaded(), false, 'importing the gateway does not load ioredis')
  const memory = await openStore('memory', { keyPrefix: 'test:', clock: systemClock })
  t.teardown(() => memory.close())
  t.equal(loaded(), false, 'nor does a memory store')
  t.equal(redisClientOf(memory), undefined, 'a memory store has no Redis connection for the rate limiter')

  const redis = await openStore(SHARED_REDIS_URL, { keyPrefix: testPrefix(import.meta.url), clock: systemClock })
  t.teardown(() => redis.close())
  t.equal(loaded(), true, 'a Redis store loads ioredis')
  const client = redisClientOf(redis)
  t.ok(client !== undefined, 'and hands its connection to the rate limiter')
  t.equal(await client?.ping(), 'PONG', 'the same, connected client')
})
