import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import gateway from '../../app.js'
import { ManualClock } from '../../lib/clock.js'
import { createPkcePair } from '../../lib/pkce.js'
import { startFakeGithub } from '../helpers/fake-github.js'
import { startFakeMcp, type FakeMcp } from '../helpers/fake-mcp.js'
import { Browser, PUBLIC_URL, gatewayOptions, hiddenField, visitUpstream } from '../helpers/gateway.js'
import { challengeParams, mcpStack } from '../helpers/mcp-stack.js'
import { headerValues as header, rawRequest } from '../helpers/raw-http.js'
import type { Teardown } from '../helpers/teardown.js'

/*
 * Request targets as the proxy reads them (issue 15, findings 6 and 7), on a listening gateway with request
 * lines written by hand: an absolute-form target goes where its path says and nowhere else, and the path
 * echoed into a challenge cannot add to it. The pure parts are target.test.ts.
 */

const PRM = `${PUBLIC_URL}/.well-known/oauth-protected-resource/mcp`
const LIST = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'

function mcpHeaders (token: string): Record<string, string> {
  return { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' }
}

async function listen (app: FastifyInstance): Promise<void> {
  await app.listen({ port: 0, host: '127.0.0.1' })
}

t.test('issue 15 finding 6: an absolute-form target is forwarded by its path only, and never outside /mcp', async (t) => {
  const { app, mcp, token } = await mcpStack(t, {}, { mode: 'stateless' })
  const access = await token()
  await listen(app)
  const inject = await app.inject({ method: 'POST', url: 'https://x/mcp/x', headers: mcpHeaders(access), payload: LIST })
  t.comment(`inject of https://x/mcp/x: ${inject.statusCode}, upstream saw ${mcp.requests.map((r) => r.rawUrl).join(', ') || '(none)'}`)
  t.same(mcp.requests.map((r) => r.rawUrl), inject.statusCode === 200 ? ['/mcp/x'] : [], 'inject (which sends the path) reaches /mcp/x or nothing')
  mcp.requests.length = 0

  // Absolute form is valid HTTP/1.1 (RFC 9112 §3.2.2): what it names below /mcp is proxied there, and only there.
  const forwarded: Array<[string, string]> = [
    ['https://x/mcp', '/mcp'],
    ['http://localhost:8002/mcp/x/repos?foo=1', '/mcp/x/repos?foo=1'],
    ['HTTPS://X-admin/mcp/x', '/mcp/x'],
    ['https://user@x/mcp?a=/b', '/mcp?a=/b']
  ]
  for (const [target, path] of forwarded) {
    mcp.requests.length = 0
    const res = await rawRequest(app, 'POST', target, mcpHeaders(access), LIST)
    t.equal(res.status, 'HTTP/1.1 200 OK', `${target}: proxied`)
    t.same(mcp.requests.map((r) => r.rawUrl), [path], `${target}: the upstream saw ${path} only`)
  }
  for (const target of ['https://x?a=/mcp', 'https://x/mcpx', 'https://x/admin/mcp', 'https://x/mcp/../admin', 'https://x/mcp/%2e%2e/admin', '/mcp#/../../admin']) {
    mcp.requests.length = 0
    const res = await rawRequest(app, 'POST', target, mcpHeaders(access), LIST)
    t.notOk(res.status.startsWith('HTTP/1.1 2'), `${target}: refused (${res.status})`)
    t.same(mcp.requests.map((r) => r.rawUrl), [], `${target}: nothing reached the upstream`)
  }
})

async function prefixedGateway (t: Teardown): Promise<{ host: FastifyInstance, mcp: FakeMcp, token: string }> {
  const github = await startFakeGithub()
  t.teardown(() => github.close())
  const mcp = await startFakeMcp({ mode: 'stateless', isValidToken: (token) => github.isValidAccessToken(token) })
  t.teardown(() => mcp.close())
  const host = Fastify({ logger: false })
  t.teardown(async () => { await host.close() })
  await host.register(gateway, gatewayOptions(github, new ManualClock(Date.now()), { prefix: '/gw', upstreamRs: mcp.url }))
  await host.ready()
  const registered = await host.inject({ method: 'POST', url: '/gw/register', payload: { redirect_uris: ['http://127.0.0.1:33418/callback'], token_endpoint_auth_method: 'none' } })
  const client = registered.json() as { client_id: string }
  const { verifier, challenge } = createPkcePair()
  const browser = new Browser()
  const query = new URLSearchParams({ response_type: 'code', client_id: client.client_id, redirect_uri: 'http://127.0.0.1:33418/callback', code_challenge: challenge, code_challenge_method: 'S256', state: 's1', resource: `${PUBLIC_URL}/gw/mcp` })
  const authorize = await browser.get(host, `/gw/authorize?${query.toString()}`)
  const loginPage = await browser.get(host, authorize.headers.location as string)
  const fields = { flow: hiddenField(loginPage.body, 'flow'), csrf: hiddenField(loginPage.body, 'csrf') }
  await browser.post(host, '/gw/login', { ...fields, username: 'gateway_user', password: 'gateway_pass' })
  const consent = await browser.post(host, '/gw/consent', { ...fields, decision: 'approve' })
  const callback = new URL(await visitUpstream(consent.headers.location as string))
  const done = await browser.get(host, callback.pathname + callback.search)
  const code = new URL(done.headers.location as string).searchParams.get('code') ?? ''
  const tokens = await host.inject({
    method: 'POST',
    url: '/gw/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, client_id: client.client_id, redirect_uri: 'http://127.0.0.1:33418/callback' }).toString()
  })
  if (tokens.statusCode !== 200) throw new Error(`token: ${tokens.statusCode} ${tokens.body}`)
  return { host, mcp, token: (tokens.json() as { access_token: string }).access_token }
}

t.test('issue 15 finding 6: under a prefix, an absolute-form target reaches exactly the sub-path it names', async (t) => {
  const { host, mcp, token } = await prefixedGateway(t)
  await listen(host)
  for (const [target, path] of [['https://X-admin/gw/mcp/x', '/mcp/x'], ['/gw/mcp/x', '/mcp/x'], ['http://a/gw/mcp', '/mcp']]) {
    mcp.requests.length = 0
    const res = await rawRequest(host, 'POST', target as string, mcpHeaders(token), LIST)
    t.equal(res.status, 'HTTP/1.1 200 OK', `${target}: proxied`)
    t.same(mcp.requests.map((r) => r.rawUrl), [path], `${target}: the upstream saw ${path} only`)
  }
  mcp.requests.length = 0
  const unauthenticated = await rawRequest(host, 'POST', 'https://X-admin/gw/mcp/x', { 'content-type': 'application/json' }, LIST)
  t.same(header(unauthenticated, 'www-authenticate'), [`Bearer resource_metadata="${PUBLIC_URL}/.well-known/oauth-protected-resource/gw/mcp/x", scope="mcp"`],
    'the challenge names the sub-path the target names')
  t.same(mcp.requests, [])
})

t.test('issue 15 finding 7: the path echoed into WWW-Authenticate is percent-encoded, one resource_metadata only', async (t) => {
  const { app, mcp } = await mcpStack(t, {}, { mode: 'stateless' })
  await listen(app)
  const evil = '/mcp/a",resource_metadata="https://evil.example/x'
  const encoded = `${PRM}/a%22,resource_metadata=%22https://evil.example/x`
  const invalid = ', error="invalid_token", error_description="the access token is invalid or expired"'
  for (const bearer of [undefined, 'gwa_not-a-real-token']) {
    const res = await rawRequest(app, 'POST', evil, bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }, LIST)
    t.equal(res.status, 'HTTP/1.1 401 Unauthorized')
    const [value = ''] = header(res, 'www-authenticate')
    const params = [...value.matchAll(/([a-z_]+)="[^"]*"/g)].map((m) => m[1])
    t.same(params.filter((name) => name === 'resource_metadata'), ['resource_metadata'], `exactly one resource_metadata parameter: ${value}`)
    t.equal(challengeParams(value).resource_metadata, encoded, 'the path, percent-encoded')
    t.equal(value, `Bearer resource_metadata="${encoded}", scope="mcp"${bearer === undefined ? '' : invalid}`, 'and nothing else added')
  }
  for (const [target, rest] of [['/mcp/a\\b%zz%41', '/a%5Cb%25zz%41'], ['/mcp/caf\u00e9', '/caf%C3%A9']]) {
    const res = await rawRequest(app, 'POST', target as string, {}, LIST)
    t.comment(`${target}: ${res.status}`)
    // Node's parser refuses such a request line outright (400, no challenge); were one let through, it is encoded.
    const values = header(res, 'www-authenticate')
    if (values.length === 0) t.equal(res.status, 'HTTP/1.1 400 Bad Request', `${target}: refused by Node's parser`)
    else t.same(values, [`Bearer resource_metadata="${PRM}${rest}", scope="mcp"`], target as string)
  }
  const fragment = await rawRequest(app, 'POST', '/mcp#x', {}, LIST)
  t.comment(`/mcp#x: ${fragment.status}`)
  for (const value of header(fragment, 'www-authenticate')) t.equal(value, `Bearer resource_metadata="${PRM}", scope="mcp"`, 'a target that is not below the mount is challenged for the mount')
  const viaInject = await app.inject({ method: 'POST', url: '/mcp/x%22y/a%20b', payload: LIST, headers: { 'content-type': 'application/json' } })
  t.equal(viaInject.headers['www-authenticate'], `Bearer resource_metadata="${PRM}/x%22y/a%20b", scope="mcp"`, 'percent-encoded triplets stay as the client spelled them: the PRM of that URL')
  t.equal(mcp.requests.length, 0)
})
