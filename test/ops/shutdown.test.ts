import { once } from 'node:events'
import t, { type Test } from 'tap'
import { Client } from 'undici'
import { startFakeGithub } from '../helpers/fake-github.js'
import { startFakeMcp } from '../helpers/fake-mcp.js'
import { SECRET } from '../helpers/gateway.js'
import { GatewayProcess, freePort, gatewayFlags, loginFully, register, waitFor } from '../helpers/process.js'
import { SHARED_REDIS_URL, deletePrefix, testPrefix } from '../helpers/redis.js'

/*
 * Issue: "SIGTERM and SIGINT: stop accepting, let in-flight requests finish within a bounded grace time,
 * end open SSE streams cleanly, close the store, exit 0. A test proves it with an open stream and a call in
 * flight." The gateway runs as the real server.ts process (what `npm start` and the Docker image run).
 */

const github = await startFakeGithub()
t.teardown(() => github.close())
const mcp = await startFakeMcp({ isValidToken: (token) => github.isValidAccessToken(token) })
t.teardown(() => mcp.close())

const PROTOCOL = '2025-06-18'
// Five gateway processes, one after the other: more than the default 60 s on a loaded machine.
t.setTimeout(180_000)

/** A gateway process with an access token, and the grace time given by env; the memory store unless given. */
async function startGateway (t: Test, graceSeconds: number, store = { store: 'memory', storePrefix: 'mcp-gateway:' }): Promise<{ gw: GatewayProcess, token: string }> {
  const port = await freePort()
  const publicUrl = `http://127.0.0.1:${port}`
  const flags = gatewayFlags({ port, publicUrl, ...store, secret: SECRET, github, upstreamRs: mcp.url, extra: ['--log-level', 'info'] })
  const gw = await GatewayProcess.start(t, port, flags, { MCP_GATEWAY_SHUTDOWN_GRACE: String(graceSeconds) }, 30_000)
  t.teardown(() => { if (t.passing() === false) t.comment(gw.output) })
  const client = await register(gw.origin)
  const tokens = await loginFully(gw.origin, publicUrl, client)
  return { gw, token: tokens.access_token }
}

/** One HTTP response read as it arrives, on a connection of its own; `ended` settles on end, error or close. */
interface LiveResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: () => string
  /** 'end' when the body ended cleanly, else the error's code or message. */
  ended: Promise<string>
  endedAt: () => number | undefined
}

async function live (t: Test, origin: string, method: 'GET' | 'POST', headers: Record<string, string>, body?: unknown): Promise<LiveResponse> {
  // A client of its own: one connection, never shared with another request of the test.
  const client = new Client(origin)
  t.teardown(async () => { await client.destroy() })
  const res = await client.request({
    method,
    path: '/mcp',
    headers: { accept: 'application/json, text/event-stream', 'mcp-protocol-version': PROTOCOL, ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    headersTimeout: 10_000,
    bodyTimeout: 0
  })
  let text = ''
  let endedAt: number | undefined
  const ended = new Promise<string>((resolve) => {
    const done = (how: string): void => {
      endedAt ??= Date.now()
      resolve(how)
    }
    res.body.on('data', (chunk: Buffer) => { text += chunk.toString('utf8') })
    res.body.on('end', () => done('end'))
    res.body.on('error', (err: Error & { code?: string }) => done(err.code ?? err.message))
    res.body.on('close', () => done('close without end'))
  })
  return { status: res.statusCode, headers: res.headers, text: () => text, ended, endedAt: () => endedAt }
}

/** initialize + notifications/initialized on the stateful fake MCP, through the gateway: the session id. */
async function openSession (t: Test, origin: string, token: string): Promise<string> {
  const auth = { authorization: `Bearer ${token}` }
  const init = await live(t, origin, 'POST', auth, {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'shutdown-test', version: '1.0.0' } }
  })
  t.equal(init.status, 200, 'initialize through the gateway')
  await init.ended
  const sessionId = init.headers['mcp-session-id']
  if (typeof sessionId !== 'string') throw new Error(`no session id: ${init.text()}`)
  const initialized = await live(t, origin, 'POST', { ...auth, 'mcp-session-id': sessionId }, { jsonrpc: '2.0', method: 'notifications/initialized' })
  t.equal(initialized.status, 202, 'notifications/initialized accepted')
  await initialized.ended
  return sessionId
}

