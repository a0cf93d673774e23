import Fastify from 'fastify'
import t from 'tap'
import { standaloneGateway } from '../../app.js'
import { parseGatewayOptions } from '../../lib/config.js'
import type { GatewayMetrics } from '../../plugins/metrics.js'
import { startFakeGithub } from '../helpers/fake-github.js'
import { buildGateway, SECRET } from '../helpers/gateway.js'
import { sample } from '../helpers/metrics.js'

t.test('issue 15 finding 12: the gateway\'s own routes have no /metrics unless metricsPath asks for them', async (t) => {
  const standard = await buildGateway(t)
  t.equal((await standard.app.inject('/metrics')).statusCode, 404, 'off by default: the gateway\'s URL is public')

  const asked = await buildGateway(t, { metricsPath: '/metrics' })
  const res = await asked.app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.match(res.body, /http_requests_total/)

  const moved = await buildGateway(t, { metricsPath: '/internal/metrics' })
  t.equal((await moved.app.inject('/internal/metrics')).statusCode, 200)
  t.equal((await moved.app.inject('/metrics')).statusCode, 404)

  const off = await buildGateway(t, { metricsPath: false })
  t.equal((await off.app.inject('/metrics')).statusCode, 404)
})

t.test('issue 15 finding 12: standaloneGateway hands the server its metrics through onMetrics, counted with no route on the gateway', async (t) => {
  const github = await startFakeGithub()
  t.teardown(() => github.close())
  const { options } = parseGatewayOptions({
    publicUrl: 'http://127.0.0.1:8002',
    upstreamRs: github.resourceUrl,
    upstreamClientId: github.clientId,
    upstreamClientSecret: github.clientSecret,
    upstreamAuthorizeEndpoint: github.authorizeEndpoint,
    upstreamTokenEndpoint: github.tokenEndpoint,
    upstreamScopes: ['repo'],
    secret: SECRET
  })
  t.equal(options.metricsPath, false, 'no metrics route asked for')
  const app = Fastify({ logger: false })
  t.teardown(async () => { await app.close() })
  let metrics: GatewayMetrics | undefined
  await app.register(standaloneGateway, { options, onMetrics: (m) => { metrics = m } })
  await app.ready()
  if (metrics === undefined) throw new Error('onMetrics was not called')

  t.equal((await app.inject('/healthz')).statusCode, 200)
  t.equal((await app.inject('/healthz')).statusCode, 200)
  t.equal((await app.inject('/metrics')).statusCode, 404, 'nothing at /metrics on the gateway\'s own port')
  t.match(metrics.contentType, /^text\/plain; version=0\.0\.4/)
  const text = await metrics.scrape()
  t.equal(sample(text, 'http_requests_total', { route: '/healthz', method: 'GET', status: '200' }), 2, 'requests are counted')
  t.equal(sample(text, 'mcp_open_streams'), 0, 'with the gateway\'s own metrics')
  t.match(text, /# TYPE mcp_proxy_duration_seconds histogram/, 'the latency histogram included')
  t.notOk(app.hasDecorator('mcpGateway'), 'and the host gets no decorator')
})
