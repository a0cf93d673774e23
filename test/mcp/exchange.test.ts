import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import t from 'tap'
import type { Dispatcher } from 'undici'
import { systemClock } from '../../lib/clock.js'
import { UpstreamExchange } from '../../routes/mcp/exchange.js'
import { UpstreamPool } from '../../routes/mcp/upstream-pool.js'

/*
 * The proxy's upstream exchange (undici dispatch) on a real socket: each way of taking the body, the
 * upstream failing at each point, and aborts before and after the answer starts. The proxy's own tests
 * (proxy*.test.ts) cover the same paths end to end; these pin what each method promises.
 */

interface Upstream { pool: UpstreamPool, closed: () => Promise<void>, requests: number, connections: number }

async function upstream (
  t: { teardown (fn: () => unknown): void },
  handler: (req: IncomingMessage, res: ServerResponse) => void
): Promise<Upstream> {
  let closes: Array<() => void> = []
  const state = {
    requests: 0,
    connections: 0,
    // Resolves when the next request's connection to the upstream closes before its answer finished.
    closed: async () => { await new Promise<void>((resolve) => { closes.push(resolve) }) }
  }
  const server = createServer((req, res) => {
    state.requests++
    res.on('close', () => {
      if (res.writableFinished) return
      for (const resolve of closes) resolve()
      closes = []
    })
    handler(req, res)
  })
  server.on('connection', () => { state.connections++ })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const pool = new UpstreamPool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: null, bodyTimeout: 0 }, { clock: systemClock })
  t.teardown(async () => {
    await pool.destroy()
    server.closeAllConnections()
    server.close()
  })
  return Object.assign(state, { pool })
}

const get = { method: 'GET', path: '/' } as const

/** A client that takes everything at once. */
const sink = (): Writable => new Writable({ write (_data, _enc, callback) { callback() } })

/** relay() into `out`, as a promise: resolves when the body has ended, rejects with what failed. */
const relayed = async (exchange: UpstreamExchange, out: Writable): Promise<void> =>
  await new Promise((resolve, reject) => {
    exchange.relay(out, (err) => { if (err === undefined) resolve(); else reject(err) })
  })

t.test('whole(): status, headers and the body in one buffer, also when it arrives in pieces', async (t) => {
  const up = await upstream(t, (_req, res) => {
    res.writeHead(201, { 'content-type': 'application/json', 'content-length': '11', 'mcp-session-id': 's1' })
    res.write('{"a":')
    setTimeout(() => res.end('"bcd"}'), 20)
  })
  const exchange = new UpstreamExchange(up.pool, get)
  await exchange.responded()
  t.equal(exchange.statusCode, 201)
  t.equal(exchange.headers['mcp-session-id'], 's1')
  t.equal(exchange.received, undefined, 'not all of it yet')
  t.equal((await exchange.whole()).toString(), '{"a":"bcd"}')
  t.equal(exchange.received?.toString(), '{"a":"bcd"}')
  t.equal((await exchange.whole()).toString(), '{"a":"bcd"}', 'asked again after the end: the same body')
})

t.test('received: the body that came with the headers, and an empty one', async (t) => {
  const up = await upstream(t, (req, res) => {
    if (req.url === '/empty') res.writeHead(204).end()
    else res.writeHead(200, { 'content-length': '2' }).end('ok')
  })
  const exchange = new UpstreamExchange(up.pool, get)
  await exchange.responded()
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(exchange.received?.toString(), 'ok')
  const empty = new UpstreamExchange(up.pool, { method: 'GET', path: '/empty' })
  await empty.responded()
  t.equal((await empty.whole()).length, 0)
})

t.test('an event stream does not keep its raw header buffers for its lifetime (V8 pretenuring, bench/HISTORY.md)', async (t) => {
  const up = await upstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': 's9' })
    res.flushHeaders()
  })
  let controller: Dispatcher.DispatchController | undefined
  class Observed extends UpstreamExchange {
    override onRequestStart (c: Dispatcher.DispatchController): void {
      controller = c
      super.onRequestStart(c)
    }
  }
  const exchange = new Observed(up.pool, get)
  await exchange.responded()
  t.equal(exchange.headers['mcp-session-id'], 's9', 'the parsed headers are there')
  t.ok(controller !== undefined, 'undici handed over its controller')
  t.equal(controller?.rawHeaders, null, 'undici\'s raw header buffers are let go while the stream stays open')
  const stream = exchange.stream()
  stream.destroy()
})

