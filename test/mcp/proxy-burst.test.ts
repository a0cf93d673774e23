import { once } from 'node:events'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { QUIET_PERIOD_MS } from '../../routes/mcp/upstream-pool.js'
import { authorizeFully, exchangeCode, registerClient } from '../helpers/gateway.js'
import { buildWithMetrics } from '../helpers/metrics.js'
import { waitFor } from '../helpers/process.js'

/*
 * The proxy's upstream connections after a burst, end to end (routes/mcp/upstream-pool.ts; its own tests are
 * upstream-pool.test.ts): the pool that held the burst is let go, and nothing the clients see changes.
 */

t.test('64 calls at once, then a quiet period: a fresh upstream pool takes over (logged with the peak), and calls get through as before', async (t) => {
  // Calls are held open until all 64 are in; each is answered with an event stream.
  const held: ServerResponse[] = []
  let hold = true
  const server = createServer((req, res) => {
    req.resume()
    if (!hold) {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":2,"result":{}}')
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.flushHeaders()
    held.push(res)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const lines: Array<{ msg: string, peak?: number }> = []
  const { app, clock } = await buildWithMetrics(t, {
    // One grant makes all 64 calls: above the default per-grant cap.
    gateway: { upstreamRs: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, maxStreamsPerGrant: 64 },
    server: { logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line) as { msg: string }) } } } }
  })
  const client = await registerClient(app)
  const flow = await authorizeFully(app, client)
  const token = (await exchangeCode(app, client, flow.code, flow.verifier)).json().access_token as string
  const call = async (): Promise<{ statusCode: number, body: string }> => await app.inject({
    method: 'POST',
    url: '/mcp',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    payload: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow"}}'
  })

  const calls = Array.from({ length: 64 }, call)
  await waitFor('64 calls held at the upstream', async () => held.length === 64)
  t.equal(held.length, 64, '64 upstream connections open at once')
  for (const res of held.splice(0)) res.end('data: {"jsonrpc":"2.0","id":1,"result":{}}\n\n')
  const answers = await Promise.all(calls)
  t.ok(answers.every((a) => a.statusCode === 200 && a.body.includes('"result"')), 'every call of the burst answered')

  hold = false
  const replaced = (): unknown => lines.find((l) => l.msg === 'upstream connection pool replaced after a burst')
  for (let period = 0; period < 2; period++) {
    t.equal(replaced(), undefined, 'not during the period of the burst, nor before a whole quiet one')
    clock.advance(QUIET_PERIOD_MS)
    const after = await call()
    t.equal(after.statusCode, 200)
    t.equal(after.body, '{"jsonrpc":"2.0","id":2,"result":{}}')
  }
  t.match(replaced(), { peak: 64 }, 'replaced once a whole period went by at a quarter of the burst or less, with the peak logged')
})
