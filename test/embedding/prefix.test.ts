import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import gateway, { ConfigError, type GatewayPluginOptions } from '../../index.js'
import { ManualClock } from '../../lib/clock.js'
import { createPkcePair } from '../../lib/pkce.js'
import { startFakeGithub } from '../helpers/fake-github.js'
import { Browser, gatewayOptions, hiddenField, visitUpstream } from '../helpers/gateway.js'
import type { Teardown } from '../helpers/teardown.js'

/*
 * register(gateway, { prefix }) in a host app: the prefix is part of the issuer and of every URL, the
 * routes sit under it, and the RFC 8414 / RFC 9728 documents are at the host's root where clients
 * look for a path issuer (or only under the prefix, with wellKnown: 'host').
 */

const HOST = 'https://host.example'
const PASSWORD = 'a password that is not the published default'
const ISSUER = `${HOST}/gw`
const ORIGIN = 'https://inspector.example'

async function hostWithGateway (
  t: Teardown,
  overrides: Partial<GatewayPluginOptions> = {},
  wrap?: (host: FastifyInstance, options: GatewayPluginOptions) => Promise<void>
): Promise<FastifyInstance> {
  const github = await startFakeGithub()
  t.teardown(() => github.close())
  const host = Fastify({ logger: false })
  t.teardown(async () => { await host.close() })
  // A public URL other machines reach: the published default password is refused there.
  const options = gatewayOptions(github, new ManualClock(Date.now()), { publicUrl: HOST, prefix: '/gw', password: PASSWORD, ...overrides })
  if (wrap === undefined) await host.register(gateway, options)
  else await wrap(host, options)
  await host.ready()
  return host
}

async function json (
  host: FastifyInstance,
  url: string,
  headers: Record<string, string> = {}
): Promise<{ status: number, body: Record<string, unknown>, raw: string, headers: Record<string, unknown> }> {
  const res = await host.inject({ method: 'GET', url, headers })
  return { status: res.statusCode, body: res.statusCode === 200 ? res.json() : {}, raw: res.body, headers: res.headers }
}

const accessControl = (headers: Record<string, unknown>): string[] => Object.keys(headers).filter((name) => name.startsWith('access-control-'))

t.test('RFC 8414 §3.1: the AS metadata of issuer https://host.example/gw at /.well-known/oauth-authorization-server/gw and /.well-known/openid-configuration/gw', async (t) => {
  const host = await hostWithGateway(t)
  const oauth = await json(host, '/.well-known/oauth-authorization-server/gw')
  t.equal(oauth.status, 200)
  t.match(oauth.body, {
    issuer: ISSUER,
    authorization_endpoint: `${ISSUER}/authorize`,
    token_endpoint: `${ISSUER}/token`,
    registration_endpoint: `${ISSUER}/register`,
    revocation_endpoint: `${ISSUER}/revoke`,
    code_challenge_methods_supported: ['S256']
  })
  t.equal(oauth.headers['cache-control'], 'public, max-age=3600')
  // The same document wherever MCP clients look for a path issuer, the third being under the prefix.
  for (const url of ['/.well-known/openid-configuration/gw', '/gw/.well-known/openid-configuration', '/gw/.well-known/oauth-authorization-server']) {
    const other = await json(host, url)
    t.equal(other.status, 200, url)
    t.equal(other.raw, oauth.raw, `${url}: byte-identical`)
  }
})

t.test('RFC 9728 §3.1: the PRM of https://host.example/gw/mcp at /.well-known/oauth-protected-resource/gw/mcp, sub-paths included', async (t) => {
  const host = await hostWithGateway(t)
  const prm = await json(host, '/.well-known/oauth-protected-resource/gw/mcp')
  t.equal(prm.status, 200)
  t.strictSame(prm.body, {
    resource: `${ISSUER}/mcp`,
    authorization_servers: [ISSUER],
    scopes_supported: ['mcp'],
    bearer_methods_supported: ['header'],
    resource_name: 'MCP OAuth Gateway'
  })
  t.equal((await json(host, '/.well-known/oauth-protected-resource/gw/mcp/')).raw, prm.raw, 'a trailing slash names the canonical resource')
  t.equal((await json(host, '/.well-known/oauth-protected-resource/gw/mcp/x/repos')).body.resource, `${ISSUER}/mcp/x/repos`, 'RFC 9728 §3.3: the URL asked about')
  for (const url of ['/gw/.well-known/oauth-protected-resource/mcp', '/gw/.well-known/oauth-protected-resource']) {
    t.equal((await json(host, url)).raw, prm.raw, `${url}: the same document under the prefix`)
  }
  t.equal((await json(host, '/gw/.well-known/oauth-protected-resource/mcp/x/repos')).body.resource, `${ISSUER}/mcp/x/repos`)
})

