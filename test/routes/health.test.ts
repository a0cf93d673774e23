import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { createPkcePair } from '../../lib/pkce.js'
import { Browser, buildGateway, registerClient, startFlow } from '../helpers/gateway.js'

t.test('/healthz is alive; /readyz is ready when the store answers and the upstream is known', async (t) => {
  const { app } = await buildGateway(t)
  t.same((await app.inject('/healthz')).json(), { status: 'ok' })
  const ready = await app.inject('/readyz')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready', store: 'ok', upstream: 'ok' })
})

t.test('/readyz is not ready while the upstream metadata cannot be had, and answers within its bound', async (t) => {
  const { app } = await buildGateway(t, { upstreamRs: 'http://127.0.0.1:9/mcp', upstreamAuthorizeEndpoint: undefined, upstreamTokenEndpoint: undefined, upstreamTimeout: 5000 })
  const started = Date.now()
  const res = await app.inject('/readyz')
  t.equal(res.statusCode, 503)
  t.same(res.json(), { status: 'not ready', store: 'ok', upstream: 'unknown' })
  t.ok(Date.now() - started < 3000, 'bounded')
})

t.test('issue 15 finding 12: /readyz and a flood of sign-ins do not rerun a failed upstream discovery on every call', async (t) => {
  let requests = 0
  const down = createServer((_req, res) => {
    requests++
    res.writeHead(503).end()
  })
  await new Promise<void>((resolve) => down.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { down.close() })
  const upstreamRs = `http://127.0.0.1:${(down.address() as AddressInfo).port}/mcp`
  const { app, clock } = await buildGateway(t, {
    upstreamRs,
    upstreamAuthorizeEndpoint: undefined,
    upstreamTokenEndpoint: undefined
  })

  const first = await app.inject('/readyz')
  t.equal(first.statusCode, 503)
  t.same(first.json(), { status: 'not ready', store: 'ok', upstream: 'unknown' })
  const attempt = requests
  t.ok(attempt >= 3, `one discovery attempt: ${attempt} requests`)

  // Sign-ins under way: signing in is where the gateway needs the upstream.
  const client = await registerClient(app)
  const browser = new Browser()
  const flows = []
  for (let i = 0; i < 5; i++) {
    flows.push(await startFlow(app, browser, client, { challenge: createPkcePair().challenge }))
  }
  const [ready, logins] = await Promise.all([
    Promise.all(Array.from({ length: 10 }, async () => await app.inject('/readyz'))),
    Promise.all(flows.map(async (flow) => await browser.post(app, '/login', { ...flow, username: 'gateway_user', password: 'gateway_pass' })))
  ])
  t.same(ready.map((res) => res.statusCode), Array(10).fill(503), '/readyz answers not ready from the remembered failure')
  t.same(logins.map((res) => res.statusCode), Array(5).fill(502), 'each sign-in says the upstream is unavailable')
  t.equal(requests, attempt, 'and none of them sent anything upstream')

  clock.advance(10_000)
  t.equal((await app.inject('/readyz')).statusCode, 503)
  t.equal(requests, attempt * 2, 'a new attempt once the failure is old enough')
})
