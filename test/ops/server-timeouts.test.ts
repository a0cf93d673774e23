import { connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { Client } from 'undici'
import { startFakeGithub } from '../helpers/fake-github.js'
import { startFakeMcp } from '../helpers/fake-mcp.js'
import { SECRET } from '../helpers/gateway.js'
import { GatewayProcess, freePort, gatewayFlags, loginFully, register, waitFor } from '../helpers/process.js'

/*
 * Issue 15 finding 3: the standalone server bounds how long a client may take to send a request, caps the
 * connections it holds, and still leaves idle event streams alone. Real server.ts processes and raw sockets:
 * these are Node's socket-level timers, which inject() never reaches.
 */

const github = await startFakeGithub()
t.teardown(() => github.close())
const mcp = await startFakeMcp({ isValidToken: (token) => github.isValidAccessToken(token) })
t.teardown(() => mcp.close())
t.setTimeout(180_000)

const PROTOCOL = '2025-06-18'
const REQUEST_TIMEOUT = 1500
const HEADERS_TIMEOUT = 1000
// What a close may take beyond the timeout: Node looks for expired requests only every so often
// (server.ts sets that interval to at most a second), and a loaded test machine adds some.
const CHECK_SLACK = 1500

async function startGateway (t: Test, extra: string[]): Promise<{ gw: GatewayProcess, publicUrl: string }> {
  const port = await freePort()
  const publicUrl = `http://127.0.0.1:${port}`
  const flags = gatewayFlags({ port, publicUrl, store: 'memory', storePrefix: 'mcp-gateway:', secret: SECRET, github, upstreamRs: mcp.url, extra })
  const gw = await GatewayProcess.start(t, port, flags, {}, 30_000)
  t.teardown(() => { if (t.passing() === false) t.comment(gw.output) })
  return { gw, publicUrl }
}

/** A raw connection: what it received, and when it closed (ms after `openedAt`), or undefined while open. */
interface RawConnection {
  socket: Socket
  openedAt: number
  received: () => string
  closed: Promise<number>
  closedAfter: () => number | undefined
}

async function rawConnection (t: Test, port: number): Promise<RawConnection> {
  const socket = connect(port, '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve).once('error', reject) })
  const openedAt = Date.now()
  let received = ''
  let closedAfter: number | undefined
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  // A reset is a close as well.
  socket.on('error', () => {})
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(closedAfter = Date.now() - openedAt)))
  return { socket, openedAt, received: () => received, closed, closedAfter: () => closedAfter }
}

/** Writes `text` one byte every `everyMs` until the connection closes or `limitMs` is over. */
async function trickle (conn: RawConnection, text: string, everyMs: number, limitMs: number): Promise<void> {
  for (const byte of text) {
    if (conn.closedAfter() !== undefined || Date.now() - conn.openedAt > limitMs) return
    conn.socket.write(byte)
    await Promise.race([sleep(everyMs), conn.closed])
  }
}

/** Resolves with the close time, or undefined when the connection is still open after `limitMs`. */
async function closeWithin (conn: RawConnection, limitMs: number): Promise<number | undefined> {
  const left = Math.max(0, limitMs - (Date.now() - conn.openedAt))
  return await Promise.race([conn.closed, sleep(left).then(() => undefined)])
}