t.test('responded() ignores 1xx answers (103 Early Hints)', async (t) => {
  const up = await upstream(t, (_req, res) => {
    res.writeEarlyHints({ link: '</x>; rel=preload' })
    setTimeout(() => res.writeHead(200, { 'content-length': '2' }).end('ok'), 10)
  })
  const exchange = new UpstreamExchange(up.pool, get)
  await exchange.responded()
  t.equal(exchange.statusCode, 200)
  t.equal((await exchange.whole()).toString(), 'ok')
})

t.test('whole() rejects when the upstream stops short of its Content-Length', async (t) => {
  const up = await upstream(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '100' })
    res.write('only part')
    setTimeout(() => res.socket?.destroy(), 20)
  })
  const exchange = new UpstreamExchange(up.pool, get)
  await exchange.responded()
  await t.rejects(exchange.whole())
})

t.test('an upstream failure before the answer: responded() rejects', async (t) => {
  const up = await upstream(t, (req) => { req.socket.destroy() })
  const exchange = new UpstreamExchange(up.pool, get)
  await t.rejects(exchange.responded())
  await t.rejects(exchange.responded(), 'and again, once settled')
})

t.test('abort() before the answer: the upstream sees the connection close, responded() rejects with the reason', async (t) => {
  const up = await upstream(t, () => { /* never answers */ })
  const exchange = new UpstreamExchange(up.pool, get)
  const closed = up.closed()
  await new Promise((resolve) => setTimeout(resolve, 30))
  exchange.abort(new Error('client left'))
  await t.rejects(exchange.responded(), { message: 'client left' })
  await closed
})

t.test('abort() at once, before undici has started the request', async (t) => {
  const up = await upstream(t, (_req, res) => { res.end('late') })
  const exchange = new UpstreamExchange(up.pool, get)
  exchange.abort(new Error('client left'))
  await t.rejects(exchange.responded(), { message: 'client left' })
})

t.test('abort() while whole() waits: it rejects with the reason, the upstream sees the close', async (t) => {
  const up = await upstream(t, (_req, res) => { res.writeHead(200, { 'content-length': '10' }).write('12345') })
  const exchange = new UpstreamExchange(up.pool, get)
  await exchange.responded()
  const closed = up.closed()
  const body = exchange.whole()
  setTimeout(() => { exchange.abort(new Error('stalled')) }, 20)
  await t.rejects(body, { message: 'stalled' })
  await closed
  exchange.abort(new Error('again'))
  t.pass('a second abort is a no-op')
})

t.test('a failure after the answer started but before the body is asked for surfaces in whole(), stream() and relay()', async (t) => {
  const up = await upstream(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '10' })
    res.write('12345')
    setTimeout(() => res.socket?.destroy(), 10)
  })
  for (const take of ['whole', 'stream', 'relay'] as const) {
    const exchange = new UpstreamExchange(up.pool, get)
    await exchange.responded()
    await new Promise((resolve) => setTimeout(resolve, 60))
    if (take === 'whole') await t.rejects(exchange.whole())
    else if (take === 'stream') await t.rejects(pipeline(exchange.stream(), sink()))
    else await t.rejects(relayed(exchange, sink()), take)
  }
})

const CHUNK = Buffer.alloc(64 * 1024, 'x')

/** An upstream answer of `chunks` × 64 KiB, written as fast as it is taken; `sent` counts the chunks written. */
function largeAnswer (
  chunks: number,
  contentType: string
): { handler: (req: IncomingMessage, res: ServerResponse) => void, sent: number } {
  const state = {
    sent: 0,
    handler: (_req: IncomingMessage, res: ServerResponse): void => {
      res.writeHead(200, { 'content-type': contentType })
      const more = (): void => {
        while (state.sent < chunks) {
          state.sent++
          if (!res.write(CHUNK)) { res.once('drain', more); return }
        }
        res.end()
      }
      more()
    }
  }
  return state
}

t.test('stream(): every byte of a large body, with backpressure, taken after part of it was held', async (t) => {
  const up = await upstream(t, largeAnswer(64, 'application/octet-stream').handler)
  const exchange = new UpstreamExchange(up.pool, get)
  await exchange.responded()
  // Let data arrive while nobody reads: held, then paused past 64 KiB.
  await new Promise((resolve) => setTimeout(resolve, 50))
  let received = 0
  let slow = 0
  await pipeline(exchange.stream(), new Writable({
    highWaterMark: 1024,
    write (data: Buffer, _enc, callback) {
      received += data.length
      // A slow reader for the first chunks: the upstream has to wait.
      if (slow++ < 5) setTimeout(callback, 10)
      else callback()
    }
  }))
  t.equal(received, 64 * CHUNK.length)
})

