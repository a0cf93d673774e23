import cookie from '@fastify/cookie'
import cors from '@fastify/cors'
import Fastify, { type FastifyInstance } from 'fastify'
import { Writable } from 'node:stream'
import t from 'tap'
import gateway, { type GatewayPluginOptions } from '../../index.js'
import { ManualClock } from '../../lib/clock.js'
import { startFakeGithub } from '../helpers/fake-github.js'
import { gatewayOptions } from '../helpers/gateway.js'
import type { Teardown } from '../helpers/teardown.js'

/*
 * Nothing of the gateway leaks into the app that embeds it: no decorators, hooks, error or not-found
 * handlers, content-type parsers, CORS or routes outside its prefix (and the root discovery documents).
 * And the gateway logs through the host's logger.
 */

const ORIGIN = 'https://app.example'

interface Host {
  app: FastifyInstance
  /** Every line the host's logger wrote, parsed. */
  logs: Array<Record<string, unknown>>
}

/** A host app with routes of its own (one JSON body route, one that fails), then the gateway under /gw. */
async function host (t: Teardown, overrides: Partial<GatewayPluginOptions> = {}): Promise<Host> {
  const github = await startFakeGithub()
  t.teardown(() => github.close())
  const logs: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  const app = Fastify({ logger: { level: 'info', stream } })
  t.teardown(async () => { await app.close() })
  app.get('/hello', async () => ({ hello: 'world' }))
  app.post<{ Body: { n: number } }>('/double', { schema: { body: { type: 'object', required: ['n'], properties: { n: { type: 'number' } } } } }, async (req) => ({ n: req.body.n * 2 }))
  app.get('/boom', async () => { throw new Error('host failure') })
  // Paths next to the prefix, which a careless pattern (`/gw*`) would also catch.
  app.get('/gw-admin', async () => ({ admin: true }))
  await app.register(gateway, gatewayOptions(github, new ManualClock(Date.now()), { prefix: '/gw', ...overrides }))
  // Routes the host adds after the gateway are just as much its own.
  app.get('/after', async () => ({ after: true }))
  await app.ready()
  return { app, logs }
}

const accessControl = (headers: Record<string, unknown>): string[] => Object.keys(headers).filter((name) => name.startsWith('access-control-'))

t.test('no decorator of the gateway (or of the plugins it registers) on the host instance, request or reply', async (t) => {
  const { app } = await host(t)
  t.notOk(app.hasDecorator('mcpGateway'), 'the shared state stays in the gateway scope')
  t.notOk(app.hasDecorator('rateLimit'), '@fastify/rate-limit')
  t.notOk(app.hasDecorator('parseCookie'), '@fastify/cookie')
  t.notOk(app.hasRequestDecorator('mcpAuth'), 'the resource server\'s per-request auth')
  t.notOk(app.hasRequestDecorator('cookies'))
  t.notOk(app.hasReplyDecorator('setCookie'))
})

t.test('host routes: no gateway hooks (CORS, cache headers, bearer check, rate limits), host formats for 404 and 500', async (t) => {
  const { app } = await host(t)
  for (const url of ['/hello', '/after', '/gw-admin']) {
    const res = await app.inject({ method: 'GET', url, headers: { origin: ORIGIN } })
    t.equal(res.statusCode, 200, url)
    t.strictSame(accessControl(res.headers), [], `${url}: no access-control-*`)
    t.equal(res.headers['cache-control'], undefined, `${url}: no cache-control`)
    t.equal(res.headers['www-authenticate'], undefined, url)
    t.notOk(Object.keys(res.headers).some((name) => name.startsWith('x-ratelimit')), `${url}: no rate-limit headers`)
    const preflight = await app.inject({ method: 'OPTIONS', url, headers: { origin: ORIGIN, 'access-control-request-method': 'GET' } })
    t.equal(preflight.statusCode, 404, `${url}: the host has no CORS, so a preflight is the host's 404`)
    t.strictSame(accessControl(preflight.headers), [], `${url}: preflight without access-control-*`)
    t.equal(preflight.json().message, `Route OPTIONS:${url} not found`, `${url}: Fastify's default 404, not the gateway's`)
  }

  const boom = await app.inject({ method: 'GET', url: '/boom' })
  t.equal(boom.statusCode, 500)
  t.strictSame(boom.json(), { statusCode: 500, error: 'Internal Server Error', message: 'host failure' }, 'Fastify\'s default error format, not the gateway\'s server_error')
  const missing = await app.inject({ method: 'GET', url: '/nope' })
  t.strictSame(missing.json(), { message: 'Route GET:/nope not found', error: 'Not Found', statusCode: 404 })
  // Under the prefix too, an unknown path is the host's 404: the gateway sets no not-found handler.
  const missingUnder = await app.inject({ method: 'GET', url: '/gw/nope' })
  t.strictSame(missingUnder.json(), { message: 'Route GET:/gw/nope not found', error: 'Not Found', statusCode: 404 })
})

