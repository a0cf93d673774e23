import t from 'tap'
import { ManualClock } from '../../lib/clock.js'
import { BoundedTtlCache } from '../../lib/ttl-cache.js'

t.test('bounded TTL cache: an entry answers until its deadline, not at it', async (t) => {
  const clock = new ManualClock()
  const cache = new BoundedTtlCache<string>(10, clock)
  cache.set('a', 'one', clock.now() + 1000)
  t.equal(cache.get('a'), 'one')
  clock.advance(999)
  t.equal(cache.get('a'), 'one')
  clock.advance(1)
  t.equal(cache.get('a'), undefined, 'expired at the deadline')
  cache.set('b', 'two', clock.now())
  t.equal(cache.get('b'), undefined, 'a deadline of now never answers')
  t.equal(cache.get('missing'), undefined)
})

t.test('bounded TTL cache: past the cap the oldest entry goes first', async (t) => {
  const clock = new ManualClock()
  const cache = new BoundedTtlCache<number>(2, clock)
  const until = clock.now() + 1000
  cache.set('a', 1, until)
  cache.set('b', 2, until)
  cache.set('c', 3, until)
  t.equal(cache.get('a'), undefined, 'oldest dropped')
  t.equal(cache.get('b'), 2)
  t.equal(cache.get('c'), 3)
})

t.test('bounded TTL cache: delete and deleteWhere', async (t) => {
  const clock = new ManualClock()
  const cache = new BoundedTtlCache<{ grant: string }>(10, clock)
  const until = clock.now() + 1000
  cache.set('t1', { grant: 'g1' }, until)
  cache.set('t2', { grant: 'g1' }, until)
  cache.set('t3', { grant: 'g2' }, until)
  cache.deleteWhere((value) => value.grant === 'g1')
  t.equal(cache.get('t1'), undefined)
  t.equal(cache.get('t2'), undefined)
  t.same(cache.get('t3'), { grant: 'g2' })
  cache.delete('t3')
  t.equal(cache.get('t3'), undefined)
})
