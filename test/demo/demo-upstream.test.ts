import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { buildDemoUpstream } from '../../examples/demo-upstream/app.js'
import { acceptableRedirectUri } from '../../examples/demo-upstream/authority.js'
import { ExpiringMap, sameSecret } from '../../examples/demo-upstream/memory.js'
import { hiddenField } from '../helpers/gateway.js'
import type { Teardown } from '../helpers/teardown.js'

/*
 * examples/demo-upstream on its own, through inject(): its metadata, registration, screen 2 and the token
 * endpoint, including every way a request is refused; and the MCP server's 401 challenge (RFC 9728).
 * The whole chain through the gateway is demo.test.ts.
 */

const ORIGIN = 'http://127.0.0.1:8788'
const REDIRECT = 'http://127.0.0.1:8787/upstream/callback'
const VERIFIER = 'v'.repeat(43)
const CHALLENGE = createHash('sha256').update(VERIFIER).digest('base64url')

async function upstream (t: Teardown): Promise<FastifyInstance> {
  const app = await buildDemoUpstream(ORIGIN)
  t.teardown(() => app.close())
  return app
}

async function register (app: FastifyInstance, body: Record<string, unknown> = {}) {
  const res = await app.inject({ method: 'POST', url: '/register', payload: { client_name: 'Gateway <b>', redirect_uris: [REDIRECT], ...body } })
  return { status: res.statusCode, json: res.json() as Record<string, string> }
}

function authorizeUrl (clientId: string, extra: Record<string, string> = {}): string {
  const query = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, state: 's1', code_challenge: CHALLENGE, code_challenge_method: 'S256', ...extra })
  return `/authorize?${query.toString()}`
}

/** Screen 2 shown, then answered; the redirect back to the client. */
async function answer (app: FastifyInstance, clientId: string, decision: 'approve' | 'deny') {
  const page = await app.inject({ method: 'GET', url: authorizeUrl(clientId) })
  const cookie = (page.headers['set-cookie'] as string).split(';')[0] as string
  const form = { request: hiddenField(page.body, 'request'), csrf: hiddenField(page.body, 'csrf'), decision }
  const res = await app.inject({ method: 'POST', url: '/authorize', headers: { cookie }, payload: form })
  return { res, location: new URL(res.headers.location as string), cookie, form }
}

