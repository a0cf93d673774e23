import { randomBytes } from 'node:crypto'
import { connect as netConnect } from 'node:net'
import { Writable } from 'node:stream'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import t from 'tap'
import { request } from 'undici'
import { startFakeGithub, type FakeGithub } from '../helpers/fake-github.js'
import { bigText, sha256, startFakeMcp, type FakeMcp, type FakeMcpRequest } from '../helpers/fake-mcp.js'
import { authorizeFully, exchangeCode, registerClient, startLiveGateway } from '../helpers/gateway.js'
import type { LogLine } from '../helpers/logged-gateway.js'
import type { Teardown } from '../helpers/teardown.js'

/*
 * The proxy on real sockets, end to end: the official MCP SDK client → the gateway (127.0.0.1, port 0,
 * publicUrl = that origin) → the SDK's own server (test/helpers/fake-mcp.ts) behind GitHub tokens.
 * What only real sockets show: streaming without buffering, big bodies both ways, the GET stream,
 * client aborts reaching the upstream, headers of an idle stream flushed at once.
 */

const UPSTREAM_TOKEN = /^Bearer gh[ou]_[\w-]+$/
const PROTOCOL_VERSION = '2025-06-18'

interface Stack {
  origin: string
  mcp: FakeMcp
  github: FakeGithub
  /** A gateway access token for a fresh grant. */
  token: string
  /** The gateway's log lines, info and up. */
  logs: LogLine[]
}

async function startStack (t: Teardown, mode: 'stateful' | 'stateless'): Promise<Stack> {
  const github = await startFakeGithub()
  t.teardown(() => github.close())
  const mcp = await startFakeMcp({ mode, isValidToken: (token) => github.isValidAccessToken(token) })
  t.teardown(() => mcp.close())

  const logs: LogLine[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as LogLine)
      done()
    }
  })
  const { app, origin } = await startLiveGateway(t, github, { upstreamRs: mcp.url }, { level: 'info', stream })

  const client = await registerClient(app)
  const flow = await authorizeFully(app, client, { resource: `${origin}/mcp` })
  const res = await exchangeCode(app, client, flow.code, flow.verifier)
  if (res.statusCode !== 200) throw new Error(`token: ${res.statusCode} ${res.body}`)
  return { origin, mcp, github, token: (res.json() as { access_token: string }).access_token, logs }
}

async function connect (
  t: Teardown,
  stack: Stack
): Promise<{ client: Client, transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(`${stack.origin}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${stack.token}` } }
  })
  const client = new Client({ name: 'proxy-stream-test', version: '1.0.0' })
  await client.connect(transport)
  t.teardown(() => client.close())
  return { client, transport }
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