t.test('short request and headers timeouts', async (t) => {
  const { gw, publicUrl } = await startGateway(t, [
    '--request-timeout', String(REQUEST_TIMEOUT), '--headers-timeout', String(HEADERS_TIMEOUT), '--keep-alive-timeout', '1000'
  ])

  t.test('issue 15 finding 3: a /consent body trickled one byte a second is cut at the request timeout', async (t) => {
    const conn = await rawConnection(t, gw.port)
    conn.socket.write('POST /consent HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n')
    const body = 'flow=' + 'a'.repeat(95)
    const limit = REQUEST_TIMEOUT + CHECK_SLACK + 3000
    const trickling = trickle(conn, body, 1000, limit)
    const closedAfter = await closeWithin(conn, limit)
    await trickling
    t.ok(closedAfter !== undefined, `the socket is closed (after ${String(closedAfter)} ms)`)
    t.ok(closedAfter !== undefined && closedAfter >= REQUEST_TIMEOUT - 100, 'not before the request timeout')
    t.ok(closedAfter !== undefined && closedAfter <= REQUEST_TIMEOUT + CHECK_SLACK, `within the timeout plus the checking interval (${String(closedAfter)} ms)`)
    t.match(conn.received(), /^(?:HTTP\/1\.1 408 |)/, 'with a 408, or nothing at all')
    t.comment(`body trickle closed after ${String(closedAfter)} ms; answer: ${JSON.stringify(conn.received().split('\r\n', 1)[0])}`)
  })

  t.test('issue 15 finding 3: headers trickled one byte a second are cut at the headers timeout', async (t) => {
    const conn = await rawConnection(t, gw.port)
    const limit = HEADERS_TIMEOUT + CHECK_SLACK + 3000
    const trickling = trickle(conn, 'POST /consent HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' + 'b'.repeat(100), 1000, limit)
    const closedAfter = await closeWithin(conn, limit)
    await trickling
    t.ok(closedAfter !== undefined, `the socket is closed (after ${String(closedAfter)} ms)`)
    t.ok(closedAfter !== undefined && closedAfter >= HEADERS_TIMEOUT - 100, 'not before the headers timeout')
    t.ok(closedAfter !== undefined && closedAfter <= HEADERS_TIMEOUT + CHECK_SLACK, `within the timeout plus the checking interval (${String(closedAfter)} ms)`)
    t.comment(`headers trickle closed after ${String(closedAfter)} ms; answer: ${JSON.stringify(conn.received().split('\r\n', 1)[0])}`)
  })

  t.test('issue 15 finding 3: idle event streams outlive the short timeouts (they bound receiving requests, not responses)', async (t) => {
    const token = (await loginFully(gw.origin, publicUrl, await register(gw.origin))).access_token
    const auth = { authorization: `Bearer ${token}`, accept: 'application/json, text/event-stream', 'mcp-protocol-version': PROTOCOL, 'content-type': 'application/json' }
    const client = new Client(gw.origin)
    t.teardown(async () => { await client.destroy() })
    const init = await client.request({
      method: 'POST',
      path: '/mcp',
      headers: auth,
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'timeouts', version: '1' } } })
    })
    await init.body.dump()
    const sessionId = init.headers['mcp-session-id'] as string
    t.type(sessionId, 'string', 'a session')
    const initialized = await client.request({ method: 'POST', path: '/mcp', headers: { ...auth, 'mcp-session-id': sessionId }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })
    await initialized.body.dump()

    // A connection of its own for the stream, as a real client keeps one.
    const streamClient = new Client(gw.origin)
    t.teardown(async () => { await streamClient.destroy() })
    const stream = await streamClient.request({ method: 'GET', path: '/mcp', headers: { ...auth, 'mcp-session-id': sessionId }, headersTimeout: 10_000, bodyTimeout: 0 })
    t.equal(stream.statusCode, 200, 'the GET stream is open')
    let text = ''
    let ended: string | undefined
    stream.body.on('data', (chunk: Buffer) => { text += chunk.toString('utf8') })
    stream.body.on('end', () => { ended ??= 'end' })
    stream.body.on('error', (err: Error & { code?: string }) => { ended ??= err.code ?? err.message })
    stream.body.on('close', () => { ended ??= 'close' })

    // Idle for longer than every timeout given to this gateway, each checked several times over.
    const idleMs = REQUEST_TIMEOUT + CHECK_SLACK + 1500
    await sleep(idleMs)
    t.equal(ended, undefined, `the stream is still open after ${idleMs} ms without a byte`)
    await mcp.sendServerNotification(sessionId, 'still there')
    await waitFor('the notification on the idle stream', async () => text.includes('still there'), 5000)
    t.pass('and an event sent after the idle time arrives')

    // A call whose streamed answer takes longer than the request timeout: the request was in long before.
    const call = await client.request({
      method: 'POST',
      path: '/mcp',
      headers: { ...auth, 'mcp-session-id': sessionId },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'slow', arguments: { count: 4, intervalMs: 700 }, _meta: { progressToken: 'timeouts' } } }),
      headersTimeout: 10_000,
      bodyTimeout: 0
    })
    const started = Date.now()
    const answer = await call.body.text()
    t.ok(Date.now() - started > REQUEST_TIMEOUT, `the answer streamed for longer than the request timeout (${Date.now() - started} ms)`)
    t.match(answer, /"text":"done after 4"/, 'and arrived whole')
  })
})

t.test('issue 15 finding 3: with --max-connections 5 the sixth connection is closed, the first five still work', async (t) => {
  // Long enough for the whole test to use its five connections again, short enough to wait out once:
  // the start-up probe's keep-alive connection counts until the server's keep-alive timeout closes it.
  const { gw } = await startGateway(t, ['--max-connections', '5', '--keep-alive-timeout', '3000'])
  await sleep(3500)

  const request = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
  const answered = async (conn: RawConnection, count: number): Promise<boolean> =>
    await waitFor('an answer', async () => conn.received().split('HTTP/1.1 200 ').length - 1 >= count, 3000).then(() => true, () => false)

  const five: RawConnection[] = []
  for (let i = 0; i < 5; i++) {
    const conn = await rawConnection(t, gw.port)
    conn.socket.write(request)
    t.ok(await answered(conn, 1), `connection ${i + 1} is answered`)
    five.push(conn)
  }

  const sixth = await rawConnection(t, gw.port)
  sixth.socket.write(request)
  const closedAfter = await closeWithin(sixth, 3000)
  t.ok(closedAfter !== undefined, `the sixth connection is closed (after ${String(closedAfter)} ms)`)
  t.notMatch(sixth.received(), /HTTP\/1\.1 200/, 'unanswered')

  for (const [i, conn] of five.entries()) {
    conn.socket.write(request)
    t.ok(await answered(conn, 2), `connection ${i + 1} still works`)
  }
})
