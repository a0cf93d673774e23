import { once } from 'node:events'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startFakeGithub } from '../helpers/fake-github.js'
import { startFakeMcp } from '../helpers/fake-mcp.js'
import { SECRET } from '../helpers/gateway.js'
import { sample } from '../helpers/metrics.js'
import { GatewayProcess, freePort, gatewayFlags } from '../helpers/process.js'

/*
 * Issue 15 finding 12: Prometheus metrics on a listener of their own (--metrics-port, --metrics-host), not on
 * the gateway's public URL unless --metrics-path asks for it, and that listener closes with the gateway.
 * Real server.ts processes: the listener is the standalone server's.
 */

const github = await startFakeGithub()
t.teardown(() => github.close())
const mcp = await startFakeMcp({ isValidToken: (token) => github.isValidAccessToken(token) })
t.teardown(() => mcp.close())
t.setTimeout(120_000)

async function startGateway (t: Test, extra: string[]): Promise<GatewayProcess> {
  const port = await freePort()
  const flags = gatewayFlags({ port, publicUrl: `http://127.0.0.1:${port}`, store: 'memory', storePrefix: 'mcp-gateway:', secret: SECRET, github, upstreamRs: mcp.url, extra: ['--log-level', 'info', ...extra] })
  const gw = await GatewayProcess.start(t, port, flags, {}, 30_000)
  t.teardown(() => { if (t.passing() === false) t.comment(gw.output) })
  return gw
}

async function get (url: string): Promise<{ status: number, type: string, body: string }> {
  const res = await request(url, { headersTimeout: 5000, bodyTimeout: 5000, reset: true })
  return { status: res.statusCode, type: String(res.headers['content-type']), body: await res.body.text() }
}

async function refused (url: string): Promise<boolean> {
  return await get(url).then(() => false, (err: { code?: string }) => err.code === 'ECONNREFUSED')
}

t.test('issue 15 finding 12: --metrics-port serves /metrics on its own listener, the public port does not, and SIGTERM closes both', async (t) => {
  const metricsPort = await freePort()
  const gw = await startGateway(t, ['--metrics-port', String(metricsPort), '--metrics-host', '127.0.0.1'])
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`

  t.equal((await get(`${gw.origin}/healthz`)).status, 200)
  t.equal((await get(`${gw.origin}/metrics`)).status, 404, 'nothing at /metrics on the gateway\'s public port')
  const scrape = await get(metricsUrl)
  t.equal(scrape.status, 200, 'the metrics listener answers')
  t.match(scrape.type, /^text\/plain; version=0\.0\.4/)
  t.ok((sample(scrape.body, 'http_requests_total', { route: '/healthz', method: 'GET', status: '200' }) ?? 0) >= 1, 'the gateway\'s requests are counted')
  t.equal(sample(scrape.body, 'http_requests_total', { route: '/metrics', method: 'GET', status: '200' }), undefined, 'scrapes are not gateway requests')
  t.equal((await get(`http://127.0.0.1:${metricsPort}/`)).status, 404, 'and nothing else there')
  t.match(gw.output, new RegExp(`"listener":"metrics".*listening.*127\\.0\\.0\\.1:${metricsPort}`), 'its address is logged')

  gw.child.kill('SIGTERM')
  const [code] = await once(gw.child, 'exit') as [number | null]
  t.equal(code, 0, 'a clean exit')
  t.ok(await refused(metricsUrl), 'the metrics listener is closed')
  t.match(gw.output, /"forced":false,"msg":"shut down"/, 'nothing had to be forced')
})

t.test('issue 15 finding 12: --metrics-path puts them on the public port as well; with neither, no listener and no route', async (t) => {
  const both = await startGateway(t, ['--metrics-path', '/internal/metrics'])
  const scrape = await get(`${both.origin}/internal/metrics`)
  t.equal(scrape.status, 200)
  t.match(scrape.body, /http_requests_total/)

  const neither = await startGateway(t, [])
  t.equal((await get(`${neither.origin}/metrics`)).status, 404)
  t.notMatch(neither.output, /"listener":"metrics"/, 'no metrics listener started')
})

t.test('issue 15 finding 12: a metrics port that is taken: a fatal log line and exit 1', async (t) => {
  const taken = await startGateway(t, [])
  const port = await freePort()
  const flags = gatewayFlags({ port, publicUrl: `http://127.0.0.1:${port}`, store: 'memory', storePrefix: 'mcp-gateway:', secret: SECRET, github, upstreamRs: mcp.url, extra: ['--metrics-port', String(taken.port)] })
  const err = await GatewayProcess.start(t, port, flags, {}, 30_000).then(() => undefined, (e: Error) => e)
  t.match(err?.message, /exited with 1/)
  t.match(err?.message, /could not start/)
  t.match(err?.message, /EADDRINUSE/)
})
