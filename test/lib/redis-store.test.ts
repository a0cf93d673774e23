import { lookup as dnsLookup } from 'node:dns'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { MalformedRecordError, StoreUnavailableError } from '../../lib/stores/errors.js'
import { RedisStore, countKey } from '../../lib/stores/redis.js'
import { ON_CLUSTER, PrivateRedis, SHARED_REDIS_URL, deletePrefix, rawRedis, testPrefix } from '../helpers/redis.js'

async function store (t: Test, url = SHARED_REDIS_URL): Promise<RedisStore> {
  const prefix = testPrefix(import.meta.url)
  const s = new RedisStore({ url, keyPrefix: prefix, commandTimeoutMs: 500 })
  t.teardown(async () => {
    await s.close()
    await deletePrefix(url, prefix).catch(() => {})
  })
  await s.connect()
  return s
}

/** A connection without the store's prefix, to look at (or spoil) the keys as they are in Redis. */
async function rawClient (t: Test, s: RedisStore): Promise<{ raw: RedisStore['client'], prefix: string }> {
  const raw = await rawRedis(SHARED_REDIS_URL)
  t.teardown(() => raw.disconnect())
  return { raw, prefix: s.client.options.keyPrefix as string }
}

t.test('the Store contract on Redis: set/get, PX expiry, atomic take and swap, delete', async (t) => {
  const s = await store(t)
  t.equal(await s.get('missing'), undefined)
  await s.set('a', { n: 1 }, 10_000)
  t.same(await s.get('a'), { n: 1 })
  await s.set('short', { n: 2 }, 50)
  await sleep(120)
  t.equal(await s.get('short'), undefined, 'expired by Redis (PX)')

  await s.set('code', { once: true }, 10_000)
  const [first, second] = await Promise.all([s.take('code'), s.take('code')])
  t.same([first, second].filter(Boolean), [{ once: true }], 'GETDEL: one taker gets the value')

  await s.set('rt', { v: 1 }, 10_000)
  const swaps = await Promise.all([s.swap('rt', { v: 2 }, 10_000), s.swap('rt', { v: 3 }, 10_000)])
  t.equal(swaps.filter((x) => x !== undefined && (x as { v: number }).v === 1).length, 1, 'SET GET: exactly one swapper saw the original')
  t.equal(await s.swap('fresh', { v: 1 }, 10_000), undefined)

  await s.delete('a')
  t.equal(await s.get('a'), undefined)
  await t.rejects(s.set('x', 1, 0), RangeError, 'no key lives forever')
  await t.rejects(s.swap('x', 1, -1), RangeError)
  t.equal(await s.ping(), true)
})

t.test('every key carries the prefix, and has a TTL', async (t) => {
  const s = await store(t)
  const { raw, prefix } = await rawClient(t, s)
  await s.set('grant:k', 1, 60_000)
  // On a cluster the kind is the hash tag; elsewhere keys keep the names they always had (no migration).
  const stored = ON_CLUSTER ? `${prefix}{grant}:k` : `${prefix}grant:k`
  t.equal(s.keyOf('grant:k'), stored.slice(prefix.length))
  const ttl = await raw.pttl(stored)
  t.ok(ttl > 0 && ttl <= 60_000, `PTTL ${ttl}`)
})

t.test('Redis down: commands fail fast as StoreUnavailableError, and work again when it is back', async (t) => {
  const redis = await PrivateRedis.start()
  t.teardown(() => redis.stop())
  const s = await store(t, redis.url)
  await s.set('k', 'v', 60_000)
  await redis.stop()
  const started = Date.now()
  await t.rejects(s.get('k'), StoreUnavailableError)
  t.ok(Date.now() - started < 1500, 'bounded, no hang')
  t.equal(await s.ping(), false)
  await redis.resume()
  let back = false
  for (let i = 0; i < 50 && !back; i++) {
    back = await s.get('k').then(() => true, () => false)
    if (!back) await sleep(100)
  }
  t.ok(back, 'reconnected by itself')
})

t.test('an unreachable Redis, Sentinel or cluster fails the connect within the timeout', async (t) => {
  for (const url of ['redis://127.0.0.1:9/0', 'redis-sentinel://127.0.0.1:9,127.0.0.1:10#main', 'redis-cluster://127.0.0.1:9,127.0.0.1:10']) {
    const s = new RedisStore({ url, keyPrefix: 'x:', commandTimeoutMs: 300 })
    t.teardown(() => s.close())
    const started = Date.now()
    await t.rejects(s.connect(), StoreUnavailableError, url)
    t.ok(Date.now() - started < 1500, `${url}: bounded, no endless retries`)
  }
})

