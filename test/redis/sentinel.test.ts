import t from 'tap'
import { SECRET } from '../helpers/gateway.js'
import { JOURNEY_OK, signInRefreshRevoke } from '../helpers/process.js'
import { PrivateSentinel, deletePrefix, rawRedis, testPrefix } from '../helpers/redis.js'

// Issue 16, Redis as teams run it: a gateway told only where a Sentinel is (redis-sentinel://…#name) finds
// the master through it and keeps its state there.

t.test('a gateway on redis-sentinel:// signs in, refreshes and revokes, with its keys on the master the Sentinel names', async (t) => {
  const sentinel = await PrivateSentinel.start()
  t.teardown(() => sentinel.stop())
  const prefix = testPrefix(import.meta.url)
  t.teardown(async () => { await deletePrefix(sentinel.master.url, prefix).catch(() => {}) })

  const journey = await signInRefreshRevoke(t, sentinel.url, prefix, SECRET)
  t.same(
    journey,
    { ...JOURNEY_OK, output: journey.output },
    'signed in, called a tool, refreshed, revoked: the revoked grant is refused',
    { output: journey.output }
  )

  const master = await rawRedis(sentinel.master.url)
  t.teardown(() => master.disconnect())
  const [, keys] = await master.scan('0', 'MATCH', `${prefix}grant:*`, 'COUNT', 1000)
  t.ok(keys.length === 0, 'the revoked grant is gone from the master')
  const [, clients] = await master.scan('0', 'MATCH', `${prefix}client:*`, 'COUNT', 1000)
  t.equal(clients.length, 1, 'the registered client is on the master the Sentinel named (the gateway was given no other address)')
})
