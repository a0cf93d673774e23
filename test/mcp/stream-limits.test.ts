import t from 'tap'
import { StreamLimits } from '../../routes/mcp/stream-limits.js'

/* The counter behind the proxy's caps on exchanges open at once (issue 15, finding 4), on its own. */

t.test('issue 15 finding 4: counts per grant and in total; refuses over either cap without counting', async (t) => {
  const limits = new StreamLimits({ maxTotal: 3, maxPerGrant: 2 })
  t.equal(limits.acquire('a'), undefined)
  t.equal(limits.acquire('a'), undefined)
  t.equal(limits.acquire('a'), 'grant', 'a third for one grant: its cap')
  t.equal(limits.openFor('a'), 2, 'the refusal counted nothing')
  t.equal(limits.acquire('b'), undefined)
  t.equal(limits.acquire('c'), 'total', 'the gateway is full')
  t.equal(limits.total, 3)
  t.equal(limits.acquire('a'), 'grant', 'a grant at its own cap hears about its cap first')
  limits.release('b')
  t.equal(limits.acquire('c'), undefined, 'a freed slot goes to anyone')
  t.equal(limits.total, 3)
})

t.test('releases bring every count back to zero and leave no entry behind', async (t) => {
  const limits = new StreamLimits({ maxTotal: 10, maxPerGrant: 10 })
  for (const grant of ['a', 'a', 'b']) limits.acquire(grant)
  t.equal(limits.grants, 2)
  for (const grant of ['a', 'b', 'a']) limits.release(grant)
  t.equal(limits.total, 0)
  t.equal(limits.openFor('a'), 0)
  t.equal(limits.grants, 0, 'no grant stays in the map once it has nothing open')
})

t.test('a release without its acquire changes nothing', async (t) => {
  const limits = new StreamLimits({ maxTotal: 1, maxPerGrant: 1 })
  limits.release('ghost')
  t.equal(limits.total, 0)
  t.equal(limits.acquire('a'), undefined)
  t.equal(limits.acquire('b'), 'total', 'the cap was not loosened by the stray release')
})