t.test('the host root holds nothing else of the gateway: no root documents, no endpoints outside /gw', async (t) => {
  const host = await hostWithGateway(t)
  for (const url of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration', '/.well-known/oauth-protected-resource',
    '/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource/gw', '/authorize', '/mcp', '/healthz', '/login']) {
    t.equal((await host.inject({ method: 'GET', url })).statusCode, 404, url)
  }
  t.equal((await host.inject({ method: 'POST', url: '/register', payload: {} })).statusCode, 404)
  t.equal((await host.inject({ method: 'GET', url: '/gw/healthz' })).statusCode, 200)
})

t.test('the whole chain under /gw: redirects, form actions and the flow cookie, code, tokens, and the 401 challenge names the root PRM', async (t) => {
  const host = await hostWithGateway(t)
  const registered = await host.inject({ method: 'POST', url: '/gw/register', payload: { redirect_uris: ['http://127.0.0.1:33418/callback'], token_endpoint_auth_method: 'none' } })
  t.equal(registered.statusCode, 201)
  const client = registered.json() as { client_id: string }
  const { verifier, challenge } = createPkcePair()
  const browser = new Browser()
  const query = new URLSearchParams({ response_type: 'code', client_id: client.client_id, redirect_uri: 'http://127.0.0.1:33418/callback', code_challenge: challenge, code_challenge_method: 'S256', state: 's1', resource: `${ISSUER}/mcp` })
  const authorize = await browser.get(host, `/gw/authorize?${query.toString()}`)
  t.equal(authorize.statusCode, 302, authorize.body)
  t.match(authorize.headers.location, /^\/gw\/login\?flow=/)
  const cookie = (authorize.cookies as Array<{ name: string, path?: string, secure?: boolean }>)[0]
  t.match(cookie, { name: '__Host-mcp-gateway-browser', path: '/', secure: true }, 'an https issuer: a __Host- cookie, which must be Path=/')

  const loginPage = await browser.get(host, authorize.headers.location as string)
  t.match(loginPage.body, 'action="/gw/login"')
  const fields = { flow: hiddenField(loginPage.body, 'flow'), csrf: hiddenField(loginPage.body, 'csrf') }
  const login = await browser.post(host, '/gw/login', { ...fields, username: 'gateway_user', password: PASSWORD })
  t.equal(login.statusCode, 303, login.body)
  t.match(login.headers.location, /^\/gw\/consent\?flow=/)
  t.match((await browser.get(host, login.headers.location as string)).body, 'action="/gw/consent"')
  const consent = await browser.post(host, '/gw/consent', { ...fields, decision: 'approve' })
  t.equal(consent.statusCode, 303, consent.body)
  const upstream = new URL(consent.headers.location as string)
  t.equal(upstream.searchParams.get('redirect_uri'), `${ISSUER}/upstream/callback`)
  const callback = new URL(await visitUpstream(upstream.href))
  t.equal(callback.origin + callback.pathname, `${ISSUER}/upstream/callback`)
  const done = await browser.get(host, callback.pathname + callback.search)
  t.equal(done.statusCode, 302, done.body)
  const redirect = new URL(done.headers.location as string)
  t.equal(redirect.searchParams.get('iss'), ISSUER, 'RFC 9207')

  const token = await host.inject({
    method: 'POST',
    url: '/gw/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: 'authorization_code', code: redirect.searchParams.get('code') ?? '', code_verifier: verifier, client_id: client.client_id, redirect_uri: 'http://127.0.0.1:33418/callback' }).toString()
  })
  t.equal(token.statusCode, 200, token.body)
  t.match(token.json(), { access_token: /^gwa_/, token_type: 'Bearer' })

  const unauthenticated = await host.inject({ method: 'POST', url: '/gw/mcp', payload: {} })
  t.equal(unauthenticated.statusCode, 401)
  t.match(unauthenticated.headers['www-authenticate'], `resource_metadata="${HOST}/.well-known/oauth-protected-resource/gw/mcp"`)
  const sub = await host.inject({ method: 'GET', url: '/gw/mcp/x/repos' })
  t.match(sub.headers['www-authenticate'], `resource_metadata="${HOST}/.well-known/oauth-protected-resource/gw/mcp/x/repos"`)
})