async function token (app: FastifyInstance, form: Record<string, string>) {
  const res = await app.inject({ method: 'POST', url: '/token', payload: new URLSearchParams(form).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  return { status: res.statusCode, json: res.json() as Record<string, string>, headers: res.headers }
}

t.test('metadata: RFC 8414 for the authorization server, RFC 9728 for /mcp', async (t) => {
  const app = await upstream(t)
  t.match((await app.inject('/.well-known/oauth-authorization-server')).json(), {
    issuer: ORIGIN,
    authorization_endpoint: `${ORIGIN}/authorize`,
    token_endpoint: `${ORIGIN}/token`,
    registration_endpoint: `${ORIGIN}/register`,
    code_challenge_methods_supported: ['S256'],
    scopes_supported: ['tools']
  })
  t.same((await app.inject('/.well-known/oauth-protected-resource/mcp')).json(), {
    resource: `${ORIGIN}/mcp`,
    authorization_servers: [ORIGIN],
    scopes_supported: ['tools'],
    bearer_methods_supported: ['header'],
    resource_name: 'mcp-oauth-gateway demo upstream'
  })
})

t.test('/mcp without a valid token: 401 pointing at the resource metadata; GET and DELETE are not served', async (t) => {
  const app = await upstream(t)
  const none = await app.inject({ method: 'POST', url: '/mcp', payload: {} })
  t.equal(none.statusCode, 401)
  t.equal(none.headers['www-authenticate'], `Bearer resource_metadata="${ORIGIN}/.well-known/oauth-protected-resource/mcp"`)
  const wrong = await app.inject({ method: 'POST', url: '/mcp', payload: {}, headers: { authorization: 'Bearer not-ours' } })
  t.equal(wrong.statusCode, 401)
  t.match(wrong.headers['www-authenticate'], /, error="invalid_token"$/)

  const { json: client } = await register(app, { token_endpoint_auth_method: 'none' })
  const code = (await answer(app, client.client_id as string, 'approve')).location.searchParams.get('code') as string
  const tokens = await token(app, { grant_type: 'authorization_code', code, code_verifier: VERIFIER, redirect_uri: REDIRECT, client_id: client.client_id as string })
  const get = await app.inject({ method: 'GET', url: '/mcp', headers: { authorization: `Bearer ${tokens.json.access_token as string}` } })
  t.equal(get.statusCode, 405, 'stateless: no stream to open')
  t.equal(get.headers.allow, 'POST')
})

t.test('registration (RFC 7591): a confidential client gets a secret, a public one none; bad metadata is refused', async (t) => {
  const app = await upstream(t)
  const confidential = await register(app)
  t.equal(confidential.status, 201)
  t.match(confidential.json, { client_id: /^\S{43}$/, client_secret: /^\S{43}$/, token_endpoint_auth_method: 'client_secret_post', client_name: 'Gateway <b>' })
  const unnamed = await register(app, { client_name: undefined, token_endpoint_auth_method: 'none' })
  t.equal(unnamed.json.client_secret, undefined)
  t.equal(unnamed.json.client_name, 'An unnamed client')
  t.same(await register(app, { redirect_uris: ['http://example.com/cb'] }), { status: 400, json: { error: 'invalid_redirect_uri', error_description: 'redirect URIs must be https, or http to a loopback address' } })
  t.equal((await register(app, { redirect_uris: [] })).json.error, 'invalid_client_metadata')
  const text = await app.inject({ method: 'POST', url: '/register', payload: '<x/>', headers: { 'content-type': 'application/xml' } })
  t.same([text.statusCode, text.json().error], [415, 'invalid_request'], 'a body that is not JSON')
  t.equal(text.headers['cache-control'], 'no-store')
})

t.test('redirect URIs: https anywhere, http to loopback only, never a fragment', async (t) => {
  t.ok(acceptableRedirectUri('https://app.example/cb'))
  t.ok(acceptableRedirectUri('http://localhost:9/cb'))
  t.ok(acceptableRedirectUri('http://[::1]:9/cb'))
  t.notOk(acceptableRedirectUri('http://10.0.0.1/cb'))
  t.notOk(acceptableRedirectUri('https://app.example/cb#x'))
  t.notOk(acceptableRedirectUri('not a url'))
  t.notOk(acceptableRedirectUri('cursor://callback'))
})

t.test('screen 2: the client named and escaped, no script, nothing loaded, no framing', async (t) => {
  const app = await upstream(t)
  const { json: client } = await register(app)
  const page = await app.inject({ method: 'GET', url: authorizeUrl(client.client_id as string) })
  t.equal(page.statusCode, 200)
  t.match(page.body, '<strong>Gateway &lt;b&gt;</strong>')
  t.match(page.body, '<span class="host">127.0.0.1:8787</span>')
  t.match(page.body, '<li>tools</li>')
  t.notMatch(page.body, /<script|src=/)
  t.equal(page.headers['content-security-policy'], "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; frame-ancestors 'none'")
  t.equal(page.headers['x-frame-options'], 'DENY')
  t.equal(page.headers['cache-control'], 'no-store')
  t.match(page.headers['set-cookie'], /^demo_upstream_browser=[\w-]{43}; Max-Age=600; Path=\/authorize; HttpOnly; SameSite=Lax$/)
  const again = await app.inject({ method: 'GET', url: authorizeUrl(client.client_id as string), headers: { cookie: (page.headers['set-cookie'] as string).split(';')[0] as string } })
  t.equal((again.headers['set-cookie'] as string).split(';')[0], (page.headers['set-cookie'] as string).split(';')[0], 'one browser keeps its cookie')
})

t.test('screen 2 refuses what cannot go back to the client with a page, the rest with a redirect', async (t) => {
  const app = await upstream(t)
  const { json: client } = await register(app)
  const id = client.client_id as string
  const unknown = await app.inject({ method: 'GET', url: authorizeUrl('nobody') })
  t.same([unknown.statusCode, /<h1>Unknown client<\/h1>/.test(unknown.body)], [400, true])
  t.equal(unknown.headers['x-frame-options'], 'DENY')
  const noClient = await app.inject({ method: 'GET', url: '/authorize' })
  t.equal(noClient.statusCode, 400)
  const wrong = await app.inject({ method: 'GET', url: authorizeUrl(id, { redirect_uri: 'http://127.0.0.1:1/evil' }) })
  t.same([wrong.statusCode, /Wrong redirect URI/.test(wrong.body)], [400, true], 'never a redirect to an unregistered URI')
  const malformed = await app.inject({ method: 'GET', url: authorizeUrl(id, { state: 'x'.repeat(3000) }) })
  t.same([malformed.statusCode, /<h1>Bad request<\/h1>/.test(malformed.body)], [400, true])

  const redirected = async (extra: Record<string, string>) => {
    const res = await app.inject({ method: 'GET', url: authorizeUrl(id, extra) })
    t.equal(res.statusCode, 302)
    const to = new URL(res.headers.location as string)
    t.equal(to.origin + to.pathname, REDIRECT)
    t.equal(to.searchParams.get('iss'), ORIGIN)
    return Object.fromEntries(to.searchParams)
  }
  t.match(await redirected({ response_type: 'token' }), { error: 'unsupported_response_type', state: 's1' })
  t.match(await redirected({ code_challenge_method: 'plain' }), { error: 'invalid_request', error_description: 'PKCE with S256 is required' })
  t.match(await redirected({ code_challenge: 'short' }), { error: 'invalid_request' })
  t.match(await redirected({ scope: 'tools admin' }), { error: 'invalid_scope' })
  const { redirect_uri: _r, state: _s, ...rest } = Object.fromEntries(new URLSearchParams(authorizeUrl(id).split('?')[1]))
  const implied = await app.inject({ method: 'GET', url: `/authorize?${new URLSearchParams(rest).toString()}` })
  t.equal(implied.statusCode, 200, 'the one registered redirect URI is implied')
})

t.test('the answer: only from the browser and form that were shown the page, once', async (t) => {
  const app = await upstream(t)
  const { json: client } = await register(app)
  const id = client.client_id as string
  const page = await app.inject({ method: 'GET', url: authorizeUrl(id) })
  const cookie = (page.headers['set-cookie'] as string).split(';')[0] as string
  const form = { request: hiddenField(page.body, 'request'), csrf: hiddenField(page.body, 'csrf'), decision: 'approve' }
  const post = async (payload: Record<string, string>, headers: Record<string, string> = { cookie }) =>
    await app.inject({ method: 'POST', url: '/authorize', headers, payload })
  const forged = await post({ ...form, csrf: 'forged' })
  t.same([forged.statusCode, /<h1>Request refused<\/h1>/.test(forged.body)], [403, true])
  t.equal((await post(form, {})).statusCode, 403, 'another browser (no cookie)')
  t.equal((await post(form, { cookie: 'demo_upstream_browser=other' })).statusCode, 403, 'another browser')
  t.equal((await post({ ...form, request: 'unknown' })).statusCode, 403)
  t.equal((await post({ ...form, decision: 'maybe' })).statusCode, 400)
  const approved = await post(form)
  t.equal(approved.statusCode, 303)
  t.equal((await post(form)).statusCode, 403, 'answered once')

  const denied = await answer(app, id, 'deny')
  t.same(Object.fromEntries(denied.location.searchParams), { error: 'access_denied', state: 's1', iss: ORIGIN })
})

t.test('the token endpoint: code + PKCE, client authentication, rotating refresh tokens, no-store', async (t) => {
  const app = await upstream(t)
  const { json: client } = await register(app)
  const id = client.client_id as string
  const secret = client.client_secret as string
  const code = (await answer(app, id, 'approve')).location.searchParams.get('code') as string
  const exchange = { grant_type: 'authorization_code', code, code_verifier: VERIFIER, redirect_uri: REDIRECT, client_id: id, client_secret: secret }

  t.same((await token(app, { ...exchange, client_secret: 'wrong' })).json, { error: 'invalid_client', error_description: 'client authentication failed' })
  t.equal((await token(app, { ...exchange, client_secret: 'wrong' })).status, 401)
  const { client_secret: _secret, ...noSecret } = exchange
  t.equal((await token(app, noSecret)).json.error, 'invalid_client', 'a confidential client must authenticate')
  t.equal((await token(app, { ...exchange, client_id: 'nobody' })).json.error, 'invalid_client')
  t.equal((await token(app, { ...exchange, code_verifier: 'w'.repeat(43) })).json.error, 'invalid_grant', 'the verifier must match (and the code is now used up)')

  const code2 = (await answer(app, id, 'approve')).location.searchParams.get('code') as string
  t.equal((await token(app, { ...exchange, code: code2, redirect_uri: 'http://127.0.0.1:1/x' })).json.error, 'invalid_grant', 'the redirect URI must match')
  const code3 = (await answer(app, id, 'approve')).location.searchParams.get('code') as string
  const issued = await token(app, { ...exchange, code: code3 })
  t.equal(issued.status, 200)
  t.match(issued.json, { access_token: /^\S{43}$/, refresh_token: /^\S{43}$/, token_type: 'Bearer', expires_in: 3600, scope: 'tools' })
  t.equal(issued.headers['cache-control'], 'no-store')
  t.equal((await token(app, { ...exchange, code: code3 })).json.error, 'invalid_grant', 'a code is good once')

  const refresh = { grant_type: 'refresh_token', refresh_token: issued.json.refresh_token as string, client_id: id, client_secret: secret }
  const rotated = await token(app, refresh)
  t.equal(rotated.status, 200)
  t.not(rotated.json.refresh_token, refresh.refresh_token, 'a new refresh token')
  t.equal((await token(app, refresh)).json.error, 'invalid_grant', 'the old one is gone')

  const next = { ...refresh, refresh_token: rotated.json.refresh_token as string }
  const { json: other } = await register(app, { token_endpoint_auth_method: 'none' })
  const { client_secret: _s, ...publicRefresh } = next
  t.equal((await token(app, { ...publicRefresh, client_id: other.client_id as string, client_secret: '' })).json.error, 'invalid_request', 'an empty secret is malformed')
  t.equal((await token(app, { ...publicRefresh, client_id: other.client_id as string, client_secret: 'x' })).json.error, 'invalid_client', 'a public client sends no secret')
  t.equal((await token(app, { ...publicRefresh, client_id: other.client_id as string })).json.error, 'invalid_grant', 'another client\'s refresh token')
  t.equal((await token(app, next)).json.error, 'invalid_grant', 'and, shown by another client, it is revoked')
  t.equal((await token(app, { grant_type: 'password', client_id: id })).json.error, 'invalid_request')
})

t.test('memory: entries expire, the oldest goes when full, secrets compare whole', async (t) => {
  let now = 0
  const map = new ExpiringMap<string>(2, 1000, () => now)
  map.set('a', '1')
  map.set('b', '2')
  map.set('c', '3')
  t.same([map.get('a'), map.get('b'), map.get('c')], [undefined, '2', '3'], 'a was the oldest')
  map.set('b', '2 again')
  map.set('d', '4')
  t.same([map.get('b'), map.get('c'), map.get('d')], ['2 again', undefined, '4'], 'setting again makes it the newest')
  now = 1000
  t.equal(map.get('d'), undefined, 'expired')
  t.ok(sameSecret('abc', 'abc'))
  t.notOk(sameSecret('abc', 'abcd'))
})