async function exitOf (
  gw: GatewayProcess,
  withinMs: number
): Promise<{ code: number | null, signal: NodeJS.Signals | null, ms: number }> {
  const started = Date.now()
  if (!gw.alive) return { code: gw.child.exitCode, signal: gw.child.signalCode, ms: 0 }
  const timer = setTimeout(() => gw.child.kill('SIGKILL'), withinMs)
  const [code, signal] = await once(gw.child, 'exit') as [number | null, NodeJS.Signals | null]
  clearTimeout(timer)
  return { code, signal, ms: Date.now() - started }
}

/** True once a NEW connection to the gateway is refused (nothing listens on the port any more). */
async function refusesConnections (origin: string): Promise<boolean> {
  const client = new Client(origin)
  try {
    const res = await client.request({ method: 'GET', path: '/healthz', headersTimeout: 1000, bodyTimeout: 1000 })
    await res.body.dump()
    return false
  } catch (err) {
    return (err as { code?: string }).code === 'ECONNREFUSED'
  } finally {
    await client.destroy()
  }
}

const callSlow = (sessionId: string, token: string, count: number, intervalMs: number) => ({
  headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sessionId },
  body: { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'slow', arguments: { count, intervalMs }, _meta: { progressToken: 'shutdown' } } }
})

t.test('SIGTERM: the call in flight finishes with its result, the open SSE stream ends cleanly, new connections are refused, exit 0 within the grace time', async (t) => {
  const graceSeconds = 10
  const { gw, token } = await startGateway(t, graceSeconds)
  const sessionId = await openSession(t, gw.origin, token)

  const stream = await live(t, gw.origin, 'GET', { authorization: `Bearer ${token}`, 'mcp-session-id': sessionId })
  t.equal(stream.status, 200, 'the GET stream is open')
  t.match(String(stream.headers['content-type']), /^text\/event-stream/, 'as an event stream')
  await mcp.sendServerNotification(sessionId, 'before shutdown')
  await waitFor('the notification on the GET stream', async () => stream.text().includes('before shutdown'))

  const slow = callSlow(sessionId, token, 6, 400)
  const call = await live(t, gw.origin, 'POST', slow.headers, slow.body)
  t.equal(call.status, 200, 'the slow tool call is answered with a stream')
  await waitFor('the first progress notification', async () => call.text().includes('notifications/progress'))

  const signalledAt = Date.now()
  gw.child.kill('SIGTERM')

  await waitFor('new connections to be refused', async () => await refusesConnections(gw.origin), 3000, 25)
  t.equal(call.endedAt(), undefined, 'new connections are refused while the call is still in flight')

  t.equal(await call.ended, 'end', 'the call in flight ended cleanly')
  t.match(call.text(), /"text":"done after 6"/, 'with its result')
  t.match(call.text(), /"id":2/, 'the JSON-RPC response to the call')

  t.equal(await stream.ended, 'end', 'the open SSE stream ended cleanly (end of body, not a reset or a hang)')

  const exit = await exitOf(gw, (graceSeconds + 5) * 1000)
  t.equal(exit.signal, null, 'the process was not killed')
  t.equal(exit.code, 0, 'exit code 0')
  t.ok(Date.now() - signalledAt < graceSeconds * 1000, `exited within the grace time (${Date.now() - signalledAt} ms)`)
  t.notMatch(gw.output, /destroying the connections still open/, 'nothing had to be forced')
  t.match(gw.output, /"signal":"SIGTERM"/, 'the signal is logged')
  t.match(gw.output, /"msg":"shut down"/, 'and the end of the shutdown')
})

t.test('SIGTERM: a plain answer in flight still arrives, with Connection: close, so the client does not reuse the connection', async (t) => {
  const { gw, token } = await startGateway(t, 10)
  const sessionId = await openSession(t, gw.origin, token)
  // The fake MCP server holds its answer (a 202 without body: not a stream) for 1.5 s.
  mcp.delayMs = 1500
  t.teardown(() => { mcp.delayMs = 0 })
  const pending = live(t, gw.origin, 'POST', { authorization: `Bearer ${token}`, 'mcp-session-id': sessionId }, { jsonrpc: '2.0', method: 'notifications/initialized' })
  await new Promise((resolve) => setTimeout(resolve, 300))
  gw.child.kill('SIGTERM')
  const answer = await pending
  t.equal(answer.status, 202, 'the answer in flight arrives')
  t.equal(answer.headers.connection, 'close', 'and tells the client this connection is over')
  t.equal(await answer.ended, 'end')
  const exit = await exitOf(gw, 15_000)
  t.equal(exit.code, 0)
  t.notMatch(gw.output, /destroying the connections still open/, 'nothing had to be forced')
})

