import { once } from 'node:events'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { Pool } from 'undici'
import { ManualClock } from '../../lib/clock.js'
import { UpstreamExchange } from '../../routes/mcp/exchange.js'
import { QUIET_PERIOD_MS, UpstreamPool } from '../../routes/mcp/upstream-pool.js'
import { waitFor } from '../helpers/process.js'

/*
 * The proxy's upstream connections on real sockets, with a clock the tests move. An undici Pool keeps every
 * client it ever made, and undici reconnects a client whose exchange was aborted, leaving the new socket idle
 * (nodejs/undici#5845). A whole quiet period after a burst, UpstreamPool sends new exchanges to a fresh pool
 * and closes the old one once what runs on it has finished. These pin when a pool is replaced, that no
 * exchange is lost or cut when it is, and that the idle connections go; the heap that comes back is measured
 * in bench/HISTORY.md.
 */

interface Upstream {
  pool: UpstreamPool
  clock: ManualClock
  /** The peak of each replaced pool, in order. */
  replaced: number[]
  /** Each exchange's event stream at the upstream, until it ends. */
  open: Map<string, ServerResponse>
  /** The upstream's name of each exchange's stream. */
  ids: WeakMap<UpstreamExchange, string>
  /** Connections accepted so far. */
  accepted: () => number
  /** Connections open now, at the upstream. */
  connected: () => Promise<number>
}

/** An upstream that answers every request with an event stream and holds it open, behind a pool with `options`. */
async function upstream (
  t: { teardown (fn: () => unknown): void },
  options: Pool.Options = { connections: null, bodyTimeout: 0 }
): Promise<Upstream> {
  const open = new Map<string, ServerResponse>()
  let accepted = 0
  const server: Server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.flushHeaders()
    open.set(req.url ?? '', res)
    res.on('close', () => { open.delete(req.url ?? '') })
  })
  server.on('connection', () => { accepted++ })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const clock = new ManualClock()
  const replaced: number[] = []
  const pool = new UpstreamPool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, options, {
    clock,
    onReplace: (peak) => { replaced.push(peak) }
  })
  t.teardown(async () => {
    await pool.destroy()
    server.closeAllConnections()
    server.close()
  })
  const connected = async (): Promise<number> => await new Promise((resolve, reject) => {
    server.getConnections((err, count) => { if (err === null) resolve(count); else reject(err) })
  })
  return { pool, clock, replaced, open, ids: new WeakMap(), accepted: () => accepted, connected }
}

let named = 0

/** `n` more event streams under way. */
async function streams (up: Upstream, n: number): Promise<UpstreamExchange[]> {
  const exchanges = Array.from({ length: n }, () => {
    const path = `/${++named}`
    const exchange = new UpstreamExchange(up.pool, { method: 'GET', path })
    up.ids.set(exchange, path)
    return exchange
  })
  await Promise.all(exchanges.map(async (exchange) => { await exchange.responded() }))
  return exchanges
}

/** The upstream ends the streams of the first `n` of `exchanges` with `last`; resolves with what each received. */
async function end (up: Upstream, exchanges: UpstreamExchange[], n: number, last = 'data: bye\n\n'): Promise<string[]> {
  const ending = exchanges.splice(0, n)
  for (const exchange of ending) up.open.get(up.ids.get(exchange) ?? '')?.end(last)
  return await Promise.all(ending.map(async (exchange) => (await exchange.whole()).toString()))
}

/** Two whole periods go by, each opened by a short exchange (the first one ends the period of what came before). */
async function quietPeriods (up: Upstream): Promise<void> {
  for (let period = 0; period < 2; period++) {
    up.clock.advance(QUIET_PERIOD_MS)
    await end(up, await streams(up, 1), 1)
  }
}

/** A burst of 64 exchanges, 15 of them still running when the pool it filled is replaced: those 15. */
async function replacedAfterBurst (up: Upstream): Promise<UpstreamExchange[]> {
  const running = await streams(up, 64)
  await end(up, running, 49)
  await quietPeriods(up)
  return running
}

