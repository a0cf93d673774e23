import t from 'tap'
import { ManualClock } from '../../lib/clock.js'
import { LOGIN_WINDOW_MS, LoginLimits, MAX_BACKOFF_MS, decideLogin, loginWindow, userBackoffMs } from '../../lib/login-limits.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import { delegatingStore } from '../helpers/failing-store.js'
import type { Teardown } from '../helpers/teardown.js'

// A clock at the start of a window, so a test's few seconds never cross into the next one by accident.
const windowStart = (): ManualClock => new ManualClock(loginWindow(Date.UTC(2026, 0, 1, 12)).endsAt)

function limits (
  t: Teardown,
  clock: ManualClock,
  overrides: { failuresPerAddress?: number, failuresPerUser?: number } = {}
): { limits: LoginLimits, store: MemoryStore } {
  const store = new MemoryStore({ clock })
  t.teardown(async () => { await store.close() })
  return { store, limits: new LoginLimits({ store, clock, failuresPerAddress: 10, failuresPerUser: 5, knows: (name: string) => name === 'alice', ...overrides }) }
}

t.test('issue 15 finding 9: the user backoff doubles from 1 s up to 15 minutes', async (t) => {
  t.equal(userBackoffMs(4, 5), 0, 'below the threshold: no wait')
  t.equal(userBackoffMs(5, 5), 1000)
  t.equal(userBackoffMs(6, 5), 2000)
  t.equal(userBackoffMs(14, 5), 512_000)
  t.equal(userBackoffMs(15, 5), MAX_BACKOFF_MS, '1024 s is capped at 15 minutes')
  t.equal(userBackoffMs(10_000, 5), MAX_BACKOFF_MS, 'and stays finite however many failures')
})

t.test('issue 15 finding 9: the decision from counts alone', async (t) => {
  const now = loginWindow(0).endsAt + 60_000
  const rules = { failuresPerAddress: 10, failuresPerUser: 5 }
  t.equal(decideLogin({ now, addressFailures: 9 }, rules), undefined)
  t.same(decideLogin({ now, addressFailures: 10 }, rules), { reason: 'address', retryAfterMs: LOGIN_WINDOW_MS - 60_000 }, 'refused until the window ends')
  t.equal(decideLogin({ now, addressFailures: 0, userFailures: 4, lastUserFailureAt: now }, rules), undefined)
  t.same(decideLogin({ now, addressFailures: 0, userFailures: 5, lastUserFailureAt: now - 400 }, rules), { reason: 'user', retryAfterMs: 600 })
  t.equal(decideLogin({ now, addressFailures: 0, userFailures: 5, lastUserFailureAt: now - 1000 }, rules), undefined, 'the wait is over')
  t.equal(decideLogin({ now, addressFailures: 0, userFailures: 7 }, rules), undefined, 'no time of the last failure: nothing to wait from')
})

t.test('issue 15 finding 9: successes count nowhere; failures from one address lock that address only, until the window ends', async (t) => {
  const clock = windowStart()
  const { limits: l } = limits(t, clock)
  for (let i = 0; i < 9; i++) await l.recordFailure('198.51.100.1', `nobody-${i}`)
  t.equal(await l.check('198.51.100.1', 'alice'), undefined, '9 failures: still allowed')
  await l.recordFailure('198.51.100.1', 'nobody')
  t.same(await l.check('198.51.100.1', 'alice'), { reason: 'address', retryAfterMs: LOGIN_WINDOW_MS }, 'the 10th failure locks the address, for what is left of the window')
  t.equal(await l.check('198.51.100.2', 'alice'), undefined, 'another address is not affected')
  clock.advance(LOGIN_WINDOW_MS - 1)
  t.same(await l.check('198.51.100.1', 'alice'), { reason: 'address', retryAfterMs: 1 })
  clock.advance(1)
  t.equal(await l.check('198.51.100.1', 'alice'), undefined, 'a new window: allowed again')
})

t.test('issue 15 finding 9: failures on an existing user name back off across addresses, even for the right password', async (t) => {
  const clock = windowStart()
  const { limits: l } = limits(t, clock)
  for (let i = 0; i < 4; i++) await l.recordFailure(`203.0.113.${i}`, 'alice')
  t.equal(await l.check('203.0.113.200', 'alice'), undefined, '4 failures: no wait yet')
  await l.recordFailure('203.0.113.4', 'alice')
  t.same(await l.check('203.0.113.200', 'alice'), { reason: 'user', retryAfterMs: 1000 }, 'the 5th failure: 1 s, whichever address asks next')
  t.equal(await l.check('203.0.113.200', 'bob'), undefined, 'other names are not affected')
  clock.advance(1000)
  t.equal(await l.check('203.0.113.200', 'alice'), undefined, 'after the wait, one more try')
  await l.recordFailure('203.0.113.5', 'alice')
  t.same(await l.check('203.0.113.200', 'alice'), { reason: 'user', retryAfterMs: 2000 }, 'then 2 s')
  for (let i = 0; i < 20; i++) await l.recordFailure('203.0.113.6', 'alice')
  t.same(await l.check('203.0.113.200', 'alice'), { reason: 'user', retryAfterMs: MAX_BACKOFF_MS }, 'capped at 15 minutes')
})

t.test('issue 15 finding 9: only existing user names are counted, under hashed keys', async (t) => {
  const clock = windowStart()
  const { limits: l, store } = limits(t, clock, { failuresPerAddress: 1000 })
  for (let i = 0; i < 50; i++) await l.recordFailure('192.0.2.9', `random-${i}`)
  await l.recordFailure('192.0.2.9', 'alice')
  t.equal(await l.check('192.0.2.10', 'random-1'), undefined, 'a random name never accumulates a backoff')
  const written: string[] = []
  const spy = new LoginLimits({
    store: delegatingStore(store, {
      set: async (key, value, ttl) => { written.push(key); await store.set(key, value, ttl) },
      increment: async (key, ttl) => { written.push(key); return await store.increment(key, ttl) }
    }),
    clock,
    failuresPerAddress: 10,
    failuresPerUser: 5,
    knows: (name: string) => name === 'alice'
  })
  await spy.recordFailure('192.0.2.9', 'random-name')
  t.equal(written.length, 1, 'a name that does not exist: the address counter only')
  await spy.recordFailure('192.0.2.9', 'alice')
  t.equal(written.length, 4, 'an existing one: its counter and its last failure too')
  t.notOk(written.some((key) => key.includes('alice') || key.includes('192.0.2.9') || key.includes('random')), 'keys hold hashes, never the raw name or address')
})
