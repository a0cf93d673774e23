import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer, request, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { authorizeFully, buildGateway, exchangeCode, registerClient, type TestGateway } from '../helpers/gateway.js'
import type { Teardown } from '../helpers/teardown.js'

/*
 * Answers the proxy streams (over 64 KiB, or of unknown length), on real sockets: what only
 * sockets show is backpressure, and a client or an upstream leaving half-way. Event streams come through
 * their own path (written straight to the client); the backpressure test runs on both, the rest of their tests are
 * proxy-stream.test.ts and ops/shutdown.test.ts.
 */

const CHUNK = 64 * 1024

/** The upstream's side of one large answer: how far it got, and how it ended. */
interface Sent { written: number, finished: boolean, closedEarly: boolean, sha256: string }

/**
 * An upstream MCP server of large answers. `/mcp/big?chunks=N`: N chunks of 64 KiB with a Content-Length,
 * written as fast as the gateway takes them (each chunk a different byte, so a lost or swapped chunk shows);
 * with `&events=1`, the same bytes as an event stream (no Content-Length).
 * `/mcp/cut`: announces 1 MiB, sends 256 KiB and drops the connection.
 */
async function startUpstream (t: Teardown): Promise<{ url: string, sent: Sent[] }> {
  const sent: Sent[] = []
  const server = createServer((req, res) => {
    req.resume()
    const url = new URL(req.url ?? '/', 'http://upstream')
    if (url.pathname === '/mcp/cut') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(1024 * 1024) })
      res.write(Buffer.alloc(256 * 1024, 'c'))
      setTimeout(() => res.socket?.destroy(), 50)
      return
    }
    const chunks = Number(url.searchParams.get('chunks'))
    const state: Sent = { written: 0, finished: false, closedEarly: false, sha256: '' }
    sent.push(state)
    const hash = createHash('sha256')
    res.on('close', () => { state.closedEarly = !res.writableFinished })
    const events = url.searchParams.has('events')
    res.writeHead(200, events ? { 'content-type': 'text/event-stream' } : { 'content-type': 'application/json', 'content-length': String(chunks * CHUNK) })
    const more = (): void => {
      while (state.written < chunks) {
        const chunk = Buffer.alloc(CHUNK, state.written % 251)
        hash.update(chunk)
        state.written++
        if (!res.write(chunk)) { res.once('drain', more); return }
      }
      state.sha256 = hash.digest('hex')
      res.end(() => { state.finished = true })
    }
    more()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, sent }
}

/** The gateway on a real port in front of that upstream, and a gateway access token. */
async function startStack (t: Teardown): Promise<{ origin: string, token: string, sent: Sent[], app: TestGateway['app'] }> {
  const upstream = await startUpstream(t)
  const { app } = await buildGateway(t, { upstreamRs: upstream.url, allowedOrigins: ['https://inspector.example'] })
  const client = await registerClient(app)
  const flow = await authorizeFully(app, client)
  const token = (await exchangeCode(app, client, flow.code, flow.verifier)).json().access_token as string
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { origin: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, token, sent: upstream.sent, app }
}

async function post (origin: string, token: string, path: string): Promise<IncomingMessage> {
  const req = request(`${origin}${path}`, {
    method: 'POST',
    agent: false,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
  })
  req.end('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"big"}}')
  const [res] = await once(req, 'response') as [IncomingMessage]
  return res
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

for (const kind of ['answer', 'event stream'] as const) {
  t.test(`pitfall 10 (backpressure): a 64 MiB ${kind} waits for a client that does not read, then arrives byte for byte`, async (t) => {
    const { origin, token, sent } = await startStack(t)
    const chunks = 1024
    const res = await post(origin, token, `/mcp/big?chunks=${chunks}${kind === 'event stream' ? '&events=1' : ''}`)
    t.equal(res.statusCode, 200)
    if (kind === 'answer') t.equal(res.headers['content-length'], String(chunks * CHUNK), 'the upstream\'s Content-Length passes')
    else t.equal(res.headers['content-type'], 'text/event-stream')
    res.pause()
    await sleep(400)
    const upstream = sent.at(-1) as Sent
    const heldAt = upstream.written
    await sleep(300)
    t.ok(upstream.written < chunks, `the upstream is held back: ${upstream.written} of ${chunks} chunks written (socket buffers hold the rest)`)
    t.equal(upstream.written, heldAt, 'and stays held while the client does not read')

    const hash = createHash('sha256')
    let bytes = 0
    for await (const chunk of res) {
      hash.update(chunk as Buffer)
      bytes += (chunk as Buffer).length
    }
    t.equal(bytes, chunks * CHUNK, 'every byte arrives')
    t.equal(hash.digest('hex'), upstream.sha256, 'in order')
    t.equal(upstream.finished, true)
  })
}

t.test('pitfall 7: a client that leaves half-way through a large answer cancels the upstream\'s', async (t) => {
  const { origin, token, sent } = await startStack(t)
  const res = await post(origin, token, '/mcp/big?chunks=1024')
  await once(res, 'data')
  res.destroy()
  const leftAt = Date.now()
  const upstream = sent.at(-1) as Sent
  while (!upstream.closedEarly && Date.now() - leftAt < 2000) await sleep(10)
  t.equal(upstream.closedEarly, true, `the upstream saw its connection close ${Date.now() - leftAt} ms after the client left`)
  t.ok(Date.now() - leftAt < 1000, 'within 1 s')
  t.equal(upstream.finished, false)
})

t.test('an upstream that drops a large answer half-way cuts the client\'s connection: never a complete-looking answer', async (t) => {
  const { origin, token } = await startStack(t)
  const res = await post(origin, token, '/mcp/cut')
  t.equal(res.statusCode, 200, 'the status went out with the first bytes')
  let bytes = 0
  res.on('data', (chunk: Buffer) => { bytes += chunk.length })
  const [ended] = await Promise.race([
    once(res, 'end').then(() => ['end']),
    once(res, 'aborted').then(() => ['aborted']),
    once(res, 'error').then(() => ['error'])
  ])
  t.not(ended, 'end', `the client's answer was cut (${String(ended)}), not ended`)
  t.equal(bytes, 256 * 1024, 'after what the upstream had sent')
})

t.test('a streamed answer carries what the gateway\'s request hooks set: CORS for an allowed origin', async (t) => {
  const { app, token } = await startStack(t)
  const res = await app.inject({
    method: 'POST',
    url: '/mcp/big?chunks=3',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', origin: 'https://inspector.example' },
    payload: '{}'
  })
  t.equal(res.statusCode, 200)
  t.equal(res.rawPayload.length, 3 * CHUNK)
  t.equal(res.headers['access-control-allow-origin'], 'https://inspector.example')
  t.equal(res.headers['access-control-expose-headers'], 'Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate')
  t.equal(res.headers['content-type'], 'application/json')
  t.equal(res.headers['x-accel-buffering'], undefined, 'not an event stream: no event-stream headers')
})