t.test('a whole period at a quarter of a burst or less: the next exchange goes to a fresh pool, and what ran on the old one finishes', async (t) => {
  const up = await upstream(t)
  const running = await streams(up, 80)
  await end(up, running, 61)
  up.clock.advance(QUIET_PERIOD_MS)
  running.push(...await streams(up, 1))
  t.same(up.replaced, [], 'the period of the burst itself ended: kept')

  up.clock.advance(QUIET_PERIOD_MS)
  const before = up.accepted()
  const fresh = await streams(up, 1)
  t.same(up.replaced, [80], 'a whole period at 20 of 80 (a quarter): replaced, with the peak told')
  t.equal(up.accepted(), before + 1, 'the exchange that came next got a connection of the new pool')

  // The 20 streams left on the old pool are not cut: each gets its own last event and ends normally.
  const lastEvents = Array.from({ length: 20 }, (_, i) => `data: ${i}\n\n`)
  t.same(await Promise.all(lastEvents.map(async (event) => (await end(up, running, 1, event))[0])), lastEvents)
  // Then the old pool closes its connections, kept alive until now.
  await waitFor('the old pool\'s connections to close', async () => await up.connected() === 1)
  t.equal(await up.connected(), 1, 'only the new pool\'s connection is left')
  t.same(await end(up, fresh, 1, 'data: new\n\n'), ['data: new\n\n'])
})

t.test('a lull shorter than a period, or more than a quarter of the burst still running, keeps the pool', async (t) => {
  const up = await upstream(t)
  const running = await streams(up, 80)
  await end(up, running, 79)
  up.clock.advance(QUIET_PERIOD_MS / 2)
  running.push(...await streams(up, 79))
  up.clock.advance(QUIET_PERIOD_MS)
  running.push(...await streams(up, 1))
  t.same(up.replaced, [], 'traffic came back within the period')

  await end(up, running, 60)
  for (let period = 0; period < 3; period++) {
    up.clock.advance(QUIET_PERIOD_MS)
    running.push(...await streams(up, 1))
    await end(up, running, 1)
  }
  t.same(up.replaced, [], '21 of 80 still running for three periods: kept')
})

t.test('steady traffic under 64 exchanges at once keeps its pool, however quiet it gets', async (t) => {
  const up = await upstream(t)
  const running = await streams(up, 63)
  await end(up, running, 63)
  for (let period = 0; period < 3; period++) {
    up.clock.advance(QUIET_PERIOD_MS)
    await end(up, await streams(up, 1), 1)
  }
  t.same(up.replaced, [])
})

t.test('streams whose clients left: the idle connections undici opens again for them close with the old pool (nodejs/undici#5845)', async (t) => {
  const up = await upstream(t)
  const left = await streams(up, 64)
  for (const exchange of left) exchange.abort(new Error('the client left'))
  await waitFor('a second connection for each aborted stream', async () => up.accepted() === 128)
  t.equal(up.accepted(), 128, 'undici opened a second connection for each aborted stream')
  await sleep(100)
  t.equal(await up.connected(), 64, 'and keeps it open, idle')

  await quietPeriods(up)
  t.same(up.replaced, [64])
  await waitFor('the old pool\'s connections to close', async () => await up.connected() === 1)
  t.equal(await up.connected(), 1, 'the idle ones are closed; the new pool\'s own is kept alive')
})

t.test('exchanges that end on a replaced pool do not count against the new one', async (t) => {
  const up = await upstream(t)
  const old = await replacedAfterBurst(up)
  t.same(up.replaced, [64])
  const next = await streams(up, 64)
  // The 15 streams of the old pool end, and 34 of the new one's 64: 30 of 64 still run.
  await end(up, old, 15)
  await end(up, next, 34)
  up.clock.advance(QUIET_PERIOD_MS)
  next.push(...await streams(up, 1))
  up.clock.advance(QUIET_PERIOD_MS)
  next.push(...await streams(up, 1))
  t.same(up.replaced, [64], 'a whole period at 31 of 64: kept')
})

t.test('destroy() also ends the streams still running on a replaced pool', async (t) => {
  const up = await upstream(t)
  const running = await replacedAfterBurst(up)
  t.same(up.replaced, [64])
  const settled = Promise.allSettled(running.map(async (exchange) => await exchange.whole()))
  await up.pool.destroy()
  t.ok((await settled).every((s) => s.status === 'rejected'), 'the 15 streams on the old pool failed at once')
})

t.test('issue 15 finding 4: with a connection cap, an exchange past it waits for a free connection, on a replacing pool as on the first', async (t) => {
  const up = await upstream(t, { connections: 64, bodyTimeout: 0 })
  const old = await replacedAfterBurst(up)
  t.same(up.replaced, [64], 'a capped pool is replaced after a burst like any other')
  const next = await streams(up, 64)
  t.equal(up.open.size, 64 + old.length, 'the new pool has its own 64 connections next to what still runs on the old one')
  const waiting = new UpstreamExchange(up.pool, { method: 'GET', path: '/past-the-cap' })
  await sleep(100)
  t.equal(waiting.statusCode, 0, 'the 65th exchange on the new pool has no answer…')
  t.notOk(up.open.has('/past-the-cap'), '…and never reached the upstream')
  await end(up, next, 1)
  await waiting.responded()
  t.ok(up.open.has('/past-the-cap'), 'it goes out on the connection that came free')
})