t.test('CORS: the root documents answer browsers like the gateway\'s own metadata; /gw endpoints keep their policies', async (t) => {
  const host = await hostWithGateway(t)
  for (const url of ['/.well-known/oauth-authorization-server/gw', '/.well-known/oauth-protected-resource/gw/mcp', '/.well-known/oauth-protected-resource/gw/mcp/x/repos']) {
    const get = await json(host, url, { origin: ORIGIN, 'mcp-protocol-version': '2025-11-25' })
    t.equal(get.headers['access-control-allow-origin'], '*', url)
    t.equal(get.headers['access-control-expose-headers'], 'WWW-Authenticate', url)
    t.equal(get.headers['access-control-allow-credentials'], undefined, url)
    const preflight = await host.inject({ method: 'OPTIONS', url, headers: { origin: ORIGIN, 'access-control-request-method': 'GET', 'access-control-request-headers': 'mcp-protocol-version' } })
    t.equal(preflight.statusCode, 204, url)
    t.equal(preflight.headers['access-control-allow-origin'], '*', url)
    t.match(preflight.headers['access-control-allow-headers'], /MCP-Protocol-Version/)
    t.match(preflight.headers['access-control-allow-methods'], /GET/)
    t.equal(preflight.headers['access-control-max-age'], '86400')
  }
  // Cached for an hour by shared caches: a copy fetched without Origin is handed to browsers too.
  const noOrigin = await json(host, '/.well-known/oauth-authorization-server/gw')
  t.equal(noOrigin.headers['access-control-allow-origin'], '*', 'the same CORS headers without Origin, as a cached copy must carry them')
  t.equal(noOrigin.headers.vary, undefined, '…so nothing varies by Origin')
  const plainOptions = await host.inject({ method: 'OPTIONS', url: '/.well-known/oauth-authorization-server/gw', headers: { origin: ORIGIN } })
  t.equal(plainOptions.statusCode, 204)
  t.equal(plainOptions.headers['access-control-allow-methods'], undefined, 'not a preflight: no allow-* answers')

  const register = await host.inject({ method: 'OPTIONS', url: '/gw/register', headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } })
  t.equal(register.statusCode, 204)
  t.equal(register.headers['access-control-allow-origin'], '*')
  const authorize = await host.inject({ method: 'OPTIONS', url: '/gw/authorize', headers: { origin: ORIGIN, 'access-control-request-method': 'GET' } })
  t.strictSame(accessControl(authorize.headers), [], 'OAuth 2.1 §3.1: never CORS on /authorize')
})

t.test('wellKnown: \'host\' leaves the host root alone; the documents stay under /gw and challenges name them there', async (t) => {
  const host = await hostWithGateway(t, { wellKnown: 'host' })
  for (const url of ['/.well-known/oauth-authorization-server/gw', '/.well-known/openid-configuration/gw', '/.well-known/oauth-protected-resource/gw/mcp']) {
    t.equal((await host.inject({ method: 'GET', url })).statusCode, 404, url)
  }
  const as = await json(host, '/gw/.well-known/openid-configuration')
  t.equal(as.status, 200)
  t.equal(as.body.issuer, ISSUER)
  const challenge = await host.inject({ method: 'GET', url: '/gw/mcp' })
  t.equal(challenge.statusCode, 401)
  const named = /resource_metadata="([^"]+)"/.exec(String(challenge.headers['www-authenticate']))?.[1] ?? ''
  t.equal(named, `${ISSUER}/.well-known/oauth-protected-resource/mcp`)
  const prm = await json(host, new URL(named).pathname)
  t.equal(prm.status, 200, 'the challenge names a document the gateway serves')
  t.equal(prm.body.resource, `${ISSUER}/mcp`)

  // What a host does with the root locations instead, e.g. one route answering from the gateway's copy.
  const host2 = await hostWithGateway(t, { wellKnown: 'host' }, async (app, options) => {
    await app.register(gateway, options)
    app.get('/.well-known/oauth-authorization-server/gw', async (_req, reply) => {
      const res = await app.inject({ method: 'GET', url: '/gw/.well-known/oauth-authorization-server' })
      return await reply.code(res.statusCode).type('application/json').send(res.body)
    })
  })
  t.equal((await json(host2, '/.well-known/oauth-authorization-server/gw')).body.issuer, ISSUER)
})

