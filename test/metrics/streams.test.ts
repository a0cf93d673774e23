import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { Agent, request as undiciRequest } from 'undici'
import type { FakeGithub } from '../helpers/fake-github.js'
import { startFakeMcp, type FakeMcp, type FakeMcpRequest } from '../helpers/fake-mcp.js'
import { authorizeFully, exchangeCode, registerClient } from '../helpers/gateway.js'
import { buildWithMetrics, sample } from '../helpers/metrics.js'
import type { Teardown } from '../helpers/teardown.js'

/*
 * Open SSE streams on real sockets: the gauge follows them, a client that leaves is counted (499 when
 * it left before any answer), and closing the gateway ends every open GET stream cleanly (the client
 * sees the stream end, not a reset, and close() does not wait on it) while a call in flight finishes.
 */

const PROTOCOL_VERSION = '2025-06-18'

interface Stack {
  app: FastifyInstance
  origin: string
  mcp: FakeMcp
  token: string
  request: (url: string, options: Omit<NonNullable<Parameters<typeof undiciRequest>[1]>, 'dispatcher'>) => ReturnType<typeof undiciRequest>
}

async function startStack (t: Teardown): Promise<Stack> {
  const ref: { github?: FakeGithub } = {}
  const mcp = await startFakeMcp({ mode: 'stateful', isValidToken: (token) => ref.github?.isValidAccessToken(token) ?? false })
  t.teardown(() => mcp.close())
  const built = await buildWithMetrics(t, { gateway: { upstreamRs: mcp.url }, noReady: true })
  ref.github = built.github
  const { app } = built
  // The gateway's publicUrl stays the helpers' one: tokens are bound to it, whatever address serves it.
  await app.listen({ port: 0, host: '127.0.0.1' })
  // A client of its own, gone before the gateway closes (teardowns run last first): undici may hold a
  // spare connection that never carried a request, which Node's server.close() would wait on for a minute.
  const agent = new Agent()
  t.teardown(async () => { await agent.destroy() })
  const request: Stack['request'] = async (url, options) => await undiciRequest(url, { ...options, dispatcher: agent })
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const client = await registerClient(app)
  const flow = await authorizeFully(app, client)
  const res = await exchangeCode(app, client, flow.code, flow.verifier)
  return { app, origin, mcp, request, token: (res.json() as { access_token: string }).access_token }
}