t.test('a TLS cluster keeps the host names it was given, so node certificates can match them', async (t) => {
  const tls = new RedisStore({ url: 'rediss-cluster://cfg.cache.example.com:6380', keyPrefix: 'x:' })
  const plain = new RedisStore({ url: 'redis-cluster://cfg.cache.example.com:6380', keyPrefix: 'x:' })
  t.teardown(async () => { await tls.close(); await plain.close() })
  type DnsLookup = (host: string, callback: (err: unknown, address: string) => void) => void
  const lookup = (tls.client.options as { dnsLookup?: DnsLookup }).dnsLookup
  const looked = await new Promise<string>((resolve) => lookup?.('cfg.cache.example.com', (_err, address) => resolve(address)))
  t.equal(looked, 'cfg.cache.example.com', 'not resolved to an address')
  t.equal((plain.client.options as { dnsLookup?: unknown }).dnsLookup, dnsLookup, 'without TLS, node\'s dns.lookup as usual')
})

t.test('a URL the store does not take is refused without being repeated (it may hold a password)', async (t) => {
  t.throws(() => new RedisStore({ url: 'redis-cluster://:hunter2@host/0', keyPrefix: 'x:' }), { name: 'TypeError', message: /^(?!.*hunter2)/ })
})

t.test('issue 15 finding 1: add() on Redis refuses past the bound; the kind\'s index stays bounded, other kinds untouched', async (t) => {
  const s = await store(t)
  const { raw, prefix } = await rawClient(t, s)
  await s.set('client:c1', { id: 'c1' }, 60_000)
  const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => await s.add(`flow:${i}`, { i }, 60_000, 5)))
  t.equal(results.filter(Boolean).length, 5, 'exactly the bound is admitted, even concurrently (one script each)')
  const index = prefix + s.countKeyOf('flow:x')
  t.equal(await raw.zcard(index), 5, 'ZCARD = max')
  t.equal(countKey('flow:x'), 'index:flow')
  t.equal(s.countKeyOf('flow:x'), ON_CLUSTER ? 'index:{flow}' : 'index:flow', 'tagged by kind on a cluster only, in the slot of the kind\'s records')
  // One EXISTS over the 20 keys: on a cluster it works only because they share a slot.
  const written = await raw.exists(...Array.from({ length: 20 }, (_, i) => prefix + s.keyOf(`flow:${i}`)))
  t.equal(written, 5, 'refused records are not written')
  t.equal(await s.add('flow:0', { again: true }, 60_000, 5), results[0], 'a counted key may be written again')
  t.equal(await raw.zcard(index), 5)
  const indexTtl = await raw.pttl(index)
  t.ok(indexTtl > 0 && indexTtl <= 60_000, `the index expires too (PTTL ${indexTtl})`)
  t.same(await s.get('client:c1'), { id: 'c1' })
  t.equal(await s.add('upstream-state:a', 'a', 60_000, 5), true, 'another kind has an index of its own')
})

t.test('issue 15 finding 1: on Redis, delete and take uncount, release uncounts and keeps the record, expiry frees room', async (t) => {
  const s = await store(t)
  const { raw, prefix } = await rawClient(t, s)
  const zcard = async () => await raw.zcard(prefix + s.countKeyOf('flow:x'))
  t.equal(await s.add('flow:a', 'a', 60_000, 2), true)
  t.equal(await s.add('flow:b', 'b', 60_000, 2), true)
  t.equal(await s.add('flow:c', 'c', 60_000, 2), false)
  await s.delete('flow:a')
  t.equal(await zcard(), 1, 'delete removed it from the index')
  t.equal(await s.get('flow:a'), undefined)
  t.equal(await s.take('flow:b'), 'b')
  t.equal(await s.take('flow:b'), undefined)
  t.equal(await zcard(), 0, 'take removed it from the index')
  t.equal(await s.add('flow:c', 'c', 60_000, 2), true)
  await s.release('flow:c')
  t.equal(await zcard(), 0, 'release removed it from the index')
  t.equal(await s.get('flow:c'), 'c', 'and kept the record')

  t.equal(await s.add('flow:short', 's', 50, 1), true)
  t.equal(await s.add('flow:d', 'd', 60_000, 1), false)
  await sleep(80)
  t.equal(await s.add('flow:d', 'd', 60_000, 1), true, 'the expired member was trimmed (ZREMRANGEBYSCORE)')
  t.equal(await zcard(), 1)
  await t.rejects(s.add('flow:e', 'e', 0, 1), RangeError)
})

t.test('issue 15 finding 3: a value that is not JSON fails its read as MalformedRecordError, not a SyntaxError', async (t) => {
  const s = await store(t)
  const { raw, prefix } = await rawClient(t, s)
  await raw.set(prefix + s.keyOf('client:bad'), '{not json', 'PX', 60_000)
  await t.rejects(s.get('client:bad'), MalformedRecordError)
  await t.rejects(s.take('client:bad'), MalformedRecordError)
  t.equal(await raw.exists(prefix + s.keyOf('client:bad')), 0, 'take removed it all the same')
})