async function waitFor<T> (what: string, probe: () => T | undefined, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = probe()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

const textOf = (result: unknown): string => ((result as { content: Array<{ text: string }> }).content[0]?.text ?? '')

function rawHeaders (stack: Stack, extra: Record<string, string> = {}): Record<string, string> {
  return { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': PROTOCOL_VERSION, ...extra }
}

/** A session opened by hand (initialize + initialized), for raw requests next to the SDK client's. */
async function rawSession (stack: Stack): Promise<string> {
  const init = await request(`${stack.origin}/mcp`, {
    method: 'POST',
    headers: rawHeaders(stack),
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })
  })
  await init.body.text()
  const sessionId = init.headers['mcp-session-id']
  if (init.statusCode !== 200 || typeof sessionId !== 'string') throw new Error(`initialize: ${init.statusCode}`)
  const initialized = await request(`${stack.origin}/mcp`, { method: 'POST', headers: rawHeaders(stack, { 'mcp-session-id': sessionId }), body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' })
  await initialized.body.dump()
  return sessionId
}

for (const mode of ['stateful', 'stateless'] as const) {
  t.test(`MCP SDK client through the gateway, ${mode} upstream`, async (t) => {
    const stack = await startStack(t, mode)
    const { mcp } = stack
    const { client, transport } = await connect(t, stack)

    await t.test('initialize, tools/list, tools/call echo', async (t) => {
      t.equal(client.getServerVersion()?.name, 'fake-mcp', 'initialize went through')
      if (mode === 'stateful') t.match(transport.sessionId, /^[0-9a-f-]{36}$/, '§1.8 item 48: the upstream session id reached the client')
      else t.equal(transport.sessionId, undefined, 'a stateless upstream issues no session id')
      const { tools } = await client.listTools()
      t.same(tools.map((tool) => tool.name).sort(), ['big', 'echo', 'needs-scope', 'size', 'slow'])
      t.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'héllo ✓' } })), 'héllo ✓')
    })

    await t.test('§4.3 item 18: progress notifications arrive one by one while the call runs (no buffering)', async (t) => {
      const count = 5
      const intervalMs = 150
      const arrivals: number[] = []
      const started = Date.now()
      const result = await client.callTool({ name: 'slow', arguments: { count, intervalMs } }, undefined, {
        onprogress: () => { arrivals.push(Date.now() - started) },
        timeout: 10_000
      })
      const finished = Date.now() - started
      t.equal(textOf(result), `done after ${count}`)
      t.equal(arrivals.length, count, 'every notification arrived')
      const spread = (arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0)
      t.ok(spread >= (count - 1) * intervalMs * 0.6, `spread ${spread} ms over ${count} events, sent ${intervalMs} ms apart (${arrivals.join(', ')})`)
      t.ok(finished - (arrivals[0] ?? finished) >= (count - 1) * intervalMs * 0.6, `the first event came ${finished - (arrivals[0] ?? 0)} ms before the result, not with it`)
      for (let i = 1; i < arrivals.length; i++) {
        t.ok((arrivals[i] ?? 0) - (arrivals[i - 1] ?? 0) >= intervalMs * 0.4, `gap ${i}: ${(arrivals[i] ?? 0) - (arrivals[i - 1] ?? 0)} ms`)
      }
      const closed = await waitFor('the stream\'s closing log line', () => stack.logs.find((l) => l.msg === 'mcp stream closed' && l.closedBy === 'upstream' && Number(l.durationMs) >= (count - 1) * intervalMs * 0.6))
      t.ok(Number(closed.bytes) > 0, `issue 22 finding 5: the end of the stream is logged, with its duration (${String(closed.durationMs)} ms) and size`)
      t.match(closed.grantId, /^gwg_/, 'and its grant')
    })

    await t.test('a ~10 MB response arrives intact', async (t) => {
      const expected = bigText()
      const text = textOf(await client.callTool({ name: 'big', arguments: {} }, undefined, { timeout: 15_000 }))
      t.equal(text.length, expected.length, `${text.length} characters`)
      t.equal(sha256(text), sha256(expected), 'byte-identical')
    })

    await t.test('a 4 MB request arrives intact', async (t) => {
      const data = randomBytes(3 * 1024 * 1024).toString('base64')
      t.equal(data.length, 4 * 1024 * 1024)
      const text = textOf(await client.callTool({ name: 'size', arguments: { data } }, undefined, { timeout: 15_000 }))
      t.same(JSON.parse(text), { bytes: data.length, sha256: sha256(data) })
      const seen = mcp.requests.find((r) => r.rpcMethods.includes('tools/call') && r.body.length > data.length)
      t.ok(seen, 'the upstream got the whole body')
    })

    if (mode === 'stateful') {
      await t.test('the GET stream carries a server notification', async (t) => {
        const sessionId = transport.sessionId as string
        const received: unknown[] = []
        client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => {
          received.push(notification.params.data)
        })
        const get = await waitFor('the SDK client\'s GET stream', () => mcp.requests.find((r) => r.method === 'GET' && r.headers['mcp-session-id'] === sessionId && r.status === 200))
        t.match(get.headers.accept, 'text/event-stream')
        t.equal(get.closedAt, undefined, 'the stream is open')
        await mcp.sendServerNotification(sessionId, 'pushed by the server')
        await waitFor('the notification', () => received.length > 0 || undefined)
        t.same(received, ['pushed by the server'])
      })
    }

    await t.test('pitfall 7: a client abort reaches the upstream within 1 s', async (t) => {
      const sessionId = mode === 'stateful' ? await rawSession(stack) : undefined
      const aborter = new AbortController()
      const body = JSON.stringify({ jsonrpc: '2.0', id: 77, method: 'tools/call', params: { name: 'slow', arguments: { count: 40, intervalMs: 100 }, _meta: { progressToken: 'p77' } } })
      const pending = request(`${stack.origin}/mcp`, {
        method: 'POST',
        headers: rawHeaders(stack, sessionId === undefined ? {} : { 'mcp-session-id': sessionId }),
        body,
        signal: aborter.signal
      })
      pending.catch(() => {})
      const res = await pending
      t.equal(res.statusCode, 200)
      t.match(res.headers['content-type'], /^text\/event-stream/)
      const upstream = await waitFor('the slow call upstream', () => mcp.requests.find((r) => r.body.toString() === body))
      // Wait for a first event, so the stream is flowing when the client leaves.
      await new Promise<void>((resolve) => res.body.once('data', () => { resolve() }))
      const abortedAt = Date.now()
      aborter.abort()
      res.body.on('error', () => {})
      await waitFor('the upstream request to close', () => upstream.closedAt, 2000).catch(() => undefined)
      t.ok(upstream.closedAt !== undefined, 'the upstream saw the request end')
      t.ok((upstream.closedAt ?? Infinity) - abortedAt < 1000, `within ${(upstream.closedAt ?? Infinity) - abortedAt} ms of the abort`)
      t.equal(upstream.abortedByPeer, true, 'cut before its response was complete')
    })

    await t.test('pitfall 7: a client that leaves before the upstream\'s headers cancels the upstream request too', async (t) => {
      const sessionId = mode === 'stateful' ? await rawSession(stack) : undefined
      mcp.delayMs = 3000
      t.teardown(() => { mcp.delayMs = 0 })
      const aborter = new AbortController()
      const body = JSON.stringify({ jsonrpc: '2.0', id: 78, method: 'tools/call', params: { name: 'echo', arguments: { text: 'never answered' } } })
      const pending = request(`${stack.origin}/mcp`, {
        method: 'POST',
        headers: rawHeaders(stack, sessionId === undefined ? {} : { 'mcp-session-id': sessionId }),
        body,
        signal: aborter.signal
      })
      pending.catch(() => {})
      const upstream = await waitFor('the call upstream', () => mcp.requests.find((r) => r.body.toString() === body))
      await sleep(100)
      const abortedAt = Date.now()
      aborter.abort()
      await waitFor('the upstream request to close', () => upstream.closedAt, 2000).catch(() => undefined)
      t.ok((upstream.closedAt ?? Infinity) - abortedAt < 1000, `upstream connection closed ${(upstream.closedAt ?? Infinity) - abortedAt} ms after the abort`)
      t.equal(upstream.abortedByPeer, true)
      t.equal(upstream.status, undefined, 'the upstream never got to answer')
      await waitFor('the line for the client that left', () => stack.logs.some((l) => l.msg === 'request aborted'), 2000)
      const left = stack.logs.find((l) => l.msg === 'request aborted')
      t.equal(left?.url, '/mcp', 'no access line comes for an unfinished answer: one line says the client left')
      t.type(left?.grantId, 'string', 'with its grant')
    })

    if (mode === 'stateful') {
      await t.test('pitfalls 1–2: an idle GET stream gets its headers at once and stays open while the upstream is silent', async (t) => {
        const sessionId = await rawSession(stack)
        const started = Date.now()
        const aborter = new AbortController()
        const res = await request(`${stack.origin}/mcp`, {
          method: 'GET',
          headers: { authorization: `Bearer ${stack.token}`, accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': PROTOCOL_VERSION },
          signal: aborter.signal
        })
        const headersAfter = Date.now() - started
        t.equal(res.statusCode, 200)
        t.ok(headersAfter < 500, `headers after ${headersAfter} ms, though the upstream has written no event`)
        t.match(res.headers['content-type'], /^text\/event-stream/)
        t.equal(res.headers['x-accel-buffering'], 'no')
        t.match(res.headers['cache-control'], /no-cache/)
        t.equal(res.headers['mcp-session-id'], sessionId)

        const upstream = mcp.requests.find((r) => r.method === 'GET' && r.headers['mcp-session-id'] === sessionId) as FakeMcpRequest
        t.ok(upstream, 'the upstream holds the stream')
        const chunks: string[] = []
        let ended = false
        res.body.on('data', (chunk: Buffer) => { chunks.push(chunk.toString()) })
        res.body.on('end', () => { ended = true })
        res.body.on('error', () => { ended = true })
        await sleep(1500)
        t.equal(ended, false, 'still open after 1.5 s of silence')
        t.same(chunks, [], 'and nothing was invented on the way')
        t.equal(upstream.closedAt, undefined, 'the upstream stream is still open too')

        await mcp.sendServerNotification(sessionId, 'after the silence')
        await waitFor('the event on the idle stream', () => chunks.join('').includes('after the silence') || undefined)
        t.match(chunks.join(''), /data: .*"notifications\/message"/, 'a later event still arrives')
        aborter.abort()
        await waitFor('the upstream GET to close', () => upstream.closedAt, 2000).catch(() => undefined)
        t.ok(upstream.closedAt !== undefined, 'leaving the GET stream closes the upstream one')
        const closed = await waitFor('the GET stream\'s closing log line', () => stack.logs.find((l) => l.msg === 'mcp stream closed' && l.closedBy === 'client' && Number(l.durationMs) >= 1500))
        t.ok(Number(closed.bytes) > 0, `issue 22 finding 5: a GET stream the client closes logs its end (${String(closed.durationMs)} ms, ${String(closed.bytes)} bytes)`)
      })

      await t.test('§1.8 item 48: DELETE ends the session; the old id then gets 404 from the upstream', async (t) => {
        const sessionId = transport.sessionId as string
        t.equal(mcp.sessionCount >= 1, true)
        const sessionsBefore = mcp.sessionCount
        await transport.terminateSession()
        const deleted = mcp.requests.find((r) => r.method === 'DELETE' && r.headers['mcp-session-id'] === sessionId)
        t.equal(deleted?.status, 200, 'the DELETE reached the upstream and succeeded')
        t.equal(mcp.sessionCount, sessionsBefore - 1, 'the upstream session is gone')

        const res = await request(`${stack.origin}/mcp`, {
          method: 'POST',
          headers: rawHeaders(stack, { 'mcp-session-id': sessionId }),
          body: '{"jsonrpc":"2.0","id":5,"method":"tools/list"}'
        })
        const text = await res.body.text()
        t.equal(res.statusCode, 404, text)
        t.equal(mcp.requests.at(-1)?.headers['mcp-session-id'], sessionId, 'the 404 is the upstream\'s')
        t.equal(mcp.requests.at(-1)?.status, 404)
      })
    }

    await t.test('§1.1 items 12–13: the upstream only ever saw upstream tokens', async (t) => {
      t.ok(mcp.requests.length > 5)
      for (const r of mcp.requests) {
        t.match(r.headers.authorization, UPSTREAM_TOKEN, `${r.method} ${r.path} ${r.rpcMethods.join(',')}`)
        t.notMatch(String(r.headers.authorization), stack.token)
      }
    })
  })
}