t.test('the host\'s content-type parsers are intact: JSON body routes work, no form parser was added', async (t) => {
  const { app } = await host(t)
  const json = await app.inject({ method: 'POST', url: '/double', payload: { n: 21 } })
  t.equal(json.statusCode, 200)
  t.strictSame(json.json(), { n: 42 })
  const invalid = await app.inject({ method: 'POST', url: '/double', payload: { n: 'x' } })
  t.equal(invalid.statusCode, 400)
  t.match(invalid.json(), { code: 'FST_ERR_VALIDATION', statusCode: 400 }, 'the host\'s validation error format')
  const form = await app.inject({ method: 'POST', url: '/double', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'n=1' })
  t.equal(form.statusCode, 415, '@fastify/formbody stays in the gateway\'s scopes')
  const text = await app.inject({ method: 'POST', url: '/double', headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from('x') })
  t.equal(text.statusCode, 415, 'the resource server\'s catch-all byte parser stays in its scope')
})

t.test('the gateway\'s own scopes keep their behaviour next to the host\'s', async (t) => {
  const { app } = await host(t)
  const register = await app.inject({ method: 'POST', url: '/gw/register', payload: { redirect_uris: 'not-a-list' } })
  t.equal(register.statusCode, 400)
  t.equal(register.json().error, 'invalid_client_metadata', 'RFC 7591 errors under /gw')
  const mcp = await app.inject({ method: 'POST', url: '/gw/mcp', payload: {} })
  t.equal(mcp.statusCode, 401)
  const preflight = await app.inject({ method: 'OPTIONS', url: '/gw/token', headers: { origin: ORIGIN, 'access-control-request-method': 'POST' } })
  t.equal(preflight.statusCode, 204)
  t.equal(preflight.headers['access-control-allow-origin'], '*')
})

t.test('the gateway logs through the host\'s logger, honouring the register call\'s logLevel', async (t) => {
  const { app, logs } = await host(t)
  const warning = logs.find((line) => String(line.msg).includes('published defaults'))
  t.ok(warning, 'the boot warning about default credentials is in the host\'s log')
  t.equal(warning?.level, 40)
  await app.inject({ method: 'GET', url: '/gw/authorize?client_id=unknown' })
  const line = logs.find((l) => l.msg === 'authorize: unknown client')
  t.ok(line, 'a request-scoped line of the gateway')
  t.type(line?.reqId, 'string', 'with the host\'s request id')
  t.ok(logs.some((l) => l.reqId === line?.reqId && (l.req as { url?: string } | undefined)?.url?.startsWith('/gw/authorize')), 'and Fastify\'s request line of the same request')

  const quiet = await host(t, { logLevel: 'error' })
  t.notOk(quiet.logs.some((l) => String(l.msg).includes('published defaults')), 'logLevel: error silences the gateway\'s warnings…')
  await quiet.app.inject({ method: 'GET', url: '/hello' })
  t.ok(quiet.logs.some((l) => (l.req as { url?: string } | undefined)?.url === '/hello'), '…and not the host\'s own request lines')
})

t.test('a host with @fastify/cookie at its root can register the gateway (it uses only the signer)', async (t) => {
  const github = await startFakeGithub()
  t.teardown(() => github.close())
  const app = Fastify({ logger: false })
  t.teardown(async () => { await app.close() })
  await app.register(cookie)
  app.get('/hello', async (req, reply) => reply.setCookie('host', 'a b;c', { path: '/', httpOnly: true }).send({ got: req.cookies['visit'] ?? null }))
  await t.resolves(async () => { await app.register(gateway, gatewayOptions(github, new ManualClock(Date.now()), { prefix: '/gw' })).ready() })
  // The host's cookies go through the `cookie` module pinned in package.json's overrides: inject's
  // `cookies` encodes with it (light-my-request), and the plugin parses and serializes with it.
  const res = await app.inject({ method: 'GET', url: '/hello', cookies: { visit: 'x y' } })
  t.same(res.json(), { got: 'x y' }, 'the host reads the cookie the request carried')
  t.equal(res.headers['set-cookie'], 'host=a%20b%3Bc; Path=/; HttpOnly; SameSite=Lax', 'and sets its own, encoded')
})

t.test('a host with @fastify/cors at its root can register the gateway (the gateway adds no decorator, no OPTIONS catch-all)', async (t) => {
  const github = await startFakeGithub()
  t.teardown(() => github.close())
  const app = Fastify({ logger: false })
  t.teardown(async () => { await app.close() })
  await app.register(cors, { origin: ORIGIN })
  app.get('/hello', async () => ({ hello: 'world' }))
  await app.register(gateway, gatewayOptions(github, new ManualClock(Date.now()), { prefix: '/gw' }))
  await app.ready()
  const hostPreflight = await app.inject({ method: 'OPTIONS', url: '/hello', headers: { origin: ORIGIN, 'access-control-request-method': 'GET' } })
  t.equal(hostPreflight.statusCode, 204, 'the host\'s own preflights stay the host\'s')
  t.equal(hostPreflight.headers['access-control-allow-origin'], ORIGIN)
  const metadata = await app.inject({ method: 'GET', url: '/.well-known/oauth-protected-resource/gw/mcp' })
  t.equal(metadata.statusCode, 200)
  t.equal(metadata.json().resource, 'http://localhost:8002/gw/mcp')
  const mcp = await app.inject({ method: 'POST', url: '/gw/mcp', payload: {} })
  t.equal(mcp.statusCode, 401, 'the resource server still asks for a token')
  t.match(mcp.headers['www-authenticate'], /resource_metadata=/)
})