t.test('stream() and relay() of a body that already ended, and one that ends later', async (t) => {
  const up = await upstream(t, (req, res) => {
    res.writeHead(200)
    if (req.url === '/late') {
      res.write('a')
      setTimeout(() => res.end('b'), 20)
    } else {
      res.end('ab')
    }
  })
  for (const take of ['stream', 'relay'] as const) {
    for (const path of ['/', '/late']) {
      const exchange = new UpstreamExchange(up.pool, { method: 'GET', path })
      await exchange.responded()
      if (path === '/') await new Promise((resolve) => setTimeout(resolve, 30))
      const parts: Buffer[] = []
      if (take === 'stream') {
        const stream = exchange.stream()
        t.equal(exchange.received, undefined, 'a streamed body is not also held')
        for await (const part of stream) parts.push(part as Buffer)
      } else {
        await relayed(exchange, new Writable({ write (data: Buffer, _enc, callback) { parts.push(data); callback() } }))
        t.equal(exchange.received, undefined, 'a relayed body is not also held')
      }
      t.equal(Buffer.concat(parts).toString(), 'ab', `${take} ${path}`)
    }
  }
})

t.test('destroying the stream aborts the upstream request', async (t) => {
  const up = await upstream(t, (_req, res) => { res.writeHead(200, { 'content-type': 'text/event-stream' }).write('data: 1\n\n') })
  const exchange = new UpstreamExchange(up.pool, get)
  await exchange.responded()
  const closed = up.closed()
  const stream = exchange.stream()
  await once(stream, 'data')
  stream.destroy()
  await closed
  t.pass('the upstream saw its connection close')
})

t.test('relay(): every byte of a large body, with backpressure (pitfall 10)', async (t) => {
  const answer = largeAnswer(256, 'text/event-stream')
  const up = await upstream(t, answer.handler)
  const exchange = new UpstreamExchange(up.pool, get)
  await exchange.responded()
  let writes = 0
  let received = 0
  let release: (() => void) | undefined
  const out = new Writable({
    highWaterMark: 1024,
    write (data: Buffer, _enc, callback) {
      received += data.length
      // The third write is not taken until the test says so: from then on the client is full.
      if (++writes === 3) release = callback
      else callback()
    }
  })
  const done = relayed(exchange, out)
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.ok(answer.sent < 256, `the upstream is held back while the client does not take: ${answer.sent} of 256 chunks of 64 KiB written`)
  t.ok(out.writableLength < 1024 * 1024, `and the client's buffer does not swallow the rest: ${out.writableLength} bytes`)
  release?.()
  await done
  t.equal(received, 256 * CHUNK.length, 'every byte')
  t.equal(out.writableEnded, false, 'ending the client\'s stream is left to the caller')
})

t.test('relay(): an upstream that fails mid-body, and abort(), reach done with the error', async (t) => {
  const up = await upstream(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' }).write('data: 1\n\n')
    if (req.url === '/fail') setTimeout(() => res.socket?.destroy(), 30)
  })
  const failing = new UpstreamExchange(up.pool, { method: 'GET', path: '/fail' })
  await failing.responded()
  await t.rejects(relayed(failing, sink()))

  const aborted = new UpstreamExchange(up.pool, get)
  await aborted.responded()
  const closed = up.closed()
  const done = relayed(aborted, sink())
  aborted.abort(new Error('the client left'))
  await t.rejects(done, { message: 'the client left' })
  await closed
  t.pass('the upstream saw its connection close')
})

t.test('dump(): a short body is read to its end and the connection reused; a long one is cut', async (t) => {
  const big = Buffer.alloc(256 * 1024, 'y')
  const up = await upstream(t, (req, res) => {
    if (req.url === '/long') res.writeHead(401).end(big)
    else res.writeHead(401, { 'content-length': '12' }).end('unauthorized')
  })
  const send = async (path: string, wait = 0): Promise<void> => {
    const exchange = new UpstreamExchange(up.pool, { method: 'GET', path })
    await exchange.responded()
    // With a wait, the body arrives before dump() (held, then paused); without, mostly after it.
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    exchange.dump()
    // The pool hands its connection out again once undici has seen it drain (or cut it): wait for that, not for a
    // fixed time, which a loaded machine outlasts (a new connection then, and a wrong count).
    const pool = up.pool.acquire()
    up.pool.release(pool)
    for (let i = 0; i < 400 && (pool.stats.running > 0 || pool.stats.pending > 0); i++) {
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    await new Promise((resolve) => setImmediate(resolve))
  }
  await send('/short')
  await send('/short')
  t.equal(up.connections, 1, 'two short answers dumped: one connection')
  await send('/long', 30)
  await send('/short')
  t.equal(up.connections, 2, 'past 64 KiB held: the connection is given up')
  await send('/long')
  await send('/short')
  t.equal(up.connections, 3, 'past 64 KiB read after dump(): the same')
})