/** One HTTP/1.1 request written by hand, so the request target reaches the gateway unnormalised. */
async function rawRequest (
  origin: string,
  target: string,
  headers: Record<string, string>,
  body: string
): Promise<string> {
  const { port } = new URL(origin)
  return await new Promise<string>((resolve, reject) => {
    const socket = netConnect(Number(port), '127.0.0.1', () => {
      const lines = Object.entries({ host: new URL(origin).host, ...headers, 'content-length': String(Buffer.byteLength(body)), connection: 'close' }).map(([name, value]) => `${name}: ${value}`)
      socket.write(`POST ${target} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n${body}`)
    })
    let reply = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { reply += chunk })
    socket.on('error', reject)
    socket.on('close', () => { resolve(reply.split('\r\n', 1)[0] ?? '') })
  })
}

t.test('§1.8 item 51, §4.3 item 13: a request target with dot segments cannot leave the upstream\'s /mcp', async (t) => {
  const stack = await startStack(t, 'stateless')
  const { mcp } = stack
  const body = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
  for (const target of ['/mcp/../../admin', '/mcp/x/../../admin', '/mcp/%2e%2e/%2e%2e/admin', '/mcp/%2E%2E/admin?x=1', '/mcp/..%2F..%2Fadmin', '/mcp/x%5c..%5cadmin']) {
    const before = mcp.requests.length
    const status = await rawRequest(stack.origin, target, rawHeaders(stack), body)
    const reached = mcp.requests.slice(before)
    t.comment(`${target} → ${status}; upstream request line ${reached.map((r) => r.rawUrl).join(', ') || '(none)'}`)
    t.ok(status.startsWith('HTTP/1.1 '), `${target}: answered (${status})`)
    t.same(reached.filter((r) => !(r.path === '/mcp' || r.path.startsWith('/mcp/'))).map((r) => r.rawUrl), [],
      `${target}: nothing reaches a path outside /mcp upstream with the user's upstream token`)
    t.equal(status, 'HTTP/1.1 400 Bad Request', `${target}: refused`)
  }
})
