import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { request, type Dispatcher } from 'undici'
import type { GatewayPluginOptions } from '../../app.js'
import { startFakeGithub } from '../helpers/fake-github.js'
import { authorizeFully, exchangeCode, registerClient, startLiveGateway } from '../helpers/gateway.js'
import { waitFor } from '../helpers/process.js'
import type { Teardown } from '../helpers/teardown.js'

/*
 * The caps on proxied exchanges open at once (issue 15, finding 4), on real sockets: per grant (429) and in
 * total (503), and the slot an exchange holds coming back however it ends: the client leaves, the upstream
 * ends or cuts it, the upstream fails. "Back" is shown by behaviour: with a cap of one, the next request
 * gets through.
 */

interface Held { req: IncomingMessage, res: ServerResponse }

interface LimitsStack {
  origin: string
  /** A fresh grant's gateway access token. */
  token: () => Promise<string>
  /** Requests the upstream holds open (an event stream, headers sent), in arrival order, until they close. */
  held: Held[]
  /** Requests the upstream has received so far. */
  received: () => number
  /** What the upstream does with the next requests: hold an event stream open, or never answer. */
  mode: { next: 'stream' | 'silent' }
}

/** The gateway on 127.0.0.1 in front of an upstream that holds every request open. */
async function limitsStack (t: Teardown, overrides: Partial<GatewayPluginOptions>): Promise<LimitsStack> {
  const held: Held[] = []
  const mode: LimitsStack['mode'] = { next: 'stream' }
  let received = 0
  const upstream = createServer((req, res) => {
    received++
    req.resume()
    const entry = { req, res }
    held.push(entry)
    res.on('close', () => { held.splice(held.indexOf(entry), 1) })
    if (mode.next === 'silent') return
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.flushHeaders()
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  const github = await startFakeGithub()
  t.teardown(() => github.close())

  t.teardown(async () => {
    upstream.closeAllConnections()
    await new Promise<void>((resolve) => upstream.close(() => resolve()))
  })
  const upstreamRs = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`
  const { app, origin } = await startLiveGateway(t, github, { upstreamRs, ...overrides })
  const client = await registerClient(app)
  const token = async (): Promise<string> => {
    const flow = await authorizeFully(app, client, { resource: `${origin}/mcp` })
    return ((await exchangeCode(app, client, flow.code, flow.verifier)).json() as { access_token: string }).access_token
  }
  return { origin, token, held, received: () => received, mode }
}

interface OpenStream { res: Dispatcher.ResponseData, leave: () => void }

/** GET /mcp as an MCP client opens its event stream; resolves once the response headers are in. */
async function openStream (stack: LimitsStack, token: string): Promise<OpenStream> {
  const aborter = new AbortController()
  const res = await request(`${stack.origin}/mcp`, { method: 'GET', headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: aborter.signal })
  res.body.on('error', () => {})
  if (res.statusCode !== 200) await res.body.dump()
  return { res, leave: () => { aborter.abort() } }
}

t.test('issue 15 finding 4: the per-grant cap answers 429; other grants are unaffected; a closed stream frees its slot', async (t) => {
  const stack = await limitsStack(t, { maxStreamsPerGrant: 2, maxStreams: 10 })
  const alice = await stack.token()
  const bob = await stack.token()
  const first = await openStream(stack, alice)
  const second = await openStream(stack, alice)
  t.same([first.res.statusCode, second.res.statusCode], [200, 200], 'two streams of one grant')

  const aborter = new AbortController()
  const third = await request(`${stack.origin}/mcp`, { method: 'GET', headers: { authorization: `Bearer ${alice}`, accept: 'text/event-stream' }, signal: aborter.signal })
  t.equal(third.statusCode, 429, 'a third of the same grant is refused')
  t.equal(third.headers['retry-after'], '5', 'with Retry-After')
  t.same(await third.body.json(), { error: 'too_many_requests', error_description: 'too many requests and streams open for this authorization' })
  t.equal(stack.received(), 2, 'the refused one never reached the upstream')
  const post = await request(`${stack.origin}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' })
  await post.body.dump()
  t.equal(post.statusCode, 429, 'a POST of that grant too: the cap counts requests in flight and streams alike')

  const other = await openStream(stack, bob)
  t.equal(other.res.statusCode, 200, 'another grant opens its stream')

  first.leave()
  await waitFor('the upstream side of the stream the client left to close', async () => stack.held.length === 2)
  const again = await openStream(stack, alice)
  t.equal(again.res.statusCode, 200, 'the slot of the stream the client left is free again')
  for (const s of [second, other, again]) s.leave()
})

t.test('issue 15 finding 4: the total cap answers 503 with Retry-After; the slot comes back when the upstream ends or cuts a stream', async (t) => {
  const stack = await limitsStack(t, { maxStreams: 2 })
  const tokens = [await stack.token(), await stack.token(), await stack.token()]
  const a = await openStream(stack, tokens[0] as string)
  const b = await openStream(stack, tokens[1] as string)
  t.same([a.res.statusCode, b.res.statusCode], [200, 200])
  const c = await openStream(stack, tokens[2] as string)
  t.equal(c.res.statusCode, 503, 'a third stream, of a third grant, is refused: the gateway is full')
  t.equal(c.res.headers['retry-after'], '5')
  t.equal(stack.received(), 2)

  // The upstream ends a stream normally: the client's ends too, and its slot is free.
  const ended = once(a.res.body, 'end')
  a.res.body.resume()
  stack.held[0]?.res.end()
  await ended
  const d = await openStream(stack, tokens[2] as string)
  t.equal(d.res.statusCode, 200, 'after an upstream end, a new stream is accepted')

  // The upstream cuts a stream: the client's is cut, and its slot is free.
  const cut = new Promise((resolve) => b.res.body.once('close', resolve))
  b.res.body.resume()
  stack.held[0]?.res.destroy()
  await cut
  const e = await openStream(stack, tokens[0] as string)
  t.equal(e.res.statusCode, 200, 'after an upstream cut, a new stream is accepted')
  const f = await openStream(stack, tokens[1] as string)
  t.equal(f.res.statusCode, 503, 'and the cap still holds')
  for (const s of [d, e]) s.leave()
})

t.test('issue 15 finding 4: a request in flight holds its slot until it is answered, the upstream fails, or the client leaves', async (t) => {
  const stack = await limitsStack(t, { maxStreams: 1, proxyTimeout: 60_000 })
  const token = await stack.token()
  const call = (signal?: AbortSignal): Promise<Dispatcher.ResponseData> => request(`${stack.origin}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
    ...(signal === undefined ? {} : { signal })
  })

  stack.mode.next = 'silent'
  const pending = call()
  await waitFor('the call at the upstream', async () => stack.held.length === 1)
  const blocked = await call()
  await blocked.body.dump()
  t.equal(blocked.statusCode, 503, 'while one call waits for its answer, the gateway is full')
  // The upstream fails before answering: 502, and the slot is back.
  stack.held[0]?.res.destroy()
  const failed = await pending
  await failed.body.dump()
  t.equal(failed.statusCode, 502)

  const aborter = new AbortController()
  const leaving = call(aborter.signal)
  leaving.catch(() => {})
  await waitFor('the second call at the upstream', async () => stack.held.length === 1)
  aborter.abort()
  await waitFor('the upstream side of the call the client left to close', async () => stack.held.length === 0)

  stack.mode.next = 'stream'
  const answered = await call()
  t.equal(answered.statusCode, 200, 'after a client left before its answer, a call gets through')
  answered.body.on('error', () => {})
  const end = once(answered.body, 'end')
  answered.body.resume()
  stack.held[0]?.res.end('data: {"jsonrpc":"2.0","id":1,"result":{}}\n\n')
  await end
  const next = await call()
  t.equal(next.statusCode, 200, 'and after one answered in full, the next one')
  next.body.on('error', () => {})
  stack.held[0]?.res.end()
  await next.body.dump()
})