t.test('a proxy path in publicUrl and a prefix add up: issuer https://host.example/outer/gw', async (t) => {
  const host = await hostWithGateway(t, { publicUrl: `${HOST}/outer` })
  const issuer = `${HOST}/outer/gw`
  const as = await json(host, '/.well-known/oauth-authorization-server/outer/gw')
  t.equal(as.status, 200)
  t.match(as.body, { issuer, authorization_endpoint: `${issuer}/authorize` })
  t.equal((await json(host, '/.well-known/oauth-protected-resource/outer/gw/mcp')).body.resource, `${issuer}/mcp`)
  // In the process the routes are under the prefix only: the proxy strips /outer.
  t.equal((await json(host, '/gw/.well-known/openid-configuration')).body.issuer, issuer)
  const authorize = await host.inject({ method: 'GET', url: '/gw/authorize?client_id=nope' })
  t.equal(authorize.statusCode, 400)
})

t.test('prefix spellings: gw, /gw/ and /gw are the same mount; / is none', async (t) => {
  for (const prefix of ['gw', '/gw/']) {
    const host = await hostWithGateway(t, { prefix })
    t.equal((await json(host, '/.well-known/oauth-authorization-server/gw')).body.issuer, ISSUER, prefix)
    t.equal((await host.inject({ method: 'GET', url: '/gw/mcp' })).statusCode, 401, `${prefix}: /gw/mcp is the resource server`)
  }
  const root = await hostWithGateway(t, { prefix: '/' })
  t.equal((await json(root, '/.well-known/oauth-authorization-server')).body.issuer, HOST)
})

t.test('bad prefix or wellKnown: one ConfigError at registration naming every problem', async (t) => {
  for (const prefix of ['/:tenant', '/a b', '/gw/..', '/*', '/gw?x=1']) {
    await t.rejects(hostWithGateway(t, { prefix }), { name: 'ConfigError', problems: [/^prefix must be a path/] }, prefix)
  }
  await t.rejects(hostWithGateway(t, { prefix: 42 as unknown as string }), ConfigError)
  await t.rejects(hostWithGateway(t, { wellKnown: 'root' as 'host', codeTtl: 0 }), { name: 'ConfigError', problems: [/^wellKnown must be/, /codeTtl/] })
})

t.test('registered inside a prefixed host plugin: refused with wellKnown \'gateway\' (the root is out of reach), fine with \'host\'', async (t) => {
  const nested = async (api: FastifyInstance, options: GatewayPluginOptions): Promise<void> => {
    await api.register(async (scope) => { await scope.register(gateway, options) }, { prefix: '/api' })
  }
  await t.rejects(hostWithGateway(t, {}, nested), { name: 'ConfigError', problems: [/^wellKnown: .* at \/api\/gw .* prefix \/api/] })

  const host = await hostWithGateway(t, { wellKnown: 'host' }, nested)
  const as = await json(host, '/api/gw/.well-known/openid-configuration')
  t.equal(as.body.issuer, `${HOST}/api/gw`)
  t.equal(as.body.token_endpoint, `${HOST}/api/gw/token`)
  t.equal((await host.inject({ method: 'GET', url: '/api/gw/mcp' })).statusCode, 401)
})

t.test('two gateways in one host, at /a and /b: separate issuers, stores and root documents', async (t) => {
  const host = await hostWithGateway(t, {}, async (app, options) => {
    await app.register(gateway, { ...options, prefix: '/a' })
    await app.register(gateway, { ...options, prefix: '/b', mcpScope: 'other' })
  })
  t.equal((await json(host, '/.well-known/oauth-authorization-server/a')).body.issuer, `${HOST}/a`)
  const b = await json(host, '/.well-known/oauth-authorization-server/b')
  t.equal(b.body.issuer, `${HOST}/b`)
  t.strictSame(b.body.scopes_supported, ['other'])
  const registered = await host.inject({ method: 'POST', url: '/a/register', payload: { redirect_uris: ['http://127.0.0.1:1/cb'], token_endpoint_auth_method: 'none' } })
  const clientId = (registered.json() as { client_id: string }).client_id
  const atB = await host.inject({ method: 'GET', url: `/b/authorize?client_id=${clientId}` })
  t.equal(atB.statusCode, 400, 'a client of /a is unknown to /b')
  t.match(atB.body, 'Unknown client')
})
