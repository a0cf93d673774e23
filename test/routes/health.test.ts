import t from 'tap'
import { buildGateway } from '../helpers/gateway.js'

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
