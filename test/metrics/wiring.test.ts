import t from 'tap'
import { buildGateway } from '../helpers/gateway.js'

t.test('the gateway serves /metrics by default, at --metrics-path when moved, and not at all when off', async (t) => {
  const standard = await buildGateway(t)
  const res = await standard.app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.match(res.body, /http_requests_total/)

  const moved = await buildGateway(t, { metricsPath: '/internal/metrics' })
  t.equal((await moved.app.inject('/internal/metrics')).statusCode, 200)
  t.equal((await moved.app.inject('/metrics')).statusCode, 404)

  const off = await buildGateway(t, { metricsPath: false })
  t.equal((await off.app.inject('/metrics')).statusCode, 404)
})