function headers (stack: Stack, extra: Record<string, string> = {}): Record<string, string> {
  return { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': PROTOCOL_VERSION, ...extra }
}

async function session (stack: Stack): Promise<string> {
  const init = await stack.request(`${stack.origin}/mcp`, {
    method: 'POST',
    headers: headers(stack),
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'metrics', version: '1' } } })
  })
  await init.body.text()
  const sessionId = init.headers['mcp-session-id']
  if (init.statusCode !== 200 || typeof sessionId !== 'string') throw new Error(`initialize: ${init.statusCode}`)
  const initialized = await stack.request(`${stack.origin}/mcp`, { method: 'POST', headers: headers(stack, { 'mcp-session-id': sessionId }), body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' })
  await initialized.body.dump()
  return sessionId
}

interface OpenStream {
  upstream: FakeMcpRequest
  chunks: string[]
  outcome: Promise<'end' | 'error'>
  abort: () => void
}

async function openGetStream (stack: Stack, sessionId: string): Promise<OpenStream> {
  const aborter = new AbortController()
  const res = await stack.request(`${stack.origin}/mcp`, {
    method: 'GET',
    headers: { authorization: `Bearer ${stack.token}`, accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': PROTOCOL_VERSION },
    signal: aborter.signal
  })
  if (res.statusCode !== 200) throw new Error(`GET stream: ${res.statusCode}`)
  const chunks: string[] = []
  res.body.on('data', (chunk: Buffer) => { chunks.push(chunk.toString()) })
  const outcome = new Promise<'end' | 'error'>((resolve) => {
    res.body.on('end', () => { resolve('end') })
    res.body.on('error', () => { resolve('error') })
  })
  const upstream = await waitFor('the upstream GET', () => stack.mcp.requests.find((r) => r.method === 'GET' && r.headers['mcp-session-id'] === sessionId && r.closedAt === undefined))
  return { upstream, chunks, outcome, abort: () => { aborter.abort() } }
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

async function waitFor<T> (
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 3000
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

async function scrape (app: FastifyInstance): Promise<string> {
  return (await app.inject({ method: 'GET', url: '/metrics' })).body
}

t.test('the gauge counts open streams, and a client that leaves one is counted with the stream\'s status', async (t) => {
  const stack = await startStack(t)
  const sessionId = await session(stack)
  const stream = await openGetStream(stack, sessionId)
  t.equal(sample(await scrape(stack.app), 'mcp_open_streams'), 1)
  await stack.mcp.sendServerNotification(sessionId, 'metrics see this')
  await waitFor('the event', () => stream.chunks.join('').includes('metrics see this') || undefined)

  stream.abort()
  t.equal(await stream.outcome, 'error', 'the client cut its own stream')
  const text = await waitFor('the stream to be closed', async () => {
    const text = await scrape(stack.app)
    return sample(text, 'mcp_open_streams') === 0 ? text : undefined
  })
  t.equal(sample(text, 'http_requests_total', { route: '/mcp', method: 'GET', status: '200' }), 1)
  await waitFor('the upstream GET to close', () => stream.upstream.closedAt)
})

t.test('a client that leaves before the upstream answers: 499, and no latency sample', async (t) => {
  const stack = await startStack(t)
  stack.mcp.delayMs = 2000
  t.teardown(() => { stack.mcp.delayMs = 0 })
  const aborter = new AbortController()
  const pending = stack.request(`${stack.origin}/mcp`, { method: 'POST', headers: headers(stack), body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}', signal: aborter.signal })
  pending.catch(() => {})
  await waitFor('the call upstream', () => stack.mcp.requests.find((r) => r.method === 'POST'))
  aborter.abort()
  const text = await waitFor('the request to be counted', async () => {
    const text = await scrape(stack.app)
    return sample(text, 'http_requests_total', { route: '/mcp', method: 'POST', status: '499' }) === undefined ? undefined : text
  })
  t.equal(sample(text, 'http_requests_total', { route: '/mcp', method: 'POST', status: '499' }), 1)
  t.equal(sample(text, 'upstream_errors_total', { kind: 'proxy_502' }), 0, 'a client that leaves is not an upstream error')
})

t.test('closing the gateway ends open GET streams cleanly at once, and lets a call in flight finish with its result', async (t) => {
  const stack = await startStack(t)
  const sessionId = await session(stack)
  const streams = [await openGetStream(stack, sessionId)]
  // A second session's stream, so more than one is ended.
  streams.push(await openGetStream(stack, await session(stack)))
  // A slow tool call, answered as a stream of progress notifications and then its result.
  const call = await stack.request(`${stack.origin}/mcp`, {
    method: 'POST',
    headers: headers(stack, { 'mcp-session-id': sessionId }),
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'slow', arguments: { count: 4, intervalMs: 150 }, _meta: { progressToken: 'p' } } })
  })
  t.match(call.headers['content-type'], /^text\/event-stream/)
  let callText = ''
  call.body.on('data', (chunk: Buffer) => { callText += chunk.toString() })
  const callOutcome = new Promise<'end' | 'error'>((resolve) => {
    call.body.on('end', () => { resolve('end') })
    call.body.on('error', () => { resolve('error') })
  })
  await waitFor('the first progress notification', () => callText.includes('notifications/progress') || undefined)
  t.equal(sample(await scrape(stack.app), 'mcp_open_streams'), 3, 'two GET streams and the call\'s')

  const started = Date.now()
  const closing = stack.app.close()
  let closed = false
  closing.then(() => { closed = true }, () => {})
  for (const [i, stream] of streams.entries()) {
    t.equal(await stream.outcome, 'end', `GET stream ${i + 1}: the client saw the stream end, not a reset`)
    t.ok(Date.now() - started < 300, `GET stream ${i + 1}: ended at once (${Date.now() - started} ms)`)
    await waitFor(`upstream stream ${i + 1} to close`, () => stream.upstream.closedAt)
  }
  t.equal(closed, false, 'close() waits for the call in flight')
  t.equal(await callOutcome, 'end', 'the call ended cleanly')
  t.match(callText, /"text":"done after 4"/, 'with its result')
  await closing
  t.ok(Date.now() - started < 2000, `closed in ${Date.now() - started} ms, once the call was answered`)
})