t.test('SIGINT, Redis store: the open SSE stream ends cleanly, the store closes, the process exits 0', async (t) => {
  const storePrefix = testPrefix('shutdown')
  t.teardown(async () => { await deletePrefix(SHARED_REDIS_URL, storePrefix) })
  const { gw, token } = await startGateway(t, 10, { store: SHARED_REDIS_URL, storePrefix })
  const sessionId = await openSession(t, gw.origin, token)
  const stream = await live(t, gw.origin, 'GET', { authorization: `Bearer ${token}`, 'mcp-session-id': sessionId })
  t.equal(stream.status, 200, 'the GET stream is open')

  gw.child.kill('SIGINT')
  t.equal(await stream.ended, 'end', 'the open SSE stream ended cleanly')
  const exit = await exitOf(gw, 15_000)
  t.equal(exit.code, 0, 'exit code 0')
  t.ok(exit.ms < 10_000, 'within the grace time')
  t.notMatch(gw.output, /destroying the connections still open/, 'nothing had to be forced')
  t.match(gw.output, /"forced":false,"msg":"shut down"/, 'closed completely (the store\'s onClose included) before exiting')
  t.ok(await refusesConnections(gw.origin), 'nothing listens any more')
})

t.test('grace time over: a call still in flight is cut, the process still exits 0, promptly', async (t) => {
  const graceSeconds = 1
  const { gw, token } = await startGateway(t, graceSeconds)
  const sessionId = await openSession(t, gw.origin, token)
  const slow = callSlow(sessionId, token, 20, 250)
  const call = await live(t, gw.origin, 'POST', slow.headers, slow.body)
  await waitFor('the first progress notification', async () => call.text().includes('notifications/progress'))

  const signalledAt = Date.now()
  gw.child.kill('SIGTERM')
  const exit = await exitOf(gw, 10_000)
  const ms = Date.now() - signalledAt
  t.equal(exit.code, 0, 'exit code 0: the forced end is the bounded stop that was asked for')
  t.ok(ms >= graceSeconds * 1000 && ms < graceSeconds * 1000 + 4000, `exited right after the grace time (${ms} ms)`)
  t.not(await call.ended, 'end', 'the unfinished call was cut, not completed')
  t.notMatch(call.text(), /done after/, 'no result')
  t.match(gw.output, /"reason":"grace time over".*destroying the connections still open/, 'the forced end is logged as a warning')
})

t.test('a second signal destroys what is still open at once', async (t) => {
  const { gw, token } = await startGateway(t, 60)
  const sessionId = await openSession(t, gw.origin, token)
  const slow = callSlow(sessionId, token, 40, 250)
  const call = await live(t, gw.origin, 'POST', slow.headers, slow.body)
  await waitFor('the first progress notification', async () => call.text().includes('notifications/progress'))

  const signalledAt = Date.now()
  gw.child.kill('SIGINT')
  await waitFor('new connections to be refused', async () => await refusesConnections(gw.origin), 3000, 25)
  gw.child.kill('SIGINT')
  const exit = await exitOf(gw, 10_000)
  t.equal(exit.code, 0, 'exit code 0')
  t.ok(Date.now() - signalledAt < 5000, 'long before the 60 s grace time')
  t.not(await call.ended, 'end', 'the unfinished call was cut')
  t.match(gw.output, /"reason":"second SIGINT"/, 'the forced end names the second signal')
})

t.test('a bad MCP_GATEWAY_SHUTDOWN_GRACE is a configuration error, not echoed', async (t) => {
  const port = await freePort()
  const flags = gatewayFlags({ port, publicUrl: `http://127.0.0.1:${port}`, store: 'memory', storePrefix: 'mcp-gateway:', secret: SECRET, github, upstreamRs: mcp.url })
  const err = await GatewayProcess.start(t, port, flags, { MCP_GATEWAY_SHUTDOWN_GRACE: 'ten-seconds' }, 30_000).then(() => undefined, (e: Error) => e)
  t.match(err?.message, /exited with 1/, 'the process exits 1')
  t.match(err?.message, /MCP_GATEWAY_SHUTDOWN_GRACE/, 'naming the variable')
  t.notMatch(err?.message, /ten-seconds/, 'without repeating its value')
})
